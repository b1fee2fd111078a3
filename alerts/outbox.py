"""The outbox: alert rows written in the same transaction as the article and its matches.

One row per (topic, story, channel) — its idempotency key — so a story alerts once per
channel; later articles of the story join that row while it waits, or one "update" row per
batch within the topic's update window; digest topics collect rows for the next digest.
A row reports `Alert.article` and the articles in its `batch`. Operator alerts (a source's
health changed) are rows too, one per (event, channel), their message kept in `details`;
so are statement alerts (an official article edited or removed), one per (version, channel).
`on_queued` tells a dispatcher as soon as a commit queued alerts.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels.base import AlertItem, AlertMessage
from storage.models import Alert, AlertArticle, Article, Sighting

UPDATE_WINDOW = timedelta(hours=24)  # later articles of an alerted story: one "update"
OPERATOR_TOPIC = "source-health"  # the topic of operator alerts (source failing, silent…)
QUEUED = "mediawatch.alerts_queued"  # Session.info flag: this transaction queued alerts


@dataclass(frozen=True)
class AlertPolicy:
    """How a topic alerts (from its config)."""

    channels: tuple[str, ...]
    mode: str = "instant"  # instant | digest
    update_window: timedelta = UPDATE_WINDOW


def alert_key(topic: str, story_id: int | None, channel: str, *suffix: object) -> str:
    return "|".join(map(str, (topic, story_id, channel, *suffix)))


def queue_alerts(session: Session, article: Article, topics: Iterable[str],
                 policies: Mapping[str, AlertPolicy], now: datetime,
                 backfill: timedelta) -> int:
    """Write the alerts an article's matches call for; → rows written or joined. An
    article older than the backfill window at first sight alerts nobody."""
    if article.published_at is not None and article.published_at < now - backfill:
        return 0
    count = 0
    for topic in topics:
        policy = policies.get(topic)
        for channel in policy.channels if policy else ():
            _queue(session, article, topic, channel, policy, now)
            count += 1
    if count:
        session.info[QUEUED] = True
    return count


def on_queued(db: sessionmaker[Session], callback: Callable[[], None]) -> None:
    """Call `callback` (in the committing thread) after each commit that queued alerts."""
    def committed(session: Session) -> None:
        if session.info.pop(QUEUED, False):
            callback()

    event.listen(db, "after_commit", committed)


def _queue(session: Session, article: Article, topic: str, channel: str,
           policy: AlertPolicy, now: datetime) -> None:
    base_key = alert_key(topic, article.story_id, channel)
    base = session.scalar(select(Alert).where(Alert.idempotency_key == base_key))
    kind = "digest" if policy.mode == "digest" else "new"
    if base is None:
        session.add(Alert(idempotency_key=base_key, kind=kind, topic=topic, channel=channel,
                          story_id=article.story_id, article_id=article.id, status="pending",
                          attempts=0, created_at=now, next_attempt_at=now))
        return
    if base.status == "pending":
        base.batch.append(AlertArticle(article_id=article.id))
        return
    followers = session.scalars(select(Alert).where(
        Alert.idempotency_key.startswith(base_key + "|")).order_by(Alert.id)).all()
    waiting = next((a for a in followers if a.status == "pending"), None)
    if waiting is not None:
        waiting.batch.append(AlertArticle(article_id=article.id))
        return
    if kind == "new" and now - base.created_at > policy.update_window:
        kind_here = "new"  # the story resurfaced after the window: a fresh alert
    else:
        kind_here = "update" if kind == "new" else "digest"
    follower = Alert(idempotency_key=alert_key(topic, article.story_id, channel, kind_here,
                                               len(followers) + 1),
                     kind=kind_here, topic=topic, channel=channel, story_id=article.story_id,
                     article_id=article.id, status="pending", attempts=0, created_at=now,
                     next_attempt_at=now)
    session.add(follower)


def queue_operator_alerts(session: Session, topic: str, change: str, item: AlertItem,
                          channels: Iterable[str], now: datetime) -> int:
    """Write one operator alert per channel for `change` (unique, e.g. source, state and
    time), once: a row already written for it is kept. → rows written"""
    details = {"title": item.title, "url": item.url, "source": item.source,
               "snippet": item.snippet, "published_at": now.isoformat(),
               "message_id": f"<{topic}.{change.replace('|', '.')}@mediawatch>"}
    count = 0
    for channel in channels:
        key = alert_key(topic, None, channel, change)
        if session.scalar(select(Alert.id).where(Alert.idempotency_key == key)) is None:
            session.add(Alert(idempotency_key=key, kind="operator", topic=topic, channel=channel,
                              status="pending", attempts=0, created_at=now, next_attempt_at=now,
                              details=details))
            count += 1
    if count:
        session.info[QUEUED] = True
    return count


STATEMENT_KINDS = ("edited", "removed")


def queue_statement_alerts(session: Session, article: Article, kind: str, version: int,
                           item: AlertItem, policies: Mapping[str, AlertPolicy],
                           now: datetime) -> int:
    """A statement `edited` (to `version`) or `removed`: one alert per channel of the topics
    it matched, once per version and channel (a row already written is kept). → rows written"""
    channels: dict[str, str] = {}  # channel → the first topic that sends to it
    for match in article.matches:
        policy = policies.get(match.topic)
        for channel in policy.channels if policy else ():
            channels.setdefault(channel, match.topic)
    details = {"title": item.title, "url": item.url, "source": item.source,
               "snippet": item.snippet, "diff": list(item.diff),
               "published_at": item.published_at.isoformat() if item.published_at else None,
               "message_id": f"<statement.article-{article.id}.{kind}-{version}@mediawatch>"}
    count = 0
    for channel, topic in channels.items():
        key = f"statement:{kind}|{article.id}|{version}|{channel}"  # (no topic has a ':')
        if session.scalar(select(Alert.id).where(Alert.idempotency_key == key)) is None:
            session.add(Alert(idempotency_key=key, kind=kind, topic=topic, channel=channel,
                              story_id=article.story_id, article_id=article.id,
                              status="pending", attempts=0, created_at=now,
                              next_attempt_at=now, details=details))
            count += 1
    if count:
        session.info[QUEUED] = True
    return count


def operator_message(alert: Alert) -> AlertMessage:
    """The message an operator or statement alert row holds."""
    details = alert.details or {}
    item = AlertItem(title=details.get("title", ""), url=details.get("url", ""),
                     source=details.get("source", ""),
                     published_at=datetime.fromisoformat(details["published_at"])
                     if details.get("published_at") else None,
                     snippet=details.get("snippet", ""), diff=tuple(details.get("diff", ())))
    kind = alert.kind if alert.kind in STATEMENT_KINDS else "operator"
    return AlertMessage(kind, alert.topic, (item,), story_id=alert.story_id,
                        message_id=details.get("message_id", ""))


def story_outlets(session: Session, story_id: int | None, article_id: int | None) -> int:
    """Distinct sources that covered the story (or the article, without a story)."""
    query = select(func.count(func.distinct(Sighting.source_id))).join(Article)
    query = query.where(Article.story_id == story_id) if story_id is not None \
        else query.where(Article.id == article_id)
    return session.scalar(query) or 0
