"""Queries over what is already stored: a topic's backtest (hits with evidence, counts per
source and day), `articles search`, and the past matches of a topic added to the config."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from alerts.match import Document, Match, Matcher
from alerts.outbox import AlertPolicy, queue_alerts
from alerts.query import Node
from alerts.topics import TopicRule, TopicSet
from storage import repository as repo
from storage.models import Article


def document(article: Article, tags: tuple[str, ...] = ()) -> Document:
    return Document(article.title, article.text, article.canonical_url, article.source.name,
                    tags, article.language)


def backtest(session: Session, rule: TopicRule, since: datetime | None,
             source_tags: dict[str, tuple[str, ...]], limit: int) -> dict[str, Any]:
    matcher = Matcher({rule.name: rule.query})
    hits: list[dict[str, Any]] = []
    per_source: Counter[str] = Counter()
    per_day: Counter[str] = Counter()
    scanned = 0
    for article in repo.originals_since(session, since):
        doc = document(article, source_tags.get(article.source.name, ()))
        if not rule.admits(doc):
            continue
        scanned += 1
        for match in matcher.match(doc):
            per_source[doc.source] += 1
            day = article.published_at.date().isoformat() if article.published_at else "?"
            per_day[day] += 1
            if len(hits) < limit:
                hits.append({"id": article.id, "title": article.title, "source": doc.source,
                             "published_at": article.published_at.isoformat()
                             if article.published_at else "", "highlights": match.as_json()})
    return {"topic": rule.name, "query": str(rule.query),
            "since": since.isoformat() if since else None, "scanned": scanned,
            "hits": hits, "per_source": dict(per_source.most_common()),
            "per_day": dict(sorted(per_day.items()))}


def search(session: Session, query: Node, since: datetime | None,
           source_tags: dict[str, tuple[str, ...]], limit: int) -> list[tuple[Article, Match]]:
    """The stored originals that match `query`, newest first, with their evidence."""
    matcher = Matcher({"search": query})
    hits = [(article, match) for article in repo.originals_since(session, since)
            for match in matcher.match(document(article, source_tags.get(article.source.name,
                                                                          ())))]
    return hits[::-1][:limit]


_one_at_a_time = threading.Lock()  # matching the past, in this process


def fingerprint(rule: TopicRule) -> str:
    """What a topic matches, as a hash: its query (aliases expanded), languages, sources."""
    what = json.dumps([str(rule.query), sorted(rule.languages), sorted(rule.sources)])
    return hashlib.sha256(what.encode()).hexdigest()


def match_past(db: sessionmaker[Session], topics: TopicSet, since: datetime, up_to: int,
               source_tags: Mapping[str, tuple[str, ...]],
               policies: Mapping[str, AlertPolicy], backfill: timedelta,
               now: datetime) -> dict[str, int]:
    """Match the topics new or changed since their last past match against the originals
    first seen since `since`, up to article `up_to` (later ones are matched as they come):
    the matches are recorded, so the topic's page, feeds and counts show them, and alerts
    are queued only for articles newer than `backfill`. → past matches of each topic matched"""
    with _one_at_a_time:  # two reloads in a row: the second waits for the first
        return _match_past(db, topics, since, up_to, source_tags, policies, backfill, now)


def _match_past(db: sessionmaker[Session], topics: TopicSet, since: datetime, up_to: int,
                source_tags: Mapping[str, tuple[str, ...]],
                policies: Mapping[str, AlertPolicy], backfill: timedelta,
                now: datetime) -> dict[str, int]:
    with db.begin() as session:  # a topic removed, then added again, is matched again
        repo.forget_topics(session, keep=list(topics.rules))
        known = repo.topic_fingerprints(session)
    rules = [r for r in topics.rules.values() if known.get(r.name) != fingerprint(r)]
    if not rules:
        return {}
    with db() as session:
        matcher, done = TopicSet(rules), repo.matched_pairs(session, [r.name for r in rules])
        found: dict[int, dict[str, Any]] = {}  # article id → its new matches' evidence
        for article in repo.originals_since(session, since, up_to):
            hits = {m.topic: m.as_json() for m in matcher.match(
                document(article, source_tags.get(article.source.name, ())))
                if (article.id, m.topic) not in done}
            if hits:
                found[article.id] = hits
    with db.begin() as session:  # short: the daemon goes on storing meanwhile
        now_done = repo.matched_pairs(session, [r.name for r in rules])
        for article_id, hits in found.items():
            article = session.get_one(Article, article_id)
            hits = {t: h for t, h in hits.items() if (article_id, t) not in now_done}
            if article.duplicate_of is not None or not hits:
                continue  # a copy now (a better original took over), or matched meanwhile
            repo.add_matches(session, article, hits)
            if (article.published_at or article.first_seen_at) >= now - backfill:
                queue_alerts(session, article, hits, policies, now, backfill)
        for rule in rules:
            repo.remember_topic(session, rule.name, fingerprint(rule), now)
    counts = Counter(topic for hits in found.values() for topic in hits)
    return {rule.name: counts[rule.name] for rule in rules}
