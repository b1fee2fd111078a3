"""Delivering the outbox: claim due alerts, send them, record the result.

A claim is a compare-and-set on the row (pending → sending), so two dispatchers never send
the same alert. A claim is a lease: its owner renews it (`claimed_at`) every quarter of
`sending_timeout` from a thread of its own for as long as it holds it, sending or not; another
dispatcher takes a claim back (→ pending) once it has watched it unrenewed for
`sending_timeout` (its own clock, so the members' clocks need not agree; an outage of the
database is no time watched), or once it is older than `ABANDONED` (for a dispatcher that
watches no longer, e.g. a one-shot `alerts send`). A member killed while sending thus gives
its alert back within a minute. An outcome the database cannot take (an outage after the
channel accepted) is kept in memory, its claim still renewed, and written as soon as the
database is back (by the renewing thread, or first thing at the next `deliver_due`); an
outcome written late is not written over a row settled meanwhile. One the database refuses
(a bug, not an outage) is logged and dropped: the alert is tried again.

So every alert is delivered exactly once, but in windows: a process killed (or stopped, or a
one-shot `alerts send` ending during an outage) after a channel accepted a message and before
its outcome was written has the alert sent again once the claim is taken back; so has an
owner cut from the database (not the others) for longer than `sending_timeout`, and an
outage longer than `ABANDONED`. There it is at-least-once; the Message-ID is the same at
every attempt (derived from the row, see `message_id`), so a receiver can recognise it.

Transient failures retry with exponential backoff and jitter (at least what the channel asked
for with Retry-After); permanent ones fail with the reason. A Retry-After holds the whole
channel (`channel_waits`, shared by every dispatcher): no request goes to it before then.
Alerts for a held channel or one that could not be built, of a snoozed topic, in its quiet
hours or of a story with fewer sources than `min_sources` wait without spending an attempt.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels.base import (
    AlertItem,
    AlertMessage,
    Channel,
    DeliveryResult,
    FollowUps,
    UnbuiltChannel,
)
from alerts.outbox import STATEMENT_KINDS, alert_key, operator_message, story_outlets
from basis.clock import utcnow
from storage import repository as repo
from storage.models import Alert, Article, Snooze, TopicMatch

log = logging.getLogger(__name__)
StoryUrl = Callable[[int], str | None]  # a story id → its page in the reading room, or None
UNBUILT_WAIT = timedelta(minutes=5)  # a channel that cannot be built: look again this late
# a claim unrenewed this long is taken back: above a renewal's period (a quarter of it) plus
# a slow database's answer; a channel's send may last longer (its owner renews meanwhile)
SENDING_TIMEOUT = timedelta(seconds=60)
ABANDONED = timedelta(minutes=10)  # a claim this old is taken back even unwatched
Outcome = Callable[[], tuple[str, str]]  # writes an alert's outcome → (report counter, line)


@dataclass(frozen=True)
class Backoff:
    base: float = 30.0  # seconds before the first retry
    cap: float = 3600.0
    max_attempts: int = 20

    def delay(self, attempts: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        delay = min(self.cap, self.base * 2 ** max(attempts - 1, 0)) * (0.5 + rng())
        return max(delay, self.waited(retry_after))

    def waited(self, retry_after: float | None) -> float:
        """A server's Retry-After, honoured up to `cap`."""
        return min(retry_after or 0.0, self.cap)


@dataclass(frozen=True)
class Controls:
    """What may hold a topic's alerts back."""

    min_sources: int = 1
    quiet_until: Callable[[datetime], datetime | None] = lambda moment: None


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    superseded: int = 0  # outcomes not written: the alert was settled elsewhere meanwhile
    lines: list[str] = field(default_factory=list)

    def add(self, counter: str, line: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)
        self.lines.append(line)


class Dispatcher:
    def __init__(self, db: sessionmaker[Session], channels: Mapping[str, Channel],
                 controls: Mapping[str, Controls] | None = None, *,
                 clock: Callable[[], datetime] = utcnow,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, backoff: Backoff = Backoff(),
                 sending_timeout: timedelta = SENDING_TIMEOUT,
                 story_url: StoryUrl | None = None) -> None:
        """`story_url`: where a story's page is (the config's `web.story_url`, asked at each
        send, so a reloaded config may change it); alerts link to it besides the article."""
        self.db, self.channels, self.controls = db, channels, controls or {}
        self.story_url = story_url
        self.clock, self.sleep, self.rng, self.backoff = clock, sleep, rng, backoff
        self.sending_timeout = sending_timeout
        self.last_sent: dict[str, float] = {}
        self.held: set[int] = set()  # claimed here, outcome not written yet: renewed
        self.unwritten: dict[int, Outcome] = {}  # outcomes the database could not take yet
        self.watched: dict[int, tuple[datetime, datetime]] = {}  # others' claims: (claimed_at,
        # unchanged since)
        self.lock = threading.Lock()  # `held`, `unwritten` and `renewer`: two threads use them
        self.writing = threading.Lock()  # one thread at a time writes the outcomes kept
        self.renewer: threading.Thread | None = None

    def deliver_due(self, limit: int = 1000) -> DispatchReport:
        """Send every alert that is due now (at most `limit`), after writing the outcomes the
        database could not take before; none is claimed while one still waits."""
        report = DispatchReport()
        try:
            if not self.write_unwritten(report):
                return report
            self.recover_stuck()
            for alert_id in self.due(limit):
                if self.claim(alert_id):
                    self.keep(alert_id)
                    if not self.deliver(alert_id, report):
                        break  # the database is gone: claim nothing more
        except Exception as error:
            if isinstance(error, SQLAlchemyError):
                self.watched.clear()  # an outage is no time spent watching others' claims
            with self.lock:  # a claim whose outcome is not kept was not sent: it lapses
                self.held &= set(self.unwritten)
            raise
        return report

    def recover_stuck(self) -> int:
        """Take back the claims of others watched unrenewed for `sending_timeout`, or older
        than `ABANDONED`. → claims taken back"""
        now = self.clock()
        with self.db() as session:
            claims = session.execute(select(Alert.id, Alert.claimed_at)
                                     .where(Alert.status == "sending")).all()
        with self.lock:
            mine = set(self.held)
        watched = {}
        for alert_id, claimed_at in claims:
            seen = self.watched.get(alert_id)
            watched[alert_id] = seen if seen and seen[0] == claimed_at else (claimed_at, now)
        self.watched = watched
        stale = [(alert_id, claimed_at) for alert_id, (claimed_at, since) in watched.items()
                 if alert_id not in mine and (now - since >= self.sending_timeout
                                              or claimed_at < now - ABANDONED)]
        taken = 0
        with self.db.begin() as session:
            for alert_id, claimed_at in stale:  # compare-and-set: unless renewed meanwhile
                taken += session.execute(
                    update(Alert).where(Alert.id == alert_id, Alert.status == "sending",
                                        Alert.claimed_at == claimed_at)
                    .values(status="pending", next_attempt_at=now)).rowcount or 0
        return taken

    def due(self, limit: int) -> list[int]:
        now = self.clock()
        with self.db() as session:
            return list(session.scalars(
                select(Alert.id).where(Alert.status == "pending", Alert.kind != "digest",
                                       or_(Alert.next_attempt_at.is_(None),
                                           Alert.next_attempt_at <= now))
                .order_by(Alert.id).limit(limit)))

    def claim(self, alert_id: int) -> bool:
        with self.db.begin() as session:
            result = session.execute(update(Alert).where(Alert.id == alert_id,
                                                         Alert.status == "pending")
                                     .values(status="sending", claimed_at=self.clock()))
            return result.rowcount == 1

    # ------------------------------------------------------------ leases

    def keep(self, alert_id: int) -> None:
        """Hold a claim: renewed from the renewing thread until its outcome is written."""
        with self.lock:
            self.held.add(alert_id)
            if self.renewer is None:
                self.renewer = threading.Thread(target=self.renew_while_holding, daemon=True,
                                                name="alert-claims")
                self.renewer.start()

    def renew_while_holding(self) -> None:
        """(The renewing thread.) Every quarter of `sending_timeout`, while a claim is held:
        write the outcomes kept, renew the other claims."""
        while True:
            time.sleep(self.sending_timeout.total_seconds() / 4)
            with self.lock:
                if not self.held:
                    self.renewer = None
                    return
            report = DispatchReport()
            try:
                self.write_unwritten(report)
                self.renew_claims()
            except SQLAlchemyError as exc:  # the outage goes on: try again next time
                log.debug("renewing the alert claims failed: %s", exc)
            except Exception:  # noqa: BLE001 — a bug: say so, and go on renewing
                log.exception("renewing the alert claims failed")
            for line in report.lines:
                log.info("%s", line)

    def renew_claims(self) -> int:
        """claimed_at = now for the claims held here. → claims renewed"""
        with self.lock:
            held = sorted(self.held)
        if not held:
            return 0
        with self.db.begin() as session:
            return session.execute(update(Alert).where(Alert.id.in_(held),
                                                       Alert.status == "sending")
                                   .values(claimed_at=self.clock())).rowcount or 0

    def drop(self, alert_id: int) -> None:
        with self.lock:
            self.held.discard(alert_id)
            self.unwritten.pop(alert_id, None)

    # ------------------------------------------------------------ outcomes

    def settle(self, alert_id: int, outcome: Outcome, report: DispatchReport) -> bool:
        """Write an outcome; one the database cannot take (unreachable) is kept for later,
        one it refuses (a bug) is logged and dropped: its claim lapses and the alert is
        tried again. → written"""
        try:
            report.add(*outcome())
        except SQLAlchemyError as exc:
            if not is_outage(exc):
                log.exception("alert %d: its outcome could not be written", alert_id)
                self.drop(alert_id)
                return True
            with self.lock:
                self.unwritten[alert_id] = outcome
            log.error("alert %d: the database could not take its outcome (%s); it is kept in "
                      "memory and written once the database is back, its claim renewed "
                      "meanwhile", alert_id, type(exc).__name__)
            return False
        self.drop(alert_id)
        return True

    def write_unwritten(self, report: DispatchReport) -> bool:
        """Write the outcomes kept while the database was away. → all written"""
        with self.writing:
            with self.lock:
                kept = list(self.unwritten.items())
            for alert_id, outcome in kept:
                try:
                    report.add(*outcome())
                except SQLAlchemyError as exc:
                    if is_outage(exc):
                        return False
                    log.exception("alert %d: its outcome could not be written", alert_id)
                self.drop(alert_id)
                log.warning("alert %d: its outcome is written, the database is back", alert_id)
            return True

    def deliver(self, alert_id: int, report: DispatchReport) -> bool:
        """Send a claimed alert and write the outcome. → False: the database could not take
        it (kept for later)"""
        with self.db() as session:
            alert = session.get_one(Alert, alert_id)
            hold = self.hold(session, alert)
            message = None if hold else with_page(message_for(session, alert), self.story_url)
            label, channel_name = f"{alert.topic} → {alert.channel}", alert.channel
        if hold is not None:
            until, reason = hold
            return self.settle(alert_id, lambda: self.release(alert_id, until, reason, label),
                               report)
        channel = self.channels.get(channel_name)
        result = self.send(channel, message) if channel else \
            DeliveryResult.refused(f"channel {channel_name!r} is no longer configured")
        return self.settle(alert_id, lambda: self.record(alert_id, result, label), report)

    def hold(self, session: Session, alert: Alert) -> tuple[datetime, str] | None:
        now = self.clock()
        channel = self.channels.get(alert.channel)
        if isinstance(channel, UnbuiltChannel):
            return now + UNBUILT_WAIT, f"channel {channel.name!r} cannot be built: {channel.reason}"
        wait = channel_hold(session, alert.channel, now)
        if wait is not None or alert.kind == "operator":  # topic controls are for topics
            return wait
        snooze = session.get(Snooze, alert.topic)
        if snooze is not None and snooze.until > now:
            return snooze.until, f"topic snoozed until {snooze.until:%Y-%m-%d %H:%M} UTC"
        controls = self.controls.get(alert.topic, Controls())
        quiet = controls.quiet_until(now)
        if quiet is not None:
            return quiet, f"quiet hours until {quiet:%Y-%m-%d %H:%M} UTC"
        if alert.kind in STATEMENT_KINDS:  # about one statement, however many outlets
            return None
        outlets = story_outlets(session, alert.story_id, alert.article_id)
        if outlets < controls.min_sources:
            return now + timedelta(minutes=10), \
                f"story has {outlets} of the {controls.min_sources} sources it needs"
        return None

    def send(self, channel: Channel, message: AlertMessage) -> DeliveryResult:
        wait = self.last_sent.get(channel.name, float("-inf")) + channel.min_interval \
            - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        try:
            return channel.send(message)
        except Exception as exc:  # noqa: BLE001 — a channel bug must not lose the alert
            log.exception("channel %s raised", channel.name)
            return DeliveryResult.retry(f"{type(exc).__name__}: {exc}")
        finally:
            self.last_sent[channel.name] = time.monotonic()

    def release(self, alert_id: int, until: datetime, reason: str,
                label: str) -> tuple[str, str]:
        with self.db.begin() as session:
            alert = session.get_one(Alert, alert_id)
            if alert.status != "sending":
                return superseded(alert, label)
            alert.status, alert.next_attempt_at, alert.last_error = "pending", until, reason
        return "held", f"alert {alert_id} ({label}) waits: {reason}"

    def record(self, alert_id: int, result: DeliveryResult, label: str) -> tuple[str, str]:
        now = self.clock()
        with self.db.begin() as session:
            alert = session.get_one(Alert, alert_id)
            # pending: taken back and not sent again yet (written now, it never is)
            if alert.status not in ("sending", "pending"):
                return superseded(alert, label)
            alert.attempts += 1
            if result.retry_after is not None and not result.ok:  # the last attempt too
                hold_for(session, alert.channel, now, self.backoff.waited(result.retry_after),
                         result.reason)
            if result.ok:
                alert.status, alert.sent_at, alert.last_error = "sent", now, None
                return "sent", f"alert {alert_id} ({label}): sent"
            if result.permanent or alert.attempts >= self.backoff.max_attempts:
                alert.status, alert.last_error = "failed", result.reason
                return "failed", f"alert {alert_id} ({label}): failed: {result.reason}"
            delay = self.backoff.delay(alert.attempts, result.retry_after, self.rng)
            alert.status, alert.last_error = "pending", result.reason
            alert.next_attempt_at = now + timedelta(seconds=delay)
            return "retried", f"alert {alert_id} ({label}): will retry in {delay:.0f}s: " \
                              f"{result.reason}"


def is_outage(error: SQLAlchemyError) -> bool:
    """The database is unreachable (or went away), as opposed to refusing a statement."""
    return isinstance(error, (OperationalError, InterfaceError)) or \
        getattr(error, "connection_invalidated", False)


def superseded(alert: Alert, label: str) -> tuple[str, str]:
    """An outcome written late (after an outage) for an alert settled meanwhile: by this
    dispatcher's own commit whose answer was lost, or by another that took the claim back."""
    return "superseded", f"alert {alert.id} ({label}): already {alert.status}; this " \
                         "outcome is not written"


def hold_for(session: Session, channel: str, now: datetime, seconds: float,
             reason: str) -> None:
    """The channel asked us to wait (Retry-After): hold it for every alert."""
    repo.hold_channel(session, channel, now + timedelta(seconds=seconds), reason)


def channel_hold(session: Session, channel: str, now: datetime) -> tuple[datetime, str] | None:
    wait = repo.channel_wait(session, channel, now)
    if wait is None:
        return None
    return wait.until, (f"channel {channel!r} asked to wait until "
                        f"{wait.until:%Y-%m-%d %H:%M:%S} UTC (Retry-After): {wait.reason}")


# ---------------------------------------------------------------- messages

def message_for(session: Session, alert: Alert) -> AlertMessage:
    """The message for one alert: its article and those batched with it."""
    if alert.kind == "operator":
        return operator_message(alert)
    if alert.kind in STATEMENT_KINDS:  # threaded under the story's first alert
        return replace(operator_message(alert), thread_id=message_id(
            alert.topic, alert.story_id, alert.article_id, alert.channel))
    articles = [alert.article, *(entry.article for entry in alert.batch)]
    first = message_id(alert.topic, alert.story_id, alert.article_id, alert.channel)
    is_first = alert.idempotency_key == alert_key(alert.topic, alert.story_id, alert.channel)
    return AlertMessage(
        kind="update" if alert.kind == "update" else "new", topic=alert.topic,
        items=tuple(item_for(session, article, alert.topic) for article in articles),
        story_id=alert.story_id,
        outlets=story_outlets(session, alert.story_id, alert.article_id),
        message_id=first if is_first else first.replace("@", f".{alert.id}@"),
        thread_id=first if alert.kind == "update" else None,
        follow_ups=follow_ups(session, alert.story_id) if alert.kind == "update" else None)


def with_page(message: AlertMessage, story_url: StoryUrl | None) -> AlertMessage:
    """The message with its story's page, when there is a story and a page for it."""
    if story_url is None or message.story_id is None or message.kind == "operator":
        return message
    return replace(message, story_url=story_url(message.story_id))


def follow_ups(session: Session, story_id: int | None) -> FollowUps | None:
    """What followed the story's lead, as the update is sent."""
    lead = repo.story_leads(session, [story_id]).get(story_id) if story_id else None
    if lead is None:
        return None
    article = session.get_one(Article, lead.article_id)
    return FollowUps(article.title or article.canonical_url, lead.follow_ups,
                     lead.follow_up_languages, lead.follow_up_outlets)


def message_id(topic: str, story_id: int | None, article_id: int | None, channel: str) -> str:
    """Stable across retries and restarts, so a mail client threads a story's updates."""
    story = f"story-{story_id}" if story_id is not None else f"article-{article_id}"
    return f"<{topic}.{story}.{channel}@mediawatch>"


def item_for(session: Session, article: Article, topic: str) -> AlertItem:
    match = session.scalar(select(TopicMatch).where(TopicMatch.article_id == article.id,
                                                    TopicMatch.topic == topic))
    evidence = match.highlights if match else {}
    matched = tuple(dict.fromkeys(span[3] for span in evidence.get("spans", [])))
    return AlertItem(title=article.title or article.canonical_url, url=article.canonical_url,
                     source=article.source.name, published_at=article.published_at,
                     snippet=evidence.get("snippet") or article.summary, matched=matched)
