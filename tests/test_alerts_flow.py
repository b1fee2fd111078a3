"""Alerts end to end, with a real SMTP server and a Slack-like receiver: once per story and
channel, never twice, and nothing lost when a channel or the process fails."""
from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import select

from alerts.channels import open_channels
from alerts.channels.email import EmailChannel
from alerts.channels.settings import AppriseSettings
from alerts.channels.slack import SlackChannel
from alerts.digest import send_digests
from alerts.dispatcher import Backoff, Dispatcher
from alerts.outbox import AlertPolicy, on_queued, queue_alerts
from crawler.config import Config, parse_config
from crawler.daemon.watchdog import check_sources
from storage import repository as repo
from storage.db import open_database
from storage.models import Alert, Article, ChannelWait, Snooze
from tests import events
from tests.conftest import Cli, web_config
from tests.receivers import SlackReceiver, SmtpServer
from tests.webserver import FixtureWeb

ESPIONAGE = '("state security" OR 国家安全部 OR 国安部) AND (student* OR 留学生) ' \
            'AND (spy* OR espionage OR 间谍 OR 策反)'
ASYLUM = "(student* OR 留学生) AND (asylum OR 庇护)"
STATEMENT = "/statements/warning-students.html"
COVERAGE = "/coverage/2026/11/students-subverted.html"


def live_feed(web: FixtureWeb, *links: str) -> str:
    """A feed the test rewrites between crawls (served from the fixture web)."""
    items = "".join(f"<item><title>item {i}</title><link>{link}</link></item>"
                    for i, link in enumerate(links))
    (web.root / "feeds" / "_live.xml").write_text(
        f'<rss version="2.0"><channel><title>live</title>{items}</channel></rss>')
    return "/feeds/_live.xml"


@pytest.fixture
def live(web: FixtureWeb):
    yield web
    (web.root / "feeds" / "_live.xml").unlink(missing_ok=True)


def alerting_config(web: FixtureWeb, smtp: SmtpServer, slack: SlackReceiver,
                    **crawl: object) -> dict:
    config = web_config(web, {"name": "live", "kind": "feed", "url": "/feeds/_live.xml"},
                        backfill="36500d", **crawl)
    config["topics"] = [
        {"name": "espionage-warnings", "query": ESPIONAGE, "channels": ["desk", "team"]},
        {"name": "student-asylum", "query": ASYLUM, "channels": ["desk"]},
    ]
    config["channels"] = {
        "desk": {"type": "email", "url": smtp.url(), "from": "alerts@mediawatch.test",
                 "to": ["desk@mediawatch.test"]},
        "team": {"type": "slack", "webhook": slack.url},
    }
    return config


def subjects(smtp: SmtpServer) -> list[str]:
    return [str(m.message["Subject"]) for m in smtp.messages]


def test_one_alert_per_story_and_channel_then_nothing_then_one_more(
        cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
        slack_receiver: SlackReceiver) -> None:
    live_feed(live, STATEMENT)
    cli.write_config(alerting_config(live, smtp_server, slack_receiver))
    first = cli("crawl", "--json")
    assert first.code == 0, first.err
    assert first.json()["alerts"]["sent"] == 2
    assert len(smtp_server.messages) == 1 and len(slack_receiver.requests) == 1
    assert "国家安全部" in subjects(smtp_server)[0]

    again = cli("crawl", "--json")
    assert again.code == 0 and again.json()["alerts"]["sent"] == 0
    assert len(smtp_server.messages) == 1 and len(slack_receiver.requests) == 1

    live_feed(live, STATEMENT, COVERAGE)  # the coverage matches both topics
    third = cli("crawl", "--json")
    assert third.code == 0, third.err
    assert third.json()["alerts"]["sent"] == 3
    assert len(smtp_server.messages) == 3 and len(slack_receiver.requests) == 2

    listed = cli("alerts", "list", "--json").json()
    assert len(listed) == 5 and {a["status"] for a in listed} == {"sent"}
    assert {"id", "topic", "channel", "story_id", "article_id", "status", "attempts",
            "created_at", "sent_at", "last_error"} <= set(listed[0])
    assert len({(a["topic"], a["story_id"], a["channel"]) for a in listed}) == 5


def test_old_articles_are_stored_and_matched_but_not_alerted(
        cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
        slack_receiver: SlackReceiver) -> None:
    live_feed(live, STATEMENT)
    config = alerting_config(live, smtp_server, slack_receiver)
    config["crawl"]["backfill"] = "1s"  # the fixture statement is dated 2026-11-27
    cli.write_config(config)
    assert cli("crawl").code == 0
    assert cli("articles", "list", "--topic", "espionage-warnings", "--json").json()
    assert cli("alerts", "list", "--json").json() == []
    assert smtp_server.messages == []


def test_crawl_without_alerts_leaves_them_pending_for_alerts_send(
        cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
        slack_receiver: SlackReceiver) -> None:
    live_feed(live, STATEMENT)
    cli.write_config(alerting_config(live, smtp_server, slack_receiver))
    assert cli("crawl", "--no-alerts").code == 0
    assert {a["status"] for a in cli("alerts", "list", "--json").json()} == {"pending"}
    assert smtp_server.messages == []
    sent = cli("alerts", "send")
    assert sent.code == 0 and "sent 2" in sent.out
    assert len(smtp_server.messages) == 1 and len(slack_receiver.requests) == 1


def alerts_send(cli: Cli) -> subprocess.Popen[str]:
    """`mediawatch alerts send` as a process of its own."""
    return subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(cli.config),
                             "--db", cli.db, "alerts", "send"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli.env,
                            cwd=cli.config.parent)


def running(*processes: subprocess.Popen[str]) -> Callable[[], None]:
    def check() -> None:
        for process in processes:
            assert process.poll() is None, f"alerts send exited early: {process.communicate()}"
    return check


def test_two_dispatchers_never_send_the_same_alert(
        cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
        slack_receiver: SlackReceiver) -> None:
    """Two `alerts send` processes at once. Each Slack send is held until both processes are
    sending one, so each goes on through a list of due alerts that the other one claims."""
    live_feed(live, STATEMENT, COVERAGE)
    cli.write_config(alerting_config(live, smtp_server, slack_receiver))
    assert cli("crawl", "--no-alerts").code == 0
    assert len(cli("alerts", "list", "--status", "pending", "--json").json()) == 5
    slack_receiver.hang(30)  # until released; a dispatcher waits for its send to end
    processes = [alerts_send(cli) for _ in range(2)]
    try:
        events.wait_for(lambda: len(slack_receiver.requests) == 2,
                        "a Slack send from each dispatcher", alive=running(*processes))
    finally:
        slack_receiver.released.set()
        outputs = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], outputs
    sent = [int(re.search(r"sent (\d+), retrying 0, failed 0", out)[1]) for out, _ in outputs]
    assert sum(sent) == 5 and min(sent) >= 1, outputs  # both delivered: they overlapped
    message_ids = [str(m.message["Message-ID"]) for m in smtp_server.messages]
    assert len(message_ids) == len(set(message_ids)) == 3
    posted = [r.body for r in slack_receiver.requests]
    assert len(posted) == len(set(posted)) == 2
    listed = cli("alerts", "list", "--json").json()
    assert [(a["status"], a["attempts"]) for a in listed] == [("sent", 1)] * 5


def test_alerts_test_sends_a_sample_and_reports_failure(
        cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
        slack_receiver: SlackReceiver) -> None:
    live_feed(live)
    cli.write_config(alerting_config(live, smtp_server, slack_receiver))
    ok = cli("alerts", "test", "team")
    assert ok.code == 0 and "ok" in ok.out
    assert slack_receiver.url.split("/services/")[1] not in ok.out  # the secret path is masked
    slack_receiver.respond(403, "invalid_token")
    refused = cli("alerts", "test", "team")
    assert refused.code == 1 and "FAILED" in refused.err and "403" in refused.err


# ---------------------------------------------------------------- the dispatcher, in process

class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def outbox(db_url: str):
    """A database with one stored, matched article (a statement) and its story."""
    db = open_database(db_url)
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("mss", "feed", "https://mss.example/f"),
                                    repo.SourceDef("hk", "feed", "https://hk.example/f")])
    return db


def store(db, url: str, title: str, source: str = "mss", story_of: int | None = None,
          topics: tuple[str, ...] = ("espionage-warnings",),
          policy: AlertPolicy | None = None, now: datetime | None = None) -> int:
    policy = policy or AlertPolicy(("team",))
    now = now or datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    with db.begin() as session:
        article, _ = repo.add_article(session, repo.NewArticle(
            url=url, canonical_url=url, seen_url=url, title=title, text=title + " 留学生 间谍",
            summary="", language="zh", published_at=now, date_is_estimated=False,
            text_hash=url), source)
        if story_of is not None:
            article.story_id = session.get(Article, story_of).story_id
            session.flush()
        repo.add_matches(session, article, {t: {"snippet": title, "spans": []} for t in topics})
        queue_alerts(session, article, topics, {t: policy for t in topics}, now,
                     timedelta(days=2))
        return article.id


def statuses(db) -> list[tuple[str, str, int]]:
    with db() as session:
        return [(a.kind, a.status, a.attempts)
                for a in session.scalars(select(Alert).order_by(Alert.id))]


def slack(receiver: SlackReceiver) -> dict:
    return {"team": SlackChannel(receiver.url, name="team", timeout=2)}


def test_smtp_down_for_several_attempts_then_up_is_delivered_once(
        outbox, smtp_server: SmtpServer) -> None:
    clock = Clock()
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生",
          policy=AlertPolicy(("desk",)))
    channels = {"desk": EmailChannel(smtp_server.url(), "a@mediawatch.test",
                                     ["desk@mediawatch.test"], name="desk")}
    dispatcher = Dispatcher(outbox, channels, clock=clock, rng=lambda: 0.5,
                            backoff=Backoff(base=10))
    smtp_server.stop()
    for attempt in range(3):
        report = dispatcher.deliver_due()
        assert report.retried == 1 and report.sent == 0
        assert dispatcher.deliver_due().retried == 0  # not due again before the backoff
        clock.advance(seconds=10 * 2 ** attempt)
    smtp_server.start()
    assert dispatcher.deliver_due().sent == 1
    clock.advance(hours=1)
    assert dispatcher.deliver_due().sent == 0
    assert len(smtp_server.messages) == 1
    assert statuses(outbox) == [("new", "sent", 4)]


def test_slack_429_waits_for_retry_after_then_delivers_once(
        outbox, slack_receiver: SlackReceiver) -> None:
    clock = Clock()
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生")
    dispatcher = Dispatcher(outbox, slack(slack_receiver), clock=clock, rng=lambda: 0.5,
                            backoff=Backoff(base=1))
    slack_receiver.rate_limit("120")
    assert dispatcher.deliver_due().retried == 1
    with outbox() as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.next_attempt_at >= clock.now + timedelta(seconds=120)
        assert "429" in alert.last_error
    slack_receiver.respond(200)
    clock.advance(seconds=60)
    assert dispatcher.deliver_due().sent == 0  # Retry-After is honoured
    clock.advance(seconds=61)
    assert dispatcher.deliver_due().sent == 1
    assert len(slack_receiver.requests) == 2  # the refused one and the delivered one
    assert statuses(outbox) == [("new", "sent", 2)]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_holds_the_channel_for_every_alert_without_spending_attempts(
        outbox, slack_receiver: SlackReceiver, status: int) -> None:
    clock = Clock()
    for n in (1, 2, 3):
        store(outbox, f"https://mss.example/{n}", f"声明 {n} 留学生")
    dispatcher = Dispatcher(outbox, slack(slack_receiver), clock=clock, rng=lambda: 0.5,
                            backoff=Backoff(base=1))
    slack_receiver.respond(status, "slow down", {"Retry-After": "120"})
    report = dispatcher.deliver_due()
    assert (report.retried, report.held) == (1, 2)
    assert len(slack_receiver.requests) == 1  # the other two never hit the rate limit
    assert statuses(outbox) == [("new", "pending", 1), ("new", "pending", 0),
                                ("new", "pending", 0)]
    slack_receiver.respond(200)
    clock.advance(seconds=119)
    another = Dispatcher(outbox, slack(slack_receiver), clock=clock)  # e.g. another process
    assert another.deliver_due().sent == 0 and len(slack_receiver.requests) == 1
    clock.advance(seconds=2)
    assert dispatcher.deliver_due().sent == 3
    assert statuses(outbox) == [("new", "sent", 2), ("new", "sent", 1), ("new", "sent", 1)]


def test_a_retry_after_on_the_last_attempt_holds_the_channel_too_and_is_capped(
        outbox, slack_receiver: SlackReceiver) -> None:
    clock = Clock()
    for n in (1, 2):
        store(outbox, f"https://mss.example/{n}", f"声明 {n} 留学生")
    dispatcher = Dispatcher(outbox, slack(slack_receiver), clock=clock, rng=lambda: 0.5,
                            backoff=Backoff(base=1, max_attempts=1))
    slack_receiver.respond(429, "slow down", {"Retry-After": "99999999999999"})
    report = dispatcher.deliver_due()
    assert (report.failed, report.held) == (1, 1)  # the second never hit the rate limit
    with outbox() as session:
        wait = session.scalars(select(ChannelWait)).one()
        assert wait.until == clock.now + timedelta(hours=1)  # Backoff.cap, not 3 million years
    slack_receiver.respond(200)
    clock.advance(hours=1, seconds=1)
    assert dispatcher.deliver_due().sent == 1 and len(slack_receiver.requests) == 2


def test_retry_after_holds_digests_of_every_topic_on_the_channel(
        outbox, slack_receiver: SlackReceiver) -> None:
    digest = AlertPolicy(("team",), mode="digest")
    store(outbox, "https://mss.example/1", "声明 1 留学生", policy=digest)
    store(outbox, "https://mss.example/2", "声明 2 留学生", topics=("student-asylum",),
          policy=digest)
    slack_receiver.rate_limit("120")
    report = send_digests(outbox, slack(slack_receiver))
    assert (report.retried, report.held) == (1, 1)
    assert send_digests(outbox, slack(slack_receiver)).held == 2
    assert len(slack_receiver.requests) == 1
    assert sorted(attempts for _, _, attempts in statuses(outbox)) == [0, 1]


def test_operator_alerts_go_through_the_outbox_once_with_retries_and_retry_after(
        outbox, cli: Cli, slack_receiver: SlackReceiver) -> None:
    document = {"sources": [{"name": "mss", "kind": "feed", "url": "https://mss.example/f"}],
                "channels": {"team": {"type": "slack", "webhook": slack_receiver.url}},
                "operator_channels": ["team"]}
    cli.write_config(document)
    config = parse_config(yaml.safe_dump(document), env={})
    clock = Clock()

    def polled(failures: int) -> None:
        with outbox.begin() as session:
            source = repo.source_by_name(session, "mss")
            source.last_polled_at, source.consecutive_failures = clock.now, failures
            source.last_error = "HTTP 500" if failures else None

    none_yet = cli("alerts", "list", "--topic", "source-health", "--json")
    assert none_yet.code == 0 and none_yet.json() == []  # a topic that is always known
    polled(3)
    assert check_sources(config, outbox, clock.now) == [("mss", "ok", "failing")]
    assert check_sources(config, outbox, clock.now) == []  # queued once, never repeated
    listed = cli("alerts", "list", "--json").json()
    assert [(a["kind"], a["topic"], a["channel"], a["status"], a["article_id"])
            for a in listed] == [("operator", "source-health", "team", "pending", None)]
    assert "source-health" in cli("alerts", "list").out

    dispatcher = Dispatcher(outbox, open_channels(config.channels), clock=clock,
                            rng=lambda: 0.5, backoff=Backoff(base=1))
    slack_receiver.rate_limit("60")
    assert dispatcher.deliver_due().retried == 1
    polled(0)  # it heals while the channel is held: the recovery waits too
    assert check_sources(config, outbox, clock.now) == [("mss", "failing", "ok")]
    assert dispatcher.deliver_due().held == 1 and len(slack_receiver.requests) == 1
    slack_receiver.respond(200)
    clock.advance(seconds=61)
    restarted = Dispatcher(outbox, open_channels(config.channels), clock=clock)
    assert restarted.deliver_due().sent == 2
    assert restarted.deliver_due().sent == 0
    bodies = [str(r.json) for r in slack_receiver.requests]
    assert "source mss is failing" in bodies[1] and "HTTP 500" in bodies[1]
    assert "source mss recovered (was failing)" in bodies[2]
    assert statuses(outbox) == [("operator", "sent", 2), ("operator", "sent", 1)]


def test_a_commit_that_queued_alerts_wakes_the_dispatcher(outbox) -> None:
    woken: list[int] = []
    on_queued(outbox, lambda: woken.append(1))
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生")
    assert woken == [1]
    store(outbox, "https://mss.example/2", "无关", topics=())  # matched nothing: no alert
    with outbox.begin() as session:
        repo.snooze(session, "espionage-warnings", datetime.now(timezone.utc),
                    datetime.now(timezone.utc))
    assert woken == [1]


def test_permanent_refusal_fails_with_the_reason_and_does_not_loop(
        outbox, slack_receiver: SlackReceiver) -> None:
    clock = Clock()
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生")
    dispatcher = Dispatcher(outbox, slack(slack_receiver), clock=clock)
    slack_receiver.respond(403, "invalid_token")
    assert dispatcher.deliver_due().failed == 1
    clock.advance(days=2)
    assert dispatcher.deliver_due().failed == 0
    assert len(slack_receiver.requests) == 1
    with outbox() as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.status == "failed" and "403" in alert.last_error


def test_a_claim_left_by_a_crash_is_delivered_after_restart_once(
        outbox, slack_receiver: SlackReceiver) -> None:
    clock = Clock()
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生")
    crashed = Dispatcher(outbox, slack(slack_receiver), clock=clock)
    alert_id = crashed.due(10)[0]
    assert crashed.claim(alert_id)  # … and the process dies before sending
    assert statuses(outbox) == [("new", "sending", 0)]

    restarted = Dispatcher(outbox, slack(slack_receiver), clock=clock,
                           sending_timeout=timedelta(minutes=5))
    assert restarted.deliver_due().sent == 0  # a fresh claim may still be in flight
    clock.advance(minutes=6)
    assert restarted.deliver_due().sent == 1
    assert restarted.deliver_due().sent == 0
    assert len(slack_receiver.requests) == 1


def test_later_articles_of_a_story_become_one_update(outbox, slack_receiver: SlackReceiver) -> None:
    clock = Clock()
    dispatcher = Dispatcher(outbox, slack(slack_receiver), clock=clock)
    first = store(outbox, "https://mss.example/1", "国家安全部提醒留学生")
    assert dispatcher.deliver_due().sent == 1
    for n in (2, 3, 4):  # three more outlets cover the same story within the window
        store(outbox, f"https://hk.example/{n}", f"港媒转载 {n}", source="hk", story_of=first)
    assert dispatcher.deliver_due().sent == 1
    assert statuses(outbox) == [("new", "sent", 1), ("update", "sent", 1)]
    update = slack_receiver.requests[-1].json
    assert "港媒转载 2" in str(update) and "港媒转载 4" in str(update)


def parsed_config(receiver: SlackReceiver, **topic: object) -> Config:
    """A config whose espionage topic alerts the Slack channel `team`, with `topic`'s settings."""
    document = {"topics": [{"name": "espionage-warnings", "query": "留学生", "channels": ["team"],
                            **topic}],
                "channels": {"team": {"type": "slack", "webhook": receiver.url}}}
    return parse_config(yaml.safe_dump(document, allow_unicode=True), env={})


def alert_state(db, article_id: int) -> tuple[str, datetime, str]:
    with db() as session:
        alert = session.scalars(select(Alert).where(Alert.article_id == article_id)).one()
        return alert.status, alert.next_attempt_at, alert.last_error


def test_quiet_hours_of_the_config_hold_alerts_until_their_end_across_midnight(
        outbox, slack_receiver: SlackReceiver) -> None:
    """22:00–07:00 in Shanghai (UTC+8) is 14:00–23:00 UTC: what falls in it, before or after
    local midnight, waits until 07:00 the next local morning."""
    config = parsed_config(slack_receiver, quiet_hours={"start": "22:00", "end": "07:00",
                                                        "timezone": "Asia/Shanghai"})
    clock = Clock()
    dispatcher = Dispatcher(outbox, open_channels(config.channels), config.alert_controls(),
                            clock=clock)
    clock.now = datetime(2026, 11, 28, 13, 59, tzinfo=timezone.utc)  # 21:59 local
    store(outbox, "https://mss.example/1", "声明 1", now=clock.now)
    assert dispatcher.deliver_due().sent == 1

    morning = datetime(2026, 11, 28, 23, 0, tzinfo=timezone.utc)  # 07:00 local, Nov 29
    held: list[int] = []
    for hour, local in ((15, "23:30"), (16, "00:30")):  # before and after local midnight
        clock.now = datetime(2026, 11, 28, hour, 30, tzinfo=timezone.utc)
        held.append(store(outbox, f"https://mss.example/{local}", f"声明 {local}", now=clock.now))
        report = dispatcher.deliver_due()
        assert (report.sent, report.held) == (0, 1), local
        assert alert_state(outbox, held[-1]) == (
            "pending", morning, "quiet hours until 2026-11-28 23:00 UTC"), local

    clock.now = morning - timedelta(minutes=1)
    assert dispatcher.deliver_due().sent == 0
    clock.now = morning
    assert dispatcher.deliver_due().sent == 2
    assert [alert_state(outbox, article)[0] for article in held] == ["sent", "sent"]
    assert len(slack_receiver.requests) == 3


def test_snooze_and_min_sources_hold_alerts_without_losing_them(
        outbox, slack_receiver: SlackReceiver) -> None:
    clock = Clock()
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生")
    with outbox.begin() as session:
        session.add(Snooze(topic="espionage-warnings", until=clock.now + timedelta(hours=6)))
    plain = Dispatcher(outbox, slack(slack_receiver), clock=clock)
    assert plain.deliver_due().held == 1
    clock.advance(hours=6, seconds=1)
    config = parsed_config(slack_receiver, min_sources=2)
    needs_two = Dispatcher(outbox, open_channels(config.channels), config.alert_controls(),
                           clock=clock)
    assert needs_two.deliver_due().held == 1
    assert slack_receiver.requests == []
    clock.advance(minutes=11)
    assert plain.deliver_due().sent == 1
    assert statuses(outbox) == [("new", "sent", 1)]


def test_digest_collects_stories_into_one_message_per_channel(
        outbox, slack_receiver: SlackReceiver) -> None:
    digest = AlertPolicy(("team",), mode="digest")
    for n in (1, 2, 3):
        store(outbox, f"https://mss.example/{n}", f"声明 {n} 留学生", policy=digest)
    assert Dispatcher(outbox, slack(slack_receiver)).deliver_due().sent == 0
    report = send_digests(outbox, slack(slack_receiver))
    assert report.sent == 1 and len(slack_receiver.requests) == 1
    body = str(slack_receiver.requests[0].json)
    assert all(f"声明 {n}" in body for n in (1, 2, 3))
    assert send_digests(outbox, slack(slack_receiver)).sent == 0
    assert {s for _, s, _ in statuses(outbox)} == {"sent"}


def test_snooze_and_retry_commands(cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
                                   slack_receiver: SlackReceiver) -> None:
    live_feed(live, STATEMENT)
    cli.write_config(alerting_config(live, smtp_server, slack_receiver))
    assert cli("alerts", "snooze", "espionage-warnings", "--for", "6h").code == 0
    assert cli("crawl").code == 0
    pending = cli("alerts", "list", "--status", "pending", "--json").json()
    assert len(pending) == 2 and all("snoozed" in a["last_error"] for a in pending)
    assert smtp_server.messages == [] and slack_receiver.requests == []

    slack_receiver.respond(404, "no_service")
    assert cli("alerts", "snooze", "espionage-warnings", "--for", "0s").code == 0  # releases
    sent = cli("alerts", "send")
    assert "sent 1" in sent.out and "failed 1" in sent.out
    assert sent.code == 1 and "1 failed" in sent.err  # scripts and cron notice
    failed = cli("alerts", "list", "--status", "failed", "--json").json()
    assert len(failed) == 1 and "404" in failed[0]["last_error"]
    failed_id = failed[0]["id"]
    still = cli("alerts", "retry", str(failed_id))
    assert still.code == 1 and f"alert {failed_id} is failed: HTTP 404" in still.err
    slack_receiver.respond(200)
    assert cli("alerts", "retry", str(failed_id)).code == 0
    assert {a["status"] for a in cli("alerts", "list", "--json").json()} == {"sent"}
    assert len(smtp_server.messages) == 1


def test_topic_typos_are_errors_not_empty_results(cli: Cli, live: FixtureWeb,
                                                  smtp_server: SmtpServer,
                                                  slack_receiver: SlackReceiver) -> None:
    live_feed(live, STATEMENT)
    cli.write_config(alerting_config(live, smtp_server, slack_receiver))
    assert cli("crawl", "--no-alerts").code == 0
    for args in (("articles", "list", "--topic", "espionage-warning"),
                 ("alerts", "list", "--topic", "espionage-warning"),
                 ("digest", "send", "--topic", "espionage-warning"),
                 ("alerts", "snooze", "espionage-warning", "--for", "1h")):
        result = cli(*args)
        assert result.code == 2, args  # a name that names nothing is a usage error
        assert result.err.startswith("error: no topic named 'espionage-warning' (known: "
                                     "espionage-warnings, student-asylum)"), args
    assert cli("articles", "list", "--topic", "espionage-warnings", "--json").json()


def test_crawl_json_is_one_document_when_a_console_channel_prints(
        cli: Cli, live: FixtureWeb) -> None:
    live_feed(live, STATEMENT)
    config = web_config(live, {"name": "live", "kind": "feed", "url": "/feeds/_live.xml"},
                        backfill="36500d")
    config["topics"] = [{"name": "espionage-warnings", "query": ESPIONAGE,
                         "channels": ["console"]}]
    config["channels"] = {"console": {"type": "console"}}
    cli.write_config(config)
    result = cli("crawl", "--json")
    assert result.code == 0, result.err
    assert result.json()["alerts"]["sent"] == 1  # stdout is the JSON document alone
    assert "espionage-warnings" in result.err  # what the console channel printed


def test_a_channel_that_cannot_be_built_holds_its_alerts_and_the_others_deliver(
        outbox, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Defence in depth behind config validation: a channel config that reaches the
    dispatcher but cannot be built (here one made without validation) stops only itself."""
    caplog.set_level(logging.DEBUG)
    local = tmp_path / "local.jsonl"
    config = parse_config(f"channels:\n  local: {{type: jsonl, path: '{local}'}}\n", env={})
    broken = AppriseSettings.model_construct(type="apprise", url=SecretStr("tgram://hunter2-x"))
    config = config.model_copy(update={"channels": {**config.channels, "other": broken}})
    store(outbox, "https://mss.example/1", "国家安全部提醒留学生",
          policy=AlertPolicy(("local", "other")))

    report = Dispatcher(outbox, open_channels(config.channels), config.alert_controls()).deliver_due()
    assert (report.sent, report.held, report.retried, report.failed) == (1, 1, 0, 0)
    assert len(local.read_text(encoding="utf-8").splitlines()) == 1
    with outbox() as session:
        waiting = session.scalars(select(Alert).where(Alert.channel == "other")).one()
        assert (waiting.status, waiting.attempts) == ("pending", 0)
        assert waiting.last_error.startswith("channel 'other' cannot be built: apprise channel")
    assert "channel other cannot be built" in caplog.text
    assert "hunter2" not in caplog.text + waiting.last_error

    clock = Clock()  # a fixed config builds the channel: the alert waited, it is delivered
    clock.now = waiting.next_attempt_at + timedelta(seconds=1)
    fixed = parse_config(f"channels:\n  local: {{type: jsonl, path: '{local}'}}\n"
                         f"  other: {{type: jsonl, path: '{tmp_path / 'other.jsonl'}'}}\n", env={})
    assert Dispatcher(outbox, open_channels(fixed.channels), clock=clock).deliver_due().sent == 1
    assert statuses(outbox) == [("new", "sent", 1), ("new", "sent", 1)]


def test_a_digest_for_a_channel_that_cannot_be_built_stays_pending(outbox, tmp_path: Path) -> None:
    config = parse_config(f"channels:\n  local: {{type: jsonl, path: '{tmp_path / 'l.jsonl'}'}}\n",
                          env={})
    broken = AppriseSettings.model_construct(type="apprise", url=SecretStr("tgram://x"))
    config = config.model_copy(update={"channels": {**config.channels, "other": broken}})
    store(outbox, "https://mss.example/1", "声明 留学生",
          policy=AlertPolicy(("local", "other"), mode="digest"))
    report = send_digests(outbox, open_channels(config.channels))
    assert (report.sent, report.retried, report.failed) == (1, 1, 0)
    assert sorted(s for _, s, _ in statuses(outbox)) == ["pending", "sent"]
