"""`/topics/NAME`: a topic's query, its hits by day, its stories newest first with the best
snippet of each highlighted in the original script. Also the read model Today shares: a
topic's stories, a page of them at a time.

A story belongs to a topic when one of its articles has a `TopicMatch` for it (only
originals are matched: a copy never is). The stories of a page are chosen in one grouped
query (LIMIT/OFFSET in SQL over `topic_matches` ⋈ `articles`); their details (lead, counts,
snippet) are read for those stories only."""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy import Date, Select, case, cast, func, literal, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from alerts.channels.render import Segment, highlight
from basis.text import one_line
from crawler.config import Config, Topic
from crawler.daemon.web.filters import PAGE_SIZE, ListFilters, page_of
from storage import repository as repo
from storage.models import Article, Source, Story, TopicMatch

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page

CHART_DAYS = 30
SNIPPET_LIMIT = 400
SNIPPET_CANDIDATES = 4  # matches of a story its best snippet is chosen from
FEW_MATCHES = 3000  # a topic with fewer: its stories are read from its matches
GROUPED_MATCHES = 20_000  # a topic with fewer: its later pages are grouped in SQL
GROUP_BEYOND = 100  # stories: a page reaching further is a later page (Today's are not)
TRIAGE_FILTERS = ("unreviewed",)  # `?triage=unreviewed`: what an analyst has not looked at
_ALIAS = re.compile(r'"[^"]*"|@([A-Za-z0-9_-]+)')


@dataclass(frozen=True)
class StoryCard:
    """A story as a list shows it."""

    story: Story
    latest: datetime  # its newest matched article's first sighting
    triage: str  # as shown (repo.effective_triage)
    lead_outlet: str | None
    lead_language: str | None
    follow_ups: int
    follow_up_languages: tuple[str, ...]
    languages: tuple[str, ...]  # of the whole story, copies included
    outlets: tuple[str, ...]  # the lead's first, then the follow-ups'
    segments: tuple[Segment, ...] = ()  # the best snippet, highlighted


class Links:
    """This list's addresses with changes, keeping the parameters beyond `ListFilters`'
    (`triage`, `after`)."""

    def __init__(self, filters: ListFilters, extra: dict[str, str | None]) -> None:
        self.filters, self.extra = filters, {k: v for k, v in extra.items() if v}

    def __call__(self, **changes: Any) -> str:
        """The address with `changes`; a change of anything but the page starts again at
        page 1 (another filter's page 2 is not this one's)."""
        if "page" not in changes and changes:
            changes["page"] = 1
        extra = {k: v for k, v in {**self.extra, **changes}.items()
                 if k not in ListFilters.__dataclass_fields__}
        base = self.filters.query(**{k: v for k, v in changes.items()
                                     if k in ListFilters.__dataclass_fields__})
        extra = {k: v for k, v in extra.items() if v}
        if not extra:
            return base
        return base + ("&" if len(base) > 1 else "") + urlencode(extra)


def topic_of(config: Config, name: str) -> Topic:
    topic = next((t for t in config.topics if t.name == name), None)
    if topic is None:
        raise NotFound(f"no topic {name!r} in the config: the topics are "
                       f"{', '.join(t.name for t in config.topics) or 'none yet'}")
    return topic


def triage_filter(page: Page) -> str | None:
    value = page.request.args.get("triage")
    return value if value in TRIAGE_FILTERS else None


def topic_stories(session: Session, topic: str, filters: ListFilters,
                  after: datetime | None, limit: int, offset: int,
                  triage: str | None = None) -> list[tuple[int, datetime]]:
    """(story id, newest matched article's first sighting) of a page of the topic's
    stories, newest first; `after`: stories with a matched article first seen since.

    The topic's matched articles are read newest first (ix_articles_window, each
    checked in topic_matches' (article_id, topic) index) and streamed until `offset +
    limit` stories are found: page 1 reads a few dozen rows, not every match of the topic,
    as grouping by story before sorting would. A rare topic (few matches, where that walk
    would read many articles for each match) is read from its matches instead; so is a
    page reaching beyond the first GROUP_BEYOND stories of a topic of at most
    GROUPED_MATCHES matches, grouped by story in SQL (its matches by the topic's index,
    each article by its key): the walk to page 3 would read every match of the stories
    before it, a big story's thousands included."""
    matches = session.scalar(select(func.count()).where(TopicMatch.topic == topic)) or 0
    narrowing = []
    if after is not None:
        narrowing.append(Article.first_seen_at >= after)
    if filters.language:
        narrowing.append(Article.language == filters.language.lower())
    if filters.source:
        narrowing.append(Article.source_id == select(Source.id).where(
            Source.name == filters.source).scalar_subquery())
    if triage is not None:
        narrowing.append(repo.triage_clause(triage))
    if offset + limit > GROUP_BEYOND and matches <= GROUPED_MATCHES:
        latest = func.max(Article.first_seen_at).label("latest")
        grouped = (select(Article.story_id, latest).select_from(TopicMatch)
                   .join(Article, Article.id == TopicMatch.article_id)
                   .where(TopicMatch.topic == topic, Article.story_id.is_not(None),
                          *narrowing)
                   .group_by(Article.story_id)
                   .order_by(latest.desc(), Article.story_id.desc())
                   .limit(limit).offset(offset))
        if triage is not None:
            grouped = grouped.join(Story, Story.id == Article.story_id)
        return [(story_id, moment) for story_id, moment in session.execute(grouped)]
    if matches <= FEW_MATCHES:  # a rare topic: its matches, by its index, are fewer rows
        matched = Article.id.in_(select(TopicMatch.article_id)
                                 .where(TopicMatch.topic == topic))
    else:
        matched = select(TopicMatch.id).where(TopicMatch.article_id == Article.id,
                                              TopicMatch.topic == topic).exists()
    query: Select[Any] = (select(Article.story_id, Article.first_seen_at)
                          .where(matched, *narrowing)
                          .order_by(Article.first_seen_at.desc(), Article.id.desc()))
    if triage is not None:
        query = query.join(Story, Story.id == Article.story_id)
    found: dict[int, datetime] = {}
    batch = min(max(2 * (offset + limit), 20), 500)  # rows read at a time: a page's worth
    result = session.execute(query.execution_options(yield_per=batch))
    try:
        for story_id, moment in result:
            if story_id is not None and story_id not in found:
                found[story_id] = moment
                if len(found) >= offset + limit:
                    break
    finally:
        result.close()
    return list(found.items())[offset:offset + limit]


def story_cards(session: Session, found: list[tuple[int, datetime]],
                snippets_of: str | None = None) -> list[StoryCard]:
    """The cards of these stories (in this order); `snippets_of`: with the best snippet of
    that topic's matches."""
    ids = [story_id for story_id, _ in found]
    if not ids:
        return []
    stories = {s.id: s for s in session.scalars(select(Story).where(Story.id.in_(ids)))}
    leads = repo.story_leads(session, ids)
    lead_rows = {row.id: row for row in session.execute(
        select(Article.id, Article.outlet, Article.language, Source.name).join(Source)
        .where(Article.id.in_([lead.article_id for lead in leads.values()])))}
    latest_originals = dict(session.execute(  # (no `duplicate_of IS NULL` in WHERE: SQLite
        select(Article.story_id,              # would take that index over story_id's)
               func.max(case((Article.duplicate_of.is_(None), Article.id))))
        .where(Article.story_id.in_(ids)).group_by(Article.story_id)).all())
    snippets = best_snippets(session, snippets_of, ids, leads) if snippets_of else {}
    cards = []
    for story_id, moment in found:
        story, lead = stories[story_id], leads.get(story_id)
        row = lead_rows.get(lead.article_id) if lead else None
        outlet = (row.outlet or row.name) if row else None
        cards.append(StoryCard(
            story=story, latest=moment,
            triage=repo.effective_triage(story.triage, story.triage_watermark,
                                         latest_originals.get(story_id)),
            lead_outlet=outlet, lead_language=row.language if row else None,
            follow_ups=lead.follow_ups if lead else 0,
            follow_up_languages=lead.follow_up_languages if lead else (),
            languages=lead.languages if lead else (),
            outlets=tuple(dict.fromkeys([*([outlet] if outlet else []),
                                         *(lead.follow_up_outlets if lead else ())])),
            segments=snippets.get(story_id, ())))
    return cards


def best_snippets(session: Session, topic: str, story_ids: Collection[int],
                  leads: dict[int, repo.Lead]) -> dict[int, tuple[Segment, ...]]:
    """Per story, the snippet of its match with the most distinct matched terms (the lead's
    on a tie, then the earliest), its terms marked: snippet and terms are spans of the
    original text, so the marks are in the script the outlet wrote. Chosen among a bounded
    few matches per story — the lead's and the SNIPPET_CANDIDATES - 1 newest others — so a
    story of thousands of matches decodes a handful of highlights, not all of them."""
    if not story_ids:
        return {}
    lead_ids = [lead.article_id for lead in leads.values()]
    # `topic || ''`: not the topic's index (SQLite would read every match of the topic),
    # but the stories' articles (ix_articles_story_original), each looked up by
    # (article_id, topic); only ids are ranked, the few chosen matches' highlights read after
    place = func.row_number().over(
        partition_by=Article.story_id,
        order_by=(case((Article.id.in_(lead_ids), 0), else_=1) if lead_ids else literal(1),
                  Article.id.desc())).label("place")
    ranked = (select(Article.story_id, Article.id.label("article_id"),
                     TopicMatch.id.label("match_id"), place)
              .join(TopicMatch, TopicMatch.article_id == Article.id)
              .where(TopicMatch.topic.concat("") == topic, Article.story_id.in_(story_ids))
              .subquery())
    rows = session.execute(select(ranked.c.story_id, ranked.c.article_id,
                                  TopicMatch.highlights)
                           .join(TopicMatch, TopicMatch.id == ranked.c.match_id)
                           .where(ranked.c.place <= SNIPPET_CANDIDATES))
    best: dict[int, tuple[tuple[int, bool, int], str, tuple[str, ...]]] = {}
    for story_id, article_id, evidence in rows:
        if not isinstance(evidence, dict):
            continue
        snippet = one_line(evidence.get("snippet") or "", SNIPPET_LIMIT)
        terms = tuple(dict.fromkeys(str(span[3]) for span in evidence.get("spans") or ()
                                    if isinstance(span, list | tuple) and len(span) > 3))
        lead = leads.get(story_id)
        key = (len(terms), lead is not None and lead.article_id == article_id, -article_id)
        if snippet and (story_id not in best or key > best[story_id][0]):
            best[story_id] = (key, snippet, terms)
    return {story_id: tuple(highlight(snippet, terms))
            for story_id, (_, snippet, terms) in best.items()}


def _day(session: Session, column: Any) -> Any:
    """A UTC time's day, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)  # SQLite keeps UTC times as text


def hits_by_day(session: Session, topic: str, filters: ListFilters, now: datetime,
                days: int = CHART_DAYS) -> list[tuple[str, int]]:
    """Matched articles per day of first sighting, the last `days` days, oldest first."""
    first = (now - timedelta(days=days - 1)).date()
    day = _day(session, Article.first_seen_at).label("day")
    since = Article.first_seen_at >= datetime(first.year, first.month, first.day,
                                              tzinfo=timezone.utc)
    if filters.source:
        # the source's articles of the window (ix_articles_window holds source_id), each
        # looked up by (article_id, topic): a fiftieth of the window, fewer than the matches
        matched = select(TopicMatch.id).where(TopicMatch.article_id == Article.id,
                                              TopicMatch.topic == topic).exists()
        query = select(day, func.count()).where(matched, since).group_by(day)
    else:
        # the topic's matches (ix_topic_matches_topic_article), each article looked up by
        # its key: a few thousand lookups, not a probe for every article of the window
        query = (select(day, func.count())
                 .select_from(TopicMatch).join(Article, Article.id == TopicMatch.article_id)
                 .where(TopicMatch.topic == topic, since).group_by(day))
    if filters.language:
        query = query.where(Article.language == filters.language.lower())
    if filters.source:
        query = query.where(Article.source_id == select(Source.id).where(
            Source.name == filters.source).scalar_subquery())
    counts = {str(d): n for d, n in session.execute(query)}
    span = (first + timedelta(days=i) for i in range(days))
    return [(d.isoformat(), counts.get(d.isoformat(), 0)) for d in span]


def aliases_of(topic: Topic, config: Config) -> list[tuple[str, tuple[str, ...]]]:
    """The aliases a topic's query uses, as configured."""
    used = dict.fromkeys(m.group(1) for m in _ALIAS.finditer(topic.query) if m.group(1))
    return [(name, tuple(config.aliases[name])) for name in used if name in config.aliases]


def page(page: Page) -> tuple[str, dict[str, Any]]:
    topic = topic_of(page.config, page.arg("name"))
    filters = ListFilters.of(page.request.args)
    triage = triage_filter(page)
    found, more = page_of(topic_stories(page.db, topic.name, filters, filters.after,
                                        PAGE_SIZE + 1, filters.offset, triage), filters)
    now = datetime.now(timezone.utc)
    return "topic.html", {
        "topic": topic, "aliases": aliases_of(topic, page.config), "filters": filters,
        "triage": triage, "days": hits_by_day(page.db, topic.name, filters, now),
        "stories": story_cards(page.db, found, snippets_of=topic.name), "more": more,
        "config": page.config, "links": Links(filters, {"triage": triage})}
