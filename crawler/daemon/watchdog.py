"""Source health for the operator: a source failing several polls in a row, or silent for
longer than its expected cadence (`expect_every`, else learned from its history), queues one
alert in the outbox for each of `operator_channels`; one "recovered" follows when it heals.
The alerts and the health reported are written in one transaction, so a restart neither
repeats nor loses one, and the health reported moves by compare-and-set, so of two members
checking at once only one tells; the dispatcher delivers them like any alert (retries,
Retry-After)."""
from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels.base import AlertItem
from alerts.outbox import OPERATOR_TOPIC, queue_operator_alerts
from crawler.config import Config
from storage import repository as repo
from storage.models import Article, Source

log = logging.getLogger(__name__)
FAILING_AFTER = 3  # consecutive failed polls
LEARNED_FROM = 5  # articles needed before a cadence is learned
SILENCE_FACTOR = 3  # silent for three times the usual gap between new articles


@dataclass(frozen=True)
class Health:
    state: str  # ok | failing | silent
    detail: str


def health_of(source: Source, last_new: datetime | None, cadence: timedelta | None,
              now: datetime) -> Health:
    """A source's health from its crawl state (pure)."""
    if source.consecutive_failures >= FAILING_AFTER:
        return Health("failing", f"{source.consecutive_failures} failed polls in a row; "
                                 f"last error: {source.last_error}")
    if cadence is not None and last_new is not None and now - last_new > cadence:
        return Health("silent", f"no new article since {last_new:%Y-%m-%d %H:%M} UTC "
                                f"(expected one every {_human(cadence)})")
    return Health("ok", "polls succeed and new articles arrive")


def learned_cadence(arrivals: list[datetime]) -> timedelta | None:
    """Three times the median gap between a source's recent new articles."""
    if len(arrivals) < LEARNED_FROM:
        return None
    ordered = sorted(arrivals)
    gaps = [(b - a).total_seconds() for a, b in zip(ordered, ordered[1:], strict=False)]
    return timedelta(seconds=statistics.median(gaps) * SILENCE_FACTOR) or None


def check_sources(config: Config, db: sessionmaker[Session], now: datetime,
                  names: list[str] | None = None) -> list[tuple[str, str, str]]:
    """Queue an operator alert for each source (of `names`, or all) whose health changed
    since it was last reported. → (source, health before, health now) for each change"""
    if not config.operator_channels:
        return []
    changes = []
    for spec in config.sources:
        if names is not None and spec.name not in names:
            continue
        with db.begin() as session:
            source = repo.source_by_name(session, spec.name)
            arrivals = list(session.scalars(
                select(Article.first_seen_at).where(Article.source_id == source.id)
                .order_by(Article.id.desc()).limit(20)))
            if source.last_polled_at is None:
                continue
            health = health_of(source, max(arrivals, default=None),
                               spec.expect_every or learned_cadence(arrivals), now)
            reported = source.reported_health or "ok"
            if health.state != reported and _moved(session, source, health.state):
                _tell(session, config, spec.name, spec.url, health, reported, now)
                changes.append((spec.name, reported, health.state))
    return changes


def _moved(session: Session, source: Source, state: str) -> bool:
    """Report `state` unless another member reported a change since `source` was read."""
    return session.execute(
        update(Source).where(Source.id == source.id,
                             Source.reported_health.is_not_distinct_from(source.reported_health))
        .values(reported_health=state).execution_options(synchronize_session=False)
    ).rowcount == 1


def _tell(session: Session, config: Config, name: str, url: str, health: Health, was: str,
          now: datetime) -> None:
    """Queue the change for every operator channel. The source's URL and last error are
    masked: they may carry a token from the environment."""
    title = f"source {name} recovered (was {was})" if health.state == "ok" \
        else f"source {name} is {health.state}"
    redact = config.redactor()
    item = AlertItem(title=title, url=redact(url), source=name, published_at=now,
                     snippet=redact(health.detail))
    queue_operator_alerts(session, OPERATOR_TOPIC, f"{name}|{health.state}|{now:%Y%m%dT%H%M%S.%f}",
                          item, config.operator_channels, now)


def _human(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f}h" if hours >= 1 else f"{span.total_seconds() / 60:.0f}m"
