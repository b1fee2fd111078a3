"""Per-topic feeds of matches for feed readers: `/topics/NAME.atom` and `/topics/NAME.json`
(with `?token=` when the reading room has a token)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from feedgen.feed import FeedGenerator
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from basis.clock import utcnow
from basis.dates import iso
from basis.urls import safe_url
from basis.xml import xml_text
from crawler.config import Topic
from storage.models import Article, Sighting, TopicMatch

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page

FEED_SIZE = 50
ATOM = "application/atom+xml; charset=utf-8"


def topic_feed(page: Page) -> Response:
    topic = next((t for t in page.config.topics if t.name == page.arg("name")), None)
    if topic is None:
        raise NotFound("no such topic: feeds are /topics/NAME.atom and /topics/NAME.json "
                       "for the topics in the config")
    entries = topic_entries(page.db, topic.name)
    if page.arg("kind") == "atom":
        return Response(atom_feed(topic, entries), content_type=ATOM)
    document = {"topic": topic.name, "query": topic.query, "matches": entries}
    return Response(json.dumps(document, indent=1, default=iso) + "\n",
                    mimetype="application/json")


def topic_entries(session: Session, topic: str, limit: int = FEED_SIZE) -> list[dict[str, Any]]:
    """The latest matches of a topic, one per original article, newest first."""
    rows = session.execute(
        select(Article, TopicMatch.highlights).join(TopicMatch)
        .where(TopicMatch.topic == topic, Article.duplicate_of.is_(None))
        .options(selectinload(Article.source),
                 selectinload(Article.sightings).selectinload(Sighting.source))
        .order_by(Article.first_seen_at.desc(), Article.id.desc()).limit(limit))
    return [{
        "story_id": article.story_id,
        "article_id": article.id,
        "title": article.title,
        "canonical_url": article.canonical_url,
        "source": article.source.name,
        "published_at": article.published_at,
        "first_seen_at": article.first_seen_at,
        "snippet": highlights.get("snippet", "") if isinstance(highlights, dict) else "",
        "sightings": [{"source": s.source.name, "url": s.url, "seen_at": s.seen_at}
                      for s in article.sightings],
    } for article, highlights in rows]


def atom_feed(topic: Topic, entries: list[dict[str, Any]]) -> bytes:
    """An Atom document; feedgen (lxml) escapes all text, characters XML cannot hold are
    dropped."""
    feed = FeedGenerator()
    feed.id(f"urn:mediawatch:topic:{topic.name}")
    feed.title(f"mediawatch: {topic.name}")
    feed.subtitle(xml_text(topic.query))
    feed.author(name="mediawatch")
    feed.updated(entries[0]["first_seen_at"] if entries else utcnow())
    for entry in entries:
        item = feed.add_entry(order="append")
        item.id(f"urn:mediawatch:article:{entry['article_id']}")
        item.title(xml_text(entry["title"] or entry["canonical_url"]))
        link = safe_url(entry["canonical_url"])  # never a javascript: or data: link
        if link:
            item.link(href=link)
        item.updated(entry["first_seen_at"])
        if entry["published_at"]:
            item.published(entry["published_at"])
        item.author(name=xml_text(entry["source"]))
        if entry["story_id"] is not None:
            item.category(term=str(entry["story_id"]), scheme="urn:mediawatch:story",
                          label=f"story {entry['story_id']}")
        item.content(xml_text(_entry_text(entry)))
    return feed.atom_str(pretty=True)


def _entry_text(entry: dict[str, Any]) -> str:
    """The snippet and the sightings, as plain text: feedgen 1.0 drops the `rel` of an
    entry's links, so sightings cannot be `related` links."""
    head = [entry["snippet"], ""] if entry["snippet"] else []
    seen = [f"- {s['source']}: {s['url']} ({iso(s['seen_at'])})" for s in entry["sightings"]]
    return "\n".join([*head, "Seen at:", *seen])

