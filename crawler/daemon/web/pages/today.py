"""`/`: what is new since you last looked — per topic (config order) its stories with an
article first seen since then — and the sources that need attention (failing or silent).

"Since you last looked" is a cookie, `mediawatch_seen` (an ISO time, HttpOnly,
SameSite=Strict), set to now on each visit; the page uses the value it had before. An
explicit `?since=7d` wins; the first visit shows the last 24 hours. The page's own links
(pages, filters) carry the window as `?after=ISO`, so page 2 shows the same reading."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from crawler.config import Topic
from crawler.daemon.web.access import is_https
from crawler.daemon.web.filters import PAGE_SIZE, ListFilters
from crawler.daemon.web.pages.topics import (
    Links,
    StoryCard,
    story_cards,
    topic_stories,
    triage_filter,
)
from storage import repository as repo
from storage.models import Source

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page

SEEN_COOKIE = "mediawatch_seen"
FIRST_VISIT = timedelta(hours=24)
PER_TOPIC = 10  # stories a topic shows when every topic is shown (one topic: PAGE_SIZE)
KEEP_SEEN = timedelta(days=400)


@dataclass(frozen=True)
class Section:
    topic: Topic
    stories: list[StoryCard]
    more: bool


@dataclass(frozen=True)
class Window:
    start: datetime
    why: str  # since | after | last visit | first visit


def parse_time(value: str | None, now: datetime) -> datetime | None:
    """An ISO time from a cookie or a link, aware UTC, never after now; else None."""
    if not value or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return min(moment.astimezone(timezone.utc), now)
    except OverflowError:  # 0001-01-01 at +14:00 is before the first representable UTC time
        return None


def window_of(page: Page, filters: ListFilters, now: datetime) -> Window:
    if filters.after is not None:
        return Window(filters.after, "since")
    after = parse_time(page.request.args.get("after"), now)
    if after is not None:
        return Window(after, "after")
    seen = parse_time(page.request.cookies.get(SEEN_COOKIE), now)
    if seen is not None:
        return Window(seen, "last visit")
    return Window(now - FIRST_VISIT, "first visit")


@dataclass(frozen=True)
class Attention:
    source: Source
    state: str  # failing | silent (repo.source_health)
    error: str | None  # its last error, secrets masked


def attention(page: Page) -> list[Attention]:
    """The configured sources failing (a failed last poll) or reported silent by the
    watchdog, with that state (as /sources and `sources list` say it) and their last error
    masked as /sources masks it."""
    names = [s.name for s in page.config.sources]
    sources = page.db.scalars(select(Source).where(
        Source.name.in_(names),
        or_(Source.consecutive_failures > 0, Source.reported_health == "silent"))
        .order_by(Source.name))
    redact = page.config.redactor()
    found = [(s, repo.source_health(s)) for s in sources]
    return [Attention(s, state, redact(s.last_error) if s.last_error else None)
            for s, state in found if state in ("failing", "silent")]


def page(page: Page) -> tuple[str, dict[str, Any]]:
    filters = ListFilters.of(page.request.args)
    triage = triage_filter(page)
    now = datetime.now(timezone.utc)
    window = window_of(page, filters, now)
    page.cookies.append((SEEN_COOKIE, now.isoformat(timespec="seconds"), {
        "httponly": True, "samesite": "Strict",
        "secure": is_https(page.request, page.config.web.base_url),
        "path": "/", "max_age": int(KEEP_SEEN.total_seconds())}))
    size = PAGE_SIZE if filters.topic else PER_TOPIC
    shown = [t for t in page.config.topics if filters.topic in (None, t.name)]
    found = {t.name: topic_stories(page.db, t.name, filters, window.start, size + 1,
                                   (filters.page - 1) * size, triage) for t in shown}
    every = {story_id: moment for rows in found.values() for story_id, moment in rows[:size]}
    cards = {card.story.id: card for card in story_cards(page.db, list(every.items()))}
    sections = [Section(t, [replace(cards[story_id], latest=moment)
                            for story_id, moment in found[t.name][:size]],
                        len(found[t.name]) > size) for t in shown]
    after = None if window.why == "since" else window.start.isoformat(timespec="seconds")
    return "today.html", {
        "filters": filters, "triage": triage, "window": window, "after": after,
        "sections": sections, "more": any(s.more for s in sections),
        "attention": attention(page), "config": page.config,
        "links": Links(filters, {"triage": triage, "after": after})}
