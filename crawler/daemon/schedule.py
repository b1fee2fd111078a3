"""When each source is polled (pure): APScheduler 3 triggers from `every` (a duration or a
cron expression) with jitter; a first run computed from the database's `last_polled_at`,
so a source that became overdue while the daemon was down runs once, soon after start; and
a growing, capped backoff for a source that keeps failing (it is never abandoned)."""
from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawler.config import is_duration, parse_duration

JITTER_SHARE = 0.1  # of the interval, up to MAX_JITTER: polls of many sources spread out
MAX_JITTER = timedelta(minutes=1)
STARTUP_SPREAD = timedelta(seconds=20)  # overdue sources start within this (or their
# interval, if shorter) after start; each keeps its phase, so polls stay spread out
# (the default of `daemon.startup_spread`)
BACKOFF_CAP = timedelta(hours=6)


def interval_of(schedule: str) -> timedelta:
    """How often a schedule fires (for a cron expression: the gap between two firings)."""
    if is_duration(schedule):
        return parse_duration(schedule)
    trigger = CronTrigger.from_crontab(schedule, timezone="UTC")
    first = trigger.get_next_fire_time(None, datetime(2026, 1, 5, tzinfo=trigger.timezone))
    return trigger.get_next_fire_time(first, first + timedelta(seconds=1)) - first


def trigger_for(schedule: str) -> BaseTrigger:
    jitter = min(interval_of(schedule) * JITTER_SHARE, MAX_JITTER).total_seconds()
    if is_duration(schedule):  # APScheduler delays each run by up to `jitter` and counts the
        # next from it: half the jitter comes off the interval, so polls come `every` on average
        return IntervalTrigger(seconds=parse_duration(schedule).total_seconds() - jitter / 2,
                               jitter=jitter or None, timezone="UTC")
    return CronTrigger(**_cron_fields(schedule), jitter=jitter or None, timezone="UTC")


def _cron_fields(schedule: str) -> dict[str, str]:
    minute, hour, day, month, day_of_week = schedule.split()
    return {"minute": minute, "hour": hour, "day": day, "month": month,
            "day_of_week": day_of_week}


def first_run(schedule: str, last_polled_at: datetime | None, now: datetime,
              spread: timedelta = STARTUP_SPREAD,
              rng: Callable[[], float] = random.random) -> datetime:
    """The first poll after start: when the schedule says, counted from the last poll;
    a source never polled or overdue runs once, within its interval (at most `spread`)
    of `now`."""
    if last_polled_at is not None:
        due = last_polled_at + parse_duration(schedule) if is_duration(schedule) else \
            CronTrigger.from_crontab(schedule, timezone="UTC").get_next_fire_time(
                None, last_polled_at + timedelta(seconds=1))
        if due > now:
            return due
    return now + min(interval_of(schedule), spread) * rng()


def backoff(failures: int, interval: timedelta) -> timedelta:
    """How long after a failed poll the next one waits: the interval, doubled per
    consecutive failure, capped at BACKOFF_CAP (but never shorter than the interval)."""
    if failures <= 1:
        return interval
    doublings = min(failures - 1, 32)  # past the cap long before; keeps the number small
    return max(interval, min(interval * 2 ** doublings, BACKOFF_CAP))


def may_poll(now: datetime, last_polled_at: datetime | None, failures: int,
             interval: timedelta, not_before: datetime | None) -> bool:
    """Whether a scheduled poll runs: not while a server's Retry-After holds, nor inside a
    failing source's backoff (a little early is fine: triggers jitter)."""
    if not_before is not None and now < not_before:
        return False
    if failures and last_polled_at is not None:
        return now >= last_polled_at + backoff(failures, interval) - interval * JITTER_SHARE
    return True
