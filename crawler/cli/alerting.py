"""`mediawatch alerts …` and `mediawatch digest …`: the outbox."""
from __future__ import annotations

from datetime import timedelta

import click

from alerts.channels import AlertItem, AlertMessage, build_channels
from alerts.digest import send_digests
from alerts.outbox import OPERATOR_TOPIC
from basis.clock import utcnow
from basis.errors import NotFound, Undelivered
from crawler.cli import views
from crawler.cli.context import (
    COUNT,
    ID,
    Context,
    deliver,
    duration_arg,
    emit_json,
    fail_on_undelivered,
    known_topic,
    pass_ctx,
)
from crawler.cli.views import Text
from storage import repository as repo
from storage.models import Alert


@click.group()
def alerts() -> None:
    """The outbox: what was, will be or could not be delivered."""


@alerts.command("list")
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed"]))
@click.option("--topic")
@click.option("--limit", type=COUNT, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def alerts_list(ctx: Context, status: str | None, topic: str | None, limit: int,
                as_json: bool) -> None:
    """Alerts, newest first."""
    with ctx.reader() as session:
        rows = list(repo.list_alerts(session, status=status, topic=topic, limit=limit))
        if topic and not rows and topic != OPERATOR_TOPIC:
            known_topic(ctx, topic)
        if as_json:
            emit_json([views.alert_json(a) for a in rows])
        else:
            ctx.console.print(views.alerts_table(rows))


@alerts.command("send")
@pass_ctx
def alerts_send(ctx: Context) -> None:
    """Deliver every pending alert that is due now."""
    report = deliver(ctx)
    ctx.console.print(f"sent {report.sent}, retrying {report.retried}, failed {report.failed}, "
                      f"waiting {report.held}")
    fail_on_undelivered(report)


@alerts.command("test")
@click.argument("channel")
@pass_ctx
def alerts_test(ctx: Context, channel: str) -> None:
    """Send a sample alert to CHANNEL and print the result."""
    channels = build_channels(ctx.config.channels)
    if channel not in channels:
        raise NotFound(f"no channel named {channel!r} (known: {', '.join(channels) or 'none'})")
    target = channels[channel]
    sample = AlertMessage(kind="test", topic="mediawatch-test", message_id="<test@mediawatch>",
                          items=(AlertItem(title="mediawatch test alert — 测试警报",
                                           url="https://example.org/mediawatch-test",
                                           source="mediawatch", published_at=utcnow(),
                                           snippet="If you read this, the channel works.",
                                           matched=("works",)),))
    result = target.send(sample)
    line = ctx.redactor(f"{channel} ({target.masked()}): {'ok' if result.ok else 'FAILED'} — "
                        f"{result.reason}")
    if not result.ok:
        raise Undelivered(line)
    ctx.console.print(line)


@alerts.command("retry")
@click.argument("alert_id", type=ID)
@pass_ctx
def alerts_retry(ctx: Context, alert_id: int) -> None:
    """Queue a failed (or waiting) alert again and try to deliver it now."""
    with ctx.db.begin() as session:
        if not repo.requeue_alert(session, alert_id, utcnow()):
            raise NotFound(f"no failed or pending alert with id {alert_id}")
    deliver(ctx)
    with ctx.db() as session:
        alert = session.get(Alert, alert_id)
        if alert is not None and alert.status != "sent":
            raise Undelivered(f"alert {alert_id} is {alert.status}: "
                              f"{alert.last_error or 'not due yet'}")


@alerts.command("snooze")
@click.argument("topic")
@click.option("--for", "duration", required=True, help="How long, e.g. 6h; 0s ends a snooze.")
@pass_ctx
def alerts_snooze(ctx: Context, topic: str, duration: str) -> None:
    """Hold a topic's alerts for a while; they are delivered afterwards."""
    known_topic(ctx, topic)
    now = utcnow()
    until = now + (timedelta(0) if duration.strip() in ("0", "0s") else
                   duration_arg(duration, "--for"))
    with ctx.db.begin() as session:
        repo.snooze(session, topic, until, now)
    ctx.console.print(f"{topic}: alerts held until {until:%Y-%m-%d %H:%M} UTC" if until > now
                      else f"{topic}: snooze ended; held alerts are due now")


@click.group()
def digest() -> None:
    """Digests of topics in digest mode."""


@digest.command("send")
@click.option("--topic", help="Only this topic.")
@pass_ctx
def digest_send(ctx: Context, topic: str | None) -> None:
    """Send the pending digests now."""

    if topic is not None:
        known_topic(ctx, topic)
    report = send_digests(ctx.db, build_channels(ctx.config.channels), topic,
                          story_url=ctx.config.web.story_url)
    for line in report.lines or ["no digest pending"]:
        ctx.console.print(Text(line))
    fail_on_undelivered(report)
