"""The daemon. Scheduling with a controllable clock (pure), then a real `mediawatch run`
process against the fixture web, a real SMTP server and its own HTTP endpoints."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import feedparser
import pytest
import requests

from basis.secrets import Redactor
from crawler.config import Config, load_config
from crawler.daemon.schedule import (
    BACKOFF_CAP,
    STARTUP_SPREAD,
    backoff,
    first_run,
    may_poll,
    trigger_for,
)
from crawler.daemon.service import Daemon, restart_needed
from crawler.daemon.watchdog import health_of, learned_cadence
from crawler.engine.reactor import run_on_reactor
from storage.db import engine_of, open_database
from storage.models import Source
from tests import events
from tests.conftest import Cli, web_config
from tests.receivers import WEBHOOK_PATH, SlackReceiver, SmtpServer, free_port
from tests.webserver import FixtureWeb

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
STATEMENTS = {"name": "statements", "kind": "feed", "url": "/feeds/statements.xml",
              "every": "2s"}
COVERAGE = {"name": "coverage", "kind": "feed", "url": "/feeds/coverage.atom", "every": "2s"}


# ---------------------------------------------------------------- the schedule, pure

def fire_times(schedule: str, start: datetime, until: datetime) -> list[datetime]:
    """When APScheduler would run a source's job from `start`, with a clock we control."""
    trigger, times = trigger_for(schedule), [start]
    while (following := trigger.get_next_fire_time(times[-1], times[-1])) <= until:
        times.append(following)
    return times


@pytest.mark.parametrize("every", ["1m", "10m", "1h", "*/15 * * * *", "0 8 * * *"])
def test_a_source_overdue_after_six_hours_of_downtime_runs_once_soon(every: str) -> None:
    start = first_run(every, NOW - timedelta(hours=6), NOW)
    assert NOW <= start <= NOW + STARTUP_SPREAD
    runs = fire_times(every, start, NOW + timedelta(minutes=1))
    assert runs == [start] or every == "1m"  # no burst of the missed runs
    assert len(runs) <= 2


def test_polls_follow_the_schedule_with_bounded_jitter() -> None:
    runs = fire_times("10m", NOW, NOW + timedelta(hours=2))
    gaps = [(b - a).total_seconds() for a, b in zip(runs, runs[1:], strict=False)]
    assert 11 <= len(runs) <= 13
    assert all(540 <= gap <= 660 for gap in gaps), gaps  # 10 minutes ± 1 minute of jitter
    many = fire_times("10m", NOW, NOW + timedelta(hours=40))
    mean_gap = (many[-1] - many[0]).total_seconds() / (len(many) - 1)
    assert 588 <= mean_gap <= 612, mean_gap  # jitter spreads polls, it does not slow them
    quarter = fire_times("*/15 * * * *", NOW, NOW + timedelta(hours=1))
    assert len(quarter) >= 4


def test_a_source_not_yet_due_waits_for_its_turn() -> None:
    assert first_run("10m", NOW - timedelta(minutes=3), NOW) == NOW + timedelta(minutes=7)
    assert first_run("0 8 * * *", NOW - timedelta(hours=1), NOW) == \
        datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)
    assert NOW <= first_run("10m", None, NOW) <= NOW + STARTUP_SPREAD  # never polled


def test_first_polls_spread_over_the_interval_up_to_a_cap() -> None:
    """Sources started together keep apart: each first poll (and so each one's phase) is
    spread over its interval, at most STARTUP_SPREAD."""
    latest = {every: first_run(every, None, NOW, rng=lambda: 1.0) - NOW
              for every in ("10s", "1m", "0 8 * * *")}
    assert latest == {"10s": timedelta(seconds=10), "1m": STARTUP_SPREAD,
                      "0 8 * * *": STARTUP_SPREAD}
    assert first_run("10s", None, NOW, rng=lambda: 0.5) == NOW + timedelta(seconds=5)


@pytest.mark.parametrize("start", [NOW, NOW + timedelta(minutes=59, seconds=50),
                                   NOW.astimezone(timezone(timedelta(hours=8)))])
def test_a_never_polled_hourly_source_starts_within_the_spread(start: datetime) -> None:
    """At any start time and draw, in any zone the database hands back."""
    spread = timedelta(seconds=5)
    for draw in (0.0, 0.3, 0.999, 1.0):
        assert start <= first_run("1h", None, start, spread, lambda d=draw: d) <= start + spread


def test_a_failing_source_backs_off_but_is_never_abandoned() -> None:
    every = timedelta(minutes=10)
    waits = [backoff(failures, every) for failures in range(1, 30)]
    assert waits == sorted(waits) and waits[0] == every and waits[-1] == BACKOFF_CAP
    failed_at = NOW - timedelta(minutes=30)
    assert not may_poll(NOW, failed_at, 4, every, None)  # 80 minutes after 4 failures
    assert may_poll(NOW + timedelta(minutes=60), failed_at, 4, every, None)
    assert may_poll(NOW + BACKOFF_CAP, NOW, 1000, every, None)  # still polled
    assert not may_poll(NOW, None, 0, every, NOW + timedelta(hours=1))  # Retry-After


@pytest.mark.parametrize("status", [200, 304])
def test_a_hosts_delay_adapts_to_fast_answers_and_304s_count(status: int) -> None:
    """Many feeds on one host, all unchanged: their 304s must bring its delay down as
    200s do (Scrapy's AutoThrottle only lets 200s lower it)."""
    from scrapy.core.downloader import Slot
    from scrapy.http import Response
    from scrapy.utils.test import get_crawler

    from crawler.engine.extensions import ConditionalAutoThrottle

    throttle = ConditionalAutoThrottle(get_crawler(settings_dict={
        "AUTOTHROTTLE_ENABLED": True, "AUTOTHROTTLE_TARGET_CONCURRENCY": 2.0}))
    throttle.mindelay, throttle.maxdelay = 0.0, 30.0
    slot = Slot(concurrency=2, delay=4.0)
    for _ in range(20):
        throttle._adjust_delay(slot, 0.02, Response("http://feeds.test/a.xml", status=status))
    assert slot.delay == pytest.approx(0.01, abs=0.001)  # latency / target concurrency
    throttle._adjust_delay(slot, 3.0, Response("http://feeds.test/a.xml", status=status))
    assert slot.delay == pytest.approx(1.5)  # a slow answer slows it down at once


# ---------------------------------------------------------------- a real daemon

# the daemon's own behaviour (scheduling, logging, the fetch guard), the same on both
# databases: one backend saves a daemon's run (the suite's budget)
ONE_BACKEND = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@dataclass
class Running:
    """A `mediawatch run` process and its log, read line by line as it writes them (each
    line is an event: tests.events)."""

    process: subprocess.Popen[str]
    json_lines: bool  # started with --log-json
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))
            events.happened()

    def text(self) -> str:
        return "\n".join(self.lines)

    def records(self) -> list[dict[str, str]]:
        """The log as records: JSON lines (--log-json) or `TIME LEVEL logger: message`."""
        found = []
        for line in list(self.lines):
            if self.json_lines:
                found.append(json.loads(line))
            elif text := TEXT_LINE.match(line):
                found.append({"level": text["level"].lower(), "logger": text["logger"],
                              "message": text["message"]})
        return found

    def logged(self, level: str, start: str) -> bool:
        return any(r["level"] == level and r["message"].startswith(start) for r in self.records())

    def alive(self) -> None:
        assert self.process.poll() is None, f"the daemon exited:\n{self.text()}"

    def wait_for(self, ready: Callable[[], object], what: str, timeout: float = 60) -> None:
        events.wait_for(ready, what, timeout, alive=self.alive)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


TEXT_LINE = re.compile(r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00) "
                       r"(?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<message>.*)")  # UTC


@contextmanager
def daemon(cli: Cli, *args: str, verbose: bool = False, prefix: Sequence[str] = ()
           ) -> Iterator[Running]:
    """`mediawatch run ARGS` (after `prefix`: `ip netns exec NAME`, say)."""
    process = subprocess.Popen([*prefix, sys.executable, "-m", "crawler", "--config", str(cli.config),
                                "--db", cli.db, *(["-v"] if verbose else []), "run", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=cli.env, cwd=cli.config.parent)
    running = Running(process, "--log-json" in args)
    reader = threading.Thread(target=running.read, daemon=True)
    reader.start()
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)


@contextmanager
def in_process(cli: Cli, listen: str | None = None) -> Iterator[Daemon]:
    """The daemon of `mediawatch run`, started on this process's reactor; `reload` and
    `stop` are called on the reactor as the signals would."""
    config = load_config(cli.config).model_copy(update={"database": cli.db})
    db = open_database(cli.db)
    service = Daemon(cli.config, cli.db, config, db, listen, Redactor())
    run_on_reactor(service.start)
    try:
        yield service
    finally:
        run_on_reactor(lambda: (service.stop(grace=0), service.ended)[1])
        engine_of(db).dispose()


def listening_ports(pid: int) -> set[int]:
    """The TCP ports a process listens on (its sockets in /proc/net/tcp{,6} in LISTEN)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def source_state(cli: Cli, name: str) -> dict:
    """A source's row in `sources list`: {} until the daemon has created its database (or
    while it migrates it: a reader racing the migration may fail)."""
    listed = cli("sources", "list", "--json")
    if listed.code != 0:
        return {}
    return next(s for s in listed.json() if s["name"] == name)


def mission(web: FixtureWeb, smtp: SmtpServer, *sources: dict) -> dict:
    config = web_config(web, *(sources or (STATEMENTS, COVERAGE)), backfill="36500d")
    config["daemon"] = {"dispatch_every": "1s"}
    config["topics"] = [{"name": "students", "query": "留学生 OR student*", "channels": ["desk"]}]
    config["channels"] = {"desk": {"type": "email", "url": smtp.url(),
                                   "from": "alerts@mediawatch.test", "to": ["desk@mediawatch.test"]}}
    return config


def slow_feed(pages: int) -> str:
    """A feed of `pages` articles, each served after 0.3 s."""
    items = "".join(f"<item><title>Story {n}</title><link>/slow/0.3/statements/"
                    f"warning-students.html?n={n}</link></item>" for n in range(pages))
    return f'<rss version="2.0"><channel><title>big</title>{items}</channel></rss>'


def test_a_new_hourly_source_is_polled_within_its_spread_while_a_big_crawl_waits(
        cli: Cli, web: FixtureWeb) -> None:
    """A poll goes before the article pages that earlier polls queued: a new source added
    while a big first crawl fills the queue is polled within its startup spread, not after
    the last page (the cause of the new source that waited over 90 s on PostgreSQL, where
    storing each page takes longer)."""
    (web.root / "feeds" / "_big.xml").write_text(slow_feed(40))
    config = web_config(web, {"name": "big", "kind": "feed", "url": "/feeds/_big.xml",
                              "every": "1s"}, backfill="36500d", concurrency=4)
    config["daemon"] = {"startup_spread": "1s"}
    cli.write_config(config)
    pages = lambda: [h for h in web.log if h.path.startswith("/slow/")]  # noqa: E731
    with in_process(cli) as service:
        events.wait_for(pages, "the big crawl")
        config["sources"] += web_config(web, {"name": "hourly", "kind": "feed", "every": "1h",
                                              "url": "/feeds/dates.xml"})["sources"]
        cli.write_config(config)
        run_on_reactor(service.reload)
        events.wait_for(lambda: web.hits("/feeds/dates.xml"), "the new source's poll")
        fetched_first = len(pages())
    assert fetched_first < 20, f"the new source waited for {fetched_first} of 40 pages"


def test_a_reload_serves_new_topic_feeds_and_alerts_new_channels_and_operators(
        cli: Cli, web: FixtureWeb, tmp_path: Path) -> None:
    """SIGHUP reloads everything that reads the config: a topic added has its feed at once,
    a channel added gets the topic's alerts, a source added is polled, and an operator
    channel added hears of a silent source."""
    config = web_config(web, STATEMENTS, backfill="36500d")
    config["daemon"] = {"dispatch_every": "1s", "startup_spread": "1s"}
    cli.write_config(config)
    base = f"127.0.0.1:{free_port()}"
    desk, ops = tmp_path / "desk.jsonl", tmp_path / "ops.jsonl"
    with in_process(cli, listen=base) as service:
        events.wait_for(lambda: web.hits("/feeds/statements.xml"), "a first poll")
        assert requests.get(f"http://{base}/topics/students.atom", timeout=5).status_code == 404
        config["sources"] += web_config(web, COVERAGE)["sources"]
        config["sources"][0]["expect_every"] = "1s"  # silent from now on
        config["daemon"]["health_every"] = "1s"
        config["topics"] = [{"name": "students", "query": "student*", "channels": ["desk"]}]
        config["channels"] = {"desk": {"type": "jsonl", "path": str(desk)},
                              "ops": {"type": "jsonl", "path": str(ops)}}
        config["operator_channels"] = ["ops"]
        config["web"] = {"base_url": "https://desk.example.org"}
        cli.write_config(config)
        run_on_reactor(service.reload)
        feed = requests.get(f"http://{base}/topics/students.atom", timeout=5)
        assert feed.status_code == 200 and not feedparser.parse(feed.content).bozo
        events.wait_for(lambda: desk.exists() and "coverage" in desk.read_text(),
                        "an alert on the channel added")
        alert = json.loads(desk.read_text().splitlines()[0])
        assert alert["story_url"] == f"https://desk.example.org/stories/{alert['story_id']}"
        events.wait_for(lambda: ops.exists() and "statements is silent" in ops.read_text(),
                        "the operator alert")


def test_a_reload_names_what_waits_for_a_restart() -> None:
    running = Config.model_validate({})
    reloaded = Config.model_validate({"crawl": {"timeout": 5, "backfill": "1d"},
                                      "database": "sqlite:///other.db"})
    assert restart_needed(running, reloaded) == ["crawl.timeout", "database"]


def dated_feed(*items: tuple[str, str, timedelta]) -> str:
    """A feed of (slug, title, age) items, dated `age` ago, read without following links."""
    now = datetime.now(timezone.utc)
    entries = "".join(
        f"<item><title>{title}</title><link>http://news.example/{slug}.html</link>"
        f"<description>{title}, as reported.</description>"
        f"<pubDate>{format_datetime(now - age, usegmt=True)}</pubDate></item>"
        for slug, title, age in items)
    return f'<rss version="2.0"><channel><title>dated</title>{entries}</channel></rss>'


def test_a_topic_added_sees_the_stored_past_and_only_recent_articles_alert(
        cli: Cli, web: FixtureWeb, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A topic added (at start, then by a reload) is matched against the articles stored
    within dedupe.retention: its feed shows them at once; only those newer than
    crawl.backfill alert."""
    (web.root / "feeds" / "_dated.xml").write_text(dated_feed(
        ("protest", "Students protest tuition fees", timedelta(hours=1)),
        ("exhibition", "Students archive exhibition opens", timedelta(days=10))))
    config = web_config(web, {"name": "dated", "kind": "feed", "url": "/feeds/_dated.xml",
                              "every": "1h", "follow": False}, backfill="36500d")
    cli.write_config(config)
    assert cli("crawl", "--no-alerts").code == 0  # stored while no topic wanted them
    config["crawl"]["backfill"] = "2d"
    config["topics"] = [{"name": "students", "query": "students", "channels": ["desk"]}]
    config["channels"] = {"desk": {"type": "jsonl", "path": str(tmp_path / "desk.jsonl")}}
    cli.write_config(config)
    base = f"127.0.0.1:{free_port()}"

    def matches(topic: str) -> dict[str, int]:
        reply = requests.get(f"http://{base}/topics/{topic}.json", timeout=5)
        return {m["title"]: m["article_id"] for m in reply.json().get("matches", [])}

    def alerted(topic: str) -> list[int]:
        return [a["article_id"] for a in cli("alerts", "list", "--topic", topic,
                                             "--json").json()]

    with in_process(cli, listen=base) as service:
        events.wait_for(lambda: matches("students"), "the past matches of the topic at start")
        students = matches("students")
        assert set(students) == {"Students protest tuition fees",
                                 "Students archive exhibition opens"}
        assert alerted("students") == [students["Students protest tuition fees"]]
        config["topics"].append({"name": "archive", "query": "archive", "channels": ["desk"]})
        cli.write_config(config)
        run_on_reactor(service.reload)
        events.wait_for(lambda: matches("archive"), "the past matches of the topic added")
        assert set(matches("archive")) == {"Students archive exhibition opens"}
    with caplog.at_level(logging.INFO, "mediawatch.daemon"), in_process(cli):
        assert "running: 1 sources" in caplog.text
    assert "matched against" not in caplog.text  # a restart matches the past only once
    assert alerted("archive") == [] and len(alerted("students")) == 1


@ONE_BACKEND  # (PostgreSQL members restarted, exactly once: test_faults)
@pytest.mark.long(15)
def test_alerts_are_sent_once_across_a_stop_and_restart(
        cli: Cli, web: FixtureWeb, smtp_server: SmtpServer) -> None:
    cli.write_config(mission(web, smtp_server))
    with daemon(cli) as first:
        first.wait_for(lambda: smtp_server.messages, "the first alert")
        assert first.stop() == 0  # mid-run: polls keep coming, alerts may still be queued
    assert first.logged("info", "stopped")
    assert all(TEXT_LINE.fullmatch(line) for line in first.lines), first.text()  # timed, UTC
    assert not [r for r in first.records() if r["logger"].startswith("alembic")]  # only with -v
    polled_before = len(web.hits("/feeds/statements.xml"))
    with daemon(cli) as second:
        def all_sent() -> bool:  # how many: as many stories as the topic matched
            alerts = cli("alerts", "list", "--json").json()
            return len(alerts) >= 3 and all(a["status"] == "sent" for a in alerts)

        second.wait_for(lambda: any(h.headers.get("if-none-match") for h in
                                    web.hits("/feeds/statements.xml")[polled_before:]),
                        "a conditional poll by the restarted daemon")
        second.wait_for(all_sent, "every alert sent")
        assert second.stop() == 0
    alerts = cli("alerts", "list", "--json").json()
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == len(alerts) == len(set(ids)), "an alert was lost or sent twice"
    runs = cli("sources", "list", "--json").json()
    assert all(s["health"] == "ok" for s in runs)


@ONE_BACKEND  # (the outbox and source health on both: test_alerts_flow, test_alerts_once)
def test_an_alert_leaves_when_its_article_is_stored_not_at_the_next_tick(
        cli: Cli, web: FixtureWeb, smtp_server: SmtpServer) -> None:
    feed = web.root / "feeds" / "_wake.xml"
    feed.write_text('<rss version="2.0"><channel><title>wake</title></channel></rss>')
    config = mission(web, smtp_server, {"name": "wake", "kind": "feed", "every": "1s",
                                        "url": "/feeds/_wake.xml"})
    config["daemon"] = {"dispatch_every": "1h"}  # the tick ran at start, not again
    cli.write_config(config)
    with in_process(cli):
        events.wait_for(lambda: web.hits("/feeds/_wake.xml"), "a first poll")
        feed.write_text('<rss version="2.0"><channel><title>wake</title><item><title>s</title>'
                        f'<link>{web.url("/statements/warning-students.html")}</link></item>'
                        '</channel></rss>')
        events.wait_for(lambda: smtp_server.messages, "the alert", timeout=20)


@ONE_BACKEND  # (PostgreSQL's refusal: test_deployment)
@pytest.mark.long(15)
def test_one_daemon_per_database_with_health_metrics_and_topic_feeds(
        cli: Cli, web: FixtureWeb, smtp_server: SmtpServer) -> None:
    cli.write_config(mission(web, smtp_server))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with daemon(cli, "--listen", f"127.0.0.1:{port}", "--log-json") as running:
        running.wait_for(lambda: smtp_server.messages, "a first alert")
        with daemon(cli) as second:
            assert second.process.wait(timeout=60) != 0
            second.wait_for(lambda: "another `mediawatch run`" in second.text(), "the refusal")

        health = requests.get(f"{base}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        def metrics() -> str:
            return requests.get(f"{base}/metrics", timeout=5).text

        running.wait_for(lambda: 'mediawatch_polls_total{source="statements"' in metrics(),
                         "a poll counted in /metrics")
        assert 'mediawatch_alerts{' in metrics()
        atom = feedparser.parse(requests.get(f"{base}/topics/students.atom", timeout=5).content)
        assert not atom.bozo and atom.entries
        assert {e.link for e in atom.entries} <= {a["canonical_url"] for a in
                                                  cli("articles", "list", "--json").json()}
        assert requests.get(f"{base}/topics/nope.atom", timeout=5).status_code == 404
        assert listening_ports(running.process.pid) == {port}  # no RemoteControl, no telnet
        assert running.stop() == 0
    assert running.logged("info", "statements: ok")


@ONE_BACKEND  # (the outbox and source health on both: test_alerts_flow, test_alerts_once)
def test_a_broken_source_gives_one_operator_alert_and_one_recovery(
        cli: Cli, web: FixtureWeb, smtp_server: SmtpServer, tmp_path: Path) -> None:
    feed = web.root / "feeds" / "_flaky.xml"
    status = web.root / "feeds" / "_flaky.xml.headers"
    feed.write_bytes((web.root / "feeds" / "statements.xml").read_bytes())
    config = mission(web, smtp_server, {"name": "flaky", "kind": "feed", "every": "1s",
                                        "url": "/feeds/_flaky.xml", "follow": False})
    config["channels"]["ops"] = {"type": "jsonl", "path": str(tmp_path / "ops.jsonl")}
    config["operator_channels"] = ["ops"]
    cli.write_config(config)
    operator = tmp_path / "ops.jsonl"

    def said(word: str) -> bool:
        return operator.exists() and word in operator.read_text(encoding="utf-8")

    try:
        with in_process(cli):
            events.wait_for(lambda: web.hits("/feeds/_flaky.xml"), "a first poll")
            status.write_text("Status: 500\n")
            events.wait_for(lambda: said("is failing"), "the failing alert")
            status.unlink()
            events.wait_for(lambda: said("recovered"), "the recovery alert", timeout=90)
    finally:
        feed.unlink(missing_ok=True)
        status.unlink(missing_ok=True)
    sent = [json.loads(line) for line in operator.read_text(encoding="utf-8").splitlines()]
    assert [m["kind"] for m in sent] == ["operator", "operator"]
    assert "HTTP 500" in sent[0]["items"][0]["snippet"]


@ONE_BACKEND
def test_a_verbose_daemon_keeps_every_secret_out_of_its_log_and_alerts(
        cli: Cli, web: FixtureWeb, slack_receiver: SlackReceiver, tmp_path: Path) -> None:
    """-v: the channels' HTTP chatter (webhook and Apprise paths) stays out of the log; a
    token in a source's URL is masked in the log and in the operator's alert."""
    token, apprise_path = "FeedTok3nSecret", "/notify/appriseSecretPath"
    cli.env |= {"FEED_TOKEN": token, "SLACK_WEBHOOK_URL": slack_receiver.url}
    slack_receiver.respond(500, "boom")
    config = web_config(web, STATEMENTS, {
        "name": "tokfeed", "kind": "feed", "every": "1s",
        "url": web.url("/feeds/members-only.xml?apikey=${FEED_TOKEN}")}, backfill="36500d")
    config["topics"] = [{"name": "students", "query": "留学生 OR student*",
                         "channels": ["team-slack", "hook"]}]
    config["channels"] = {
        "team-slack": {"type": "slack", "webhook": "${SLACK_WEBHOOK_URL}"},
        "hook": {"type": "apprise",
                 "url": f"json://{slack_receiver.base.removeprefix('http://')}{apprise_path}"},
        "ops": {"type": "jsonl", "path": str(tmp_path / "ops.jsonl")}}
    config["operator_channels"] = ["ops"]
    cli.write_config(config)
    operator = tmp_path / "ops.jsonl"

    def posted(path: str) -> bool:
        return any(r.path == path for r in slack_receiver.requests)

    with daemon(cli, verbose=True) as running:
        running.wait_for(lambda: operator.exists() and "is failing" in operator.read_text(),
                         "the failing alert")
        running.wait_for(lambda: posted(WEBHOOK_PATH) and posted(apprise_path),
                         "a post to each channel")
        assert running.stop() == 0
    log, alerts = running.text(), cli("alerts", "list", "--json")
    assert any(r["level"] == "debug" for r in running.records())
    assert "members-only.xml?apikey=***" in log
    assert not [r for r in running.records()  # the channels' HTTP chatter
                if r["level"] in ("debug", "info") and r["logger"].startswith(("urllib3", "apprise"))]
    assert "members-only.xml?apikey=***" in operator.read_text()
    for text in (log, operator.read_text(), alerts.out):
        for secret in (token, "T0SECRET1", "xoxSecretWebhookToken", "appriseSecretPath"):
            assert secret not in text, f"{secret} leaked"


@ONE_BACKEND
@pytest.mark.long(35)
def test_a_hung_poll_is_given_up_and_a_bad_reload_is_refused(
        cli: Cli, web: FixtureWeb, smtp_server: SmtpServer) -> None:
    hung = {"name": "hung", "kind": "feed", "url": "/slow/8/feeds/statements.xml",
            "every": "3s"}  # first polled within 3s; answers after the deadline and after the
    # next two runs of its schedule (which must not poll it again meanwhile), before the stop
    config = mission(web, smtp_server, hung)
    config["crawl"].update(timeout=120, poll_deadline="3s")  # abandoned at 12 s
    cli.write_config(config)
    with daemon(cli, "--log-json") as running:
        running.wait_for(lambda: source_state(cli, "hung").get("consecutive_failures"),
                         "the poll deadline")
        source = source_state(cli, "hung")
        assert source["consecutive_failures"] == 1 and "poll_deadline" in source["last_error"]
        assert running.logged("error", "hung: poll given up")
        running.wait_for(lambda: len(web.hits("/slow/8/feeds/statements.xml")) >= 2,
                         "the next poll, once the first ended", timeout=40)
        assert web.peak["/slow/8/feeds/statements.xml"] == 1  # given up, it held its source

        cli.config.write_text(cli.config.read_text() + "\nsourcez: []\n")
        running.process.send_signal(signal.SIGHUP)
        running.wait_for(lambda: running.logged("error", "config reload refused"), "the refusal")
        config["sources"].append(web_config(web, dict(STATEMENTS, every="1s"))["sources"][0])
        cli.write_config(config)
        running.process.send_signal(signal.SIGHUP)
        running.wait_for(lambda: web.hits("/feeds/statements.xml"), "the reloaded source")
        assert running.logged("info", "config reloaded: 2 sources")
        assert running.stop() == 0


@ONE_BACKEND
def test_the_daemon_refuses_a_host_name_that_resolves_to_loopback(cli: Cli, web: FixtureWeb) -> None:
    """The fetch guard's resolver guards the daemon too (Scrapy installs one only when a
    CrawlerProcess starts, and the daemon runs a CrawlerRunner)."""
    port = web.base.rsplit(":", 1)[1]
    config = web_config(web, {"name": "local", "kind": "feed", "every": "1s",
                              "url": f"http://localhost:{port}/feeds/statements.xml"})
    config["crawl"]["allow_private"] = False
    cli.write_config(config)
    with daemon(cli) as running:
        running.wait_for(lambda: source_state(cli, "local").get("consecutive_failures"),
                         "the refused poll")
        assert running.stop() == 0
    assert "localhost: it resolves to 127.0.0.1, not a public address" in source_state(cli, "local")["last_error"]
    assert web.log == [], "a destination on loopback was contacted"


# ---------------------------------------------------------------- source health, pure

def test_source_health_failing_silent_and_learned_cadence() -> None:
    source = Source(name="s", kind="feed", url="https://s.example/f", consecutive_failures=0,
                    last_error=None)
    hourly = [NOW - timedelta(hours=h) for h in range(10, 0, -1)]
    cadence = learned_cadence(hourly)
    assert cadence == timedelta(hours=3)  # three times the usual gap
    assert learned_cadence(hourly[:4]) is None  # too little history to learn from
    assert health_of(source, hourly[-1], cadence, NOW).state == "ok"
    assert health_of(source, hourly[-1], cadence, NOW + timedelta(hours=4)).state == "silent"
    source.consecutive_failures, source.last_error = 3, "HTTP 500 from https://s.example/f"
    failing = health_of(source, hourly[-1], cadence, NOW)
    assert failing.state == "failing" and "HTTP 500" in failing.detail
