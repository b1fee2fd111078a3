"""Queries over what is already stored: a topic's backtest (hits with evidence, counts per
source and day) and `articles search`."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from alerts.match import Document, Match, Matcher
from alerts.query import Node
from alerts.topics import TopicRule
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
