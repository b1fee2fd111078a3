"""Digests: the pending alerts of digest topics, one message per (topic, channel), one item
per story, sent on the `digest.cron` schedule or by `mediawatch digest send`. A channel held
by its Retry-After gets no digest (and spends no attempt) until the time has passed."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels.base import AlertMessage, Channel, DeliveryResult
from alerts.dispatcher import (
    Backoff,
    DispatchReport,
    StoryUrl,
    channel_hold,
    hold_for,
    item_for,
)
from alerts.outbox import story_outlets
from basis.clock import utcnow
from storage.models import Alert


def send_digests(db: sessionmaker[Session], channels: Mapping[str, Channel],
                 topic: str | None = None, *, story_url: StoryUrl | None = None
                 ) -> DispatchReport:
    """`story_url`: each story's page (see `Dispatcher`), linked from its item."""
    report = DispatchReport()
    with db() as session:
        query = select(Alert).where(Alert.kind == "digest", Alert.status == "pending")
        if topic is not None:
            query = query.where(Alert.topic == topic)
        groups: dict[tuple[str, str], list[Alert]] = defaultdict(list)
        for alert in session.scalars(query.order_by(Alert.id)):
            groups[(alert.topic, alert.channel)].append(alert)
        messages = {key: _digest(session, key[0], alerts, story_url)
                    for key, alerts in groups.items()}
        ids = {key: [a.id for a in alerts] for key, alerts in groups.items()}
    for (name, channel_name), message in messages.items():
        label = f"digest {name} → {channel_name}"
        with db() as session:
            hold = channel_hold(session, channel_name, utcnow())
        if hold is not None:
            report.held += 1
            report.lines.append(f"{label} waits: {hold[1]}")
            continue
        channel = channels.get(channel_name)
        result = channel.send(message) if channel else \
            DeliveryResult.refused(f"channel {channel_name!r} is no longer configured")
        _record(db, ids[(name, channel_name)], result, report, label, channel_name)
    return report


def _digest(session: Session, topic: str, alerts: list[Alert],
            story_url: StoryUrl | None) -> AlertMessage:
    items = []
    for alert in alerts:
        articles = [alert.article, *(entry.article for entry in alert.batch)]
        page = story_url(alert.story_id) if story_url and alert.story_id is not None else None
        items.append(replace(item_for(session, alert.article, topic), articles=len(articles),
                             outlets=story_outlets(session, alert.story_id, alert.article_id),
                             story_url=page))
    items.sort(key=lambda item: (-item.outlets, -item.articles))
    return AlertMessage(kind="digest", topic=topic, items=tuple(items),
                        message_id=f"<{topic}.digest.{alerts[0].id}@mediawatch>")


def _record(db: sessionmaker[Session], ids: list[int], result: DeliveryResult,
            report: DispatchReport, label: str, channel: str) -> None:
    now = utcnow()
    with db.begin() as session:
        for alert in session.scalars(select(Alert).where(Alert.id.in_(ids))):
            alert.attempts += 1
            alert.last_error = None if result.ok else result.reason
            if result.ok:
                alert.status, alert.sent_at = "sent", now
            elif result.permanent:
                alert.status = "failed"
        if result.retry_after is not None and not result.ok:
            hold_for(session, channel, now, Backoff().waited(result.retry_after), result.reason)
    counter = "sent" if result.ok else "failed" if result.permanent else "retried"
    setattr(report, counter, getattr(report, counter) + 1)
    report.lines.append(f"{label}: {len(ids)} stories, {result.reason}")
