"""`/articles/ID`: one article's evidence — its text with what matched highlighted, why each
topic matched (the `--explain` tree), its copies, where it was seen, its versions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import load_only, selectinload
from werkzeug.exceptions import NotFound

from alerts.backtest import document
from alerts.explain import Clause, explain
from alerts.query import QuerySyntaxError, parse_query
from basis.folding import drop_format
from storage.models import Article, ArticleVersion, Sighting, Source, TopicMatch

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page

Segment = tuple[str, bool]
MAX_DEPTH_CLASS = 8  # deeper clauses are indented like this one (classes .depth-0 … .depth-8)


@dataclass(frozen=True)
class Explained:
    """Why an article matched a topic: the stored evidence and the query's tree now."""

    topic: str
    query: str | None  # None: the topic is no longer configured
    snippet: str
    evidence: tuple[str, ...]  # the matched texts
    clauses: list[Clause]
    problem: str | None = None  # the topic's query no longer parses, or differs


def page(page: Page) -> tuple[str, dict[str, Any]]:
    article_id: int = page.arg("id")
    article = page.db.get(Article, article_id, options=[
        selectinload(Article.source),
        selectinload(Article.story),
        selectinload(Article.matches),
        selectinload(Article.sightings).selectinload(Sighting.source),
        selectinload(Article.copies).options(
            load_only(Article.id, Article.title, Article.canonical_url, Article.language,
                      Article.first_seen_at, Article.published_at, Article.outlet,
                      Article.source_id),
            selectinload(Article.source)),
        selectinload(Article.versions).load_only(
            ArticleVersion.id, ArticleVersion.version, ArticleVersion.title,
            ArticleVersion.fetched_at, ArticleVersion.sha)])
    if article is None:
        raise NotFound(f"no article with id {article_id}")
    original = None
    if article.duplicate_of is not None:
        original = page.db.scalars(
            select(Article).where(Article.id == article.duplicate_of)
            .options(load_only(Article.id, Article.title, Article.source_id),
                     selectinload(Article.source).load_only(Source.name))).one_or_none()
    matches = sorted(article.matches, key=lambda m: m.topic)
    spans = [span for m in matches for span in _spans(m)]
    return "article.html", {
        "article": article, "original": original,
        "head_title": drop_format(article.title) or f"Article {article.id}",  # no <bdi> there
        "title": highlighted(article.title, spans, "title"),
        "text": highlighted(article.text or article.summary, spans,
                            "text" if article.text else None),
        "explained": [_explain(page, article, m) for m in matches],
        "sightings": sorted(article.sightings, key=lambda s: (s.seen_at, s.id)),
        "max_depth": MAX_DEPTH_CLASS,
    }


def _spans(match: TopicMatch) -> list[tuple[str, int, int, str]]:
    """The stored evidence of a match: (field, start, end, text), as `Match.as_json` keeps it."""
    spans = []
    for span in (match.highlights or {}).get("spans", []) if isinstance(
            match.highlights, dict) else []:
        try:
            field, start, end, text = span
            spans.append((str(field), int(start), int(end), str(text)))
        except (TypeError, ValueError):
            continue  # evidence of an older shape: not highlighted
    return spans


def highlighted(text: str, spans: list[tuple[str, int, int, str]],
                field: str | None) -> list[Segment]:
    """`text` as segments with the spans of `field` marked. A span whose offsets no longer
    fit the text (an edited statement) is found by its text instead."""
    if not text:
        return []
    ranges: list[tuple[int, int]] = []
    for name, start, end, found in spans:
        if name != field or not found:
            continue
        if 0 <= start < end <= len(text) and text[start:end] == found:
            ranges.append((start, end))
            continue
        at = text.find(found)
        while at != -1:  # offsets stale: every occurrence of what matched
            ranges.append((at, at + len(found)))
            at = text.find(found, at + len(found))
    segments: list[Segment] = []
    position = 0
    for start, end in sorted(ranges):
        if end <= position:
            continue
        start = max(start, position)
        if start > position:
            segments.append((text[position:start], False))
        segments.append((text[start:end], True))
        position = end
    if position < len(text):
        segments.append((text[position:], False))
    return segments


def _explain(page: Page, article: Article, match: TopicMatch) -> Explained:
    evidence = match.highlights if isinstance(match.highlights, dict) else {}
    texts = tuple(dict.fromkeys(span[3] for span in _spans(match)))
    topic = next((t for t in page.config.topics if t.name == match.topic), None)
    if topic is None:
        return Explained(match.topic, None, str(evidence.get("snippet", "")), texts, [],
                         "this topic is no longer in the config: its stored evidence only")
    try:
        query = parse_query(topic.query, page.config.aliases)
    except (QuerySyntaxError, ValueError) as error:
        return Explained(match.topic, topic.query, str(evidence.get("snippet", "")), texts,
                         [], f"the topic's query does not parse now: {error}")
    tags = next((s.tags for s in page.config.sources if s.name == article.source.name), ())
    clauses = explain(query, document(article, tags))
    problem = None if not clauses or clauses[0].matched else \
        "the topic's query (or its aliases) changed since: it does not match this text now"
    return Explained(match.topic, topic.query, str(evidence.get("snippet", "")), texts,
                     clauses, problem)
