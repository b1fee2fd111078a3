"""`/sources`: every configured source's health (ok, warning, failing, silent, never
polled), its last poll and success, its last error (secrets masked), its new articles per
day over the last two weeks (one grouped query for the page's sources) and its next poll."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.config import is_duration, parse_duration
from crawler.config.model import Source as SourceSpec
from crawler.daemon.schedule import backoff, interval_of
from crawler.daemon.web.filters import PAGE_SIZE, ListFilters, page_of
from crawler.daemon.web.pages.topics import Links
from storage import repository as repo
from storage.models import Article, Source

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page

STATES = repo.SOURCE_HEALTH
CHART_DAYS = 14


@dataclass(frozen=True)
class SourceRow:
    spec: SourceSpec
    stored: Source | None
    state: str
    url: str  # masked
    error: str | None  # masked: the last error, or the warning
    days: list[tuple[str, int]]
    next_poll: datetime | None
    held: bool  # the next poll waits for a server's Retry-After

    @property
    def state_class(self) -> str:
        return "state-" + self.state.replace(" ", "-")


def page(page: Page) -> tuple[str, dict[str, Any]]:
    filters = ListFilters.of(page.request.args)
    wanted = (page.request.args.get("state") or "").strip() or None
    problems = list(filters.problems)
    if wanted is not None and wanted not in STATES:
        problems.append(f"state: {wanted!r} is not one of {', '.join(STATES)}")
        wanted = None
    specs = [s for s in page.config.sources
             if not filters.source or s.name == filters.source]
    if filters.language:
        specs = [s for s in specs if s.language == filters.language]
    stored = {s.name: s for s in page.db.scalars(
        select(Source).where(Source.name.in_([s.name for s in specs])))}
    states = {s.name: repo.source_health(stored.get(s.name)) for s in specs}
    tally = {state: sum(1 for v in states.values() if v == state) for state in STATES}
    if wanted is not None:
        specs = [s for s in specs if states[s.name] == wanted]
    shown, more = page_of(specs[filters.offset:filters.offset + PAGE_SIZE + 1], filters)
    now = datetime.now(timezone.utc)
    redact = page.config.redactor()
    ids = {s.id: s.name for s in stored.values() if s.name in {x.name for x in shown}}
    per_day = new_per_day(page.db, ids, now)
    rows = []
    for spec in shown:
        source = stored.get(spec.name)
        error = None
        if source is not None:
            error = source.last_error if source.consecutive_failures else source.last_warning
        when, held = next_poll(spec.every, source, now)
        rows.append(SourceRow(spec, source, states[spec.name], redact(spec.url),
                              redact(error) if error else None,
                              per_day.get(spec.name, _empty(now)), when, held))
    filters = replace(filters, problems=tuple(problems))
    return "sources.html", {"filters": filters, "rows": rows, "more": more, "state": wanted,
                            "states": STATES, "tally": tally, "now": now,
                            "chart_days": CHART_DAYS,
                            "links": Links(filters, {"state": wanted})}


def _empty(now: datetime) -> list[tuple[str, int]]:
    return [(day.isoformat(), 0) for day in _days(now)]


def _days(now: datetime) -> list[date]:
    today = now.date()
    return [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]


def new_per_day(session: Session, ids: dict[int, str],
                now: datetime) -> dict[str, list[tuple[str, int]]]:
    """New articles per source and UTC day over the last CHART_DAYS days, oldest first, for
    the sources `ids` (id → name): one grouped query."""
    if not ids:
        return {}
    start = datetime.combine(_days(now)[0], datetime.min.time(), timezone.utc)
    if session.get_bind().dialect.name == "postgresql":
        day = func.to_char(func.timezone("UTC", Article.first_seen_at), "YYYY-MM-DD")
    else:
        day = func.date(Article.first_seen_at)  # stored in UTC
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    rows = session.execute(select(Article.source_id, day.label("day"), func.count())
                           .where(Article.first_seen_at >= start,
                                  Article.source_id.in_(list(ids)))
                           .group_by(Article.source_id, day))
    for source_id, on, count in rows:
        counts[ids[source_id]][str(on)] = count
    return {name: [(d.isoformat(), counts[name].get(d.isoformat(), 0)) for d in _days(now)]
            for name in ids.values()}


def next_poll(every: str, source: Source | None, now: datetime) -> tuple[datetime | None, bool]:
    """When the daemon polls the source next (None: soon after it starts, never polled), and
    whether a server's Retry-After holds it: the schedule counted from the last poll, a
    failing source's backoff, `not_before` when later."""
    if source is None or source.last_polled_at is None:
        return None, False
    last = source.last_polled_at
    if is_duration(every):
        due = last + parse_duration(every)
    else:
        due = CronTrigger.from_crontab(every, timezone="UTC").get_next_fire_time(
            None, last + timedelta(seconds=1))
    if source.consecutive_failures:
        due = max(due, last + backoff(source.consecutive_failures, interval_of(every)))
    held = source.not_before is not None and source.not_before > due
    return (source.not_before if held else due), held
