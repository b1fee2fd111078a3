"""Many daemons, one deployment: `mediawatch run` processes on one fresh PostgreSQL database
and the shared Redis (keys under the database's own prefix), polling the fixture web. One
leads, all poll, no source is polled twice at once, and the leader's SIGKILL hands the
schedule — and the poll it held — to the survivor."""
from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
import requests
import yaml
from sqlalchemy import create_engine, text

from crawler.config import ConfigError, parse_config
from crawler.daemon import deployment as queueing
from crawler.daemon.deployment import Consumer, Offer, PollQueue, queue_prefix
from crawler.daemon.service import database_lock, load_run_config
from tests.conftest import Cli, cli_for, fresh_pg, web_config
from tests.receivers import free_port
from tests.test_daemon import Running, daemon
from tests.webserver import FixtureWeb

QUEUE = "redis://127.0.0.1:6379/0"
PG_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
FEEDS = ("statements.xml", "coverage.atom", "dates.xml", "reprints.xml", "search.xml",
         "syndication.xml")
# polls still running when their member is killed: two, as either member may take either
SLOWS = {"slow": "/slow/2.5/feeds/charset.xml", "slow-2": "/slow/2.5/feeds/dates.xml"}


def test_queue_needs_postgresql_and_a_redis_url(tmp_path: Path) -> None:
    pg = "database: postgresql+psycopg://postgres@127.0.0.1/test\n"
    with pytest.raises(ConfigError, match=r"queue: needs a PostgreSQL database.*SQLite is "
                                          r"for one daemon"):
        parse_config(f"database: sqlite:///m.db\nqueue: {QUEUE}\n", env={})
    with pytest.raises(ConfigError, match=r"queue: URL scheme must be redis or rediss .*'amqp'"):
        parse_config(f"{pg}queue: amqp://127.0.0.1/\n", env={})
    config = parse_config(f"{pg}queue: redis://:${{QUEUE_PASSWORD}}@127.0.0.1:6379/0\n",
                          env={"QUEUE_PASSWORD": "pa55word"})
    assert "pa55word" in config.secrets
    config = parse_config(f"{pg}queue: redis://:hunter2hunter2@127.0.0.1:6379/0\n", env={})
    assert config.redactor()(f"lost {config.queue}") == "lost redis://:***@127.0.0.1:6379/0"
    (tmp_path / "config.yaml").write_text(f"{pg}queue: {QUEUE}\n")
    with pytest.raises(ConfigError, match="queue: needs a PostgreSQL database.*--db"):
        load_run_config(tmp_path / "config.yaml", f"sqlite:///{tmp_path / 'm.db'}")  # --db


@PG_ONLY
def test_without_a_queue_a_second_daemon_is_refused(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, {"name": "dates", "kind": "feed", "every": "1h",
                                      "url": "/feeds/dates.xml", "follow": False}))
    with database_lock(cli.db), daemon(cli) as second:  # as the first daemon holds it
        assert second.process.wait(timeout=60) == 1, second.text()
    assert "another `mediawatch run` is using database" in second.text()


def test_a_lease_is_its_polls_own_and_renewing_it_keeps_the_entry_from_being_reclaimed() -> None:
    prefix = f"mediawatch:test-lease-{time.time_ns()}:"
    first, second = (PollQueue(QUEUE, prefix, name) for name in ("first", "second"))
    try:
        first.ensure_group()
        assert first.offer("s") and not first.offer("s")  # one offer while one waits
        [offer] = first.read(1, block=0.1)
        assert first.lease(offer) and not second.lease(offer)
        idle = timedelta(seconds=0.3)
        time.sleep(0.4)
        assert first.renew([offer]) == []
        assert second.reclaim(idle, 10) == []  # renewed: its entry is fresh
        time.sleep(0.4)
        [orphan] = second.reclaim(idle, 10)  # not renewed since: claimed by the other
        assert (orphan.id, orphan.reclaimed) == (offer.id, True)
        assert not second.lease(orphan)  # ... which finds the lease still alive
        second.finish(orphan, leased=False)

        first.redis.pexpire(first.lease_key("s"), 1)  # expired (Redis was unreachable)
        time.sleep(0.05)
        assert first.renew([offer]) == []  # lapsed, nobody took it: taken again
        assert first.redis.get(first.lease_key("s")) == first.token(offer)
        first.redis.pexpire(first.lease_key("s"), 1)
        time.sleep(0.05)
        assert second.lease(orphan)  # another poll's now
        assert first.renew([offer]) == ["s"]  # the first poll learns it lost it
        first.finish(offer, leased=True)  # and releases nothing of the other's
        assert first.redis.get(first.lease_key("s")) == second.token(orphan)
    finally:
        _forget_keys(prefix)


def test_a_stopping_member_keeps_renewing_the_leases_of_its_polls_until_they_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queueing, "LEASE_TTL", timedelta(seconds=0.6))
    monkeypatch.setattr(queueing, "RENEW_EVERY", 0.1)
    prefix = f"mediawatch:test-stop-{time.time_ns()}:"
    queue = PollQueue(QUEUE, prefix, "stopping")
    taken: list[Offer] = []

    def take(offer: Offer) -> bool:
        taken.append(offer)
        return queue.lease(offer)

    consumer = Consumer(queue, 2, take)
    try:
        queue.ensure_group()
        consumer.start()
        queue.offer("s")
        deadline = time.monotonic() + 10
        while not taken:
            assert time.monotonic() < deadline, "the offer was not taken"
            time.sleep(0.05)
        consumer.stop()  # (SIGTERM) while its poll runs on, longer than a lease
        time.sleep(1.5)
        assert queue.redis.get(queue.lease_key("s")) == queue.token(taken[0])
        consumer.done(taken[0])  # the poll ends: its lease goes, the upkeep stops
        assert queue.redis.get(queue.lease_key("s")) is None
        consumer._threads[1].join(timeout=2)
        assert not consumer._threads[1].is_alive()
    finally:
        consumer.stop()
        _forget_keys(prefix)


# ---------------------------------------------------------------- one deployment

class Member:
    def __init__(self, running: Running, address: str) -> None:
        self.running, self.address = running, address

    def health(self) -> dict:
        try:
            return requests.get(f"http://{self.address}/healthz", timeout=5).json()
        except requests.RequestException:
            return {}

    def metric(self, name: str) -> float:
        """A sample of /metrics (`name` with its labels, as written there)."""
        body = requests.get(f"http://{self.address}/metrics", timeout=5).text
        found = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
        return float(found[1]) if found else 0.0


@pytest.fixture
def deployment(tmp_path: Path, pg_admin, web: FixtureWeb) -> Iterator[tuple[Cli, list[Member]]]:
    """Two members on a fresh database: the first started leads."""
    with ExitStack() as stack:
        db = stack.enter_context(contextmanager(fresh_pg)(pg_admin))
        stack.callback(_forget_keys, queue_prefix(db))
        cli = cli_for(tmp_path, db)
        sources = [{"name": feed.split(".")[0], "kind": "feed", "url": f"/feeds/{feed}",
                    "every": "1s", "follow": False} for feed in FEEDS]
        sources += [{"name": name, "kind": "feed", "url": url, "every": "1s", "follow": False}
                    for name, url in SLOWS.items()]
        config = web_config(web, *sources, backfill="36500d", poll_deadline="8s")
        config |= {"queue": QUEUE, "daemon": {"startup_spread": "1s"}}
        cli.config.write_text(yaml.safe_dump(config))
        members = []
        for _ in range(2):
            address = f"127.0.0.1:{free_port()}"
            members.append(Member(stack.enter_context(daemon(cli, "--listen", address)),
                                  address))
            if len(members) == 1:
                members[0].running.wait_for(lambda: members[0].health().get("role") == "leader",
                                            "the first member to lead")
        yield cli, members


def _forget_keys(prefix: str) -> None:
    client = redis.Redis.from_url(QUEUE)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def runs(db: str) -> list[tuple[str, datetime, datetime]]:
    engine = create_engine(db)
    with engine.connect() as connection:
        found = connection.execute(text(
            "select s.name, r.started_at, r.finished_at from crawl_runs r "
            "join sources s on s.id = r.source_id order by s.name, r.started_at")).all()
    engine.dispose()
    return [tuple(row) for row in found]


@pytest.mark.long(30)
def test_one_leads_all_poll_and_the_survivor_takes_over(
        deployment: tuple[Cli, list[Member]], web: FixtureWeb) -> None:
    cli, (leader, member) = deployment
    member.running.wait_for(lambda: member.health().get("status") == "ok", "the second member")
    assert leader.health() == {"status": "ok", "role": "leader", "scheduler": True,
                               "database": True, "redis": True}
    assert member.health()["role"] == "member"
    assert leader.metric('mediawatch_role{role="leader"}') == 1
    assert member.metric('mediawatch_role{role="member"}') == 1
    for each in (leader, member):
        each.running.wait_for(lambda m=each: m.metric("mediawatch_polls_claimed_total") >= 3,
                              "polls taken by each member")
    assert leader.metric("mediawatch_queue_depth") >= 0

    def held() -> list[str]:
        return [name for name in SLOWS
                if leader.metric(f'mediawatch_source_in_flight{{source="{name}"}}') == 1]

    leader.running.wait_for(held, "the leader polling a slow source", timeout=60)
    slow = held()[0]
    leader.running.process.send_signal(signal.SIGKILL)
    killed_at, hits_before = time.monotonic(), len(web.hits(SLOWS[slow]))
    member.running.wait_for(lambda: member.health().get("role") == "leader",
                            "the survivor to lead", timeout=15)
    took_over = time.monotonic() - killed_at
    after = datetime.now(timezone.utc)
    member.running.wait_for(lambda: any(start > after for _, start, _ in runs(cli.db)),
                            "a poll scheduled by the new leader")
    member.running.wait_for(lambda: member.metric("mediawatch_polls_reclaimed_total") >= 1,
                            "the killed leader's poll reclaimed", timeout=30)
    member.running.wait_for(lambda: len(web.hits(SLOWS[slow])) > hits_before,
                            "the reclaimed poll's request")  # it follows the claim
    assert member.running.logged("warning", f"{slow}: poll reclaimed")
    print(f"new leader {took_over:.1f}s after the SIGKILL")

    every = {feed.split(".")[0] for feed in FEEDS} | set(SLOWS)
    member.running.wait_for(lambda: {name for name, *_ in runs(cli.db)} == every,
                            "a finished poll of every source")  # slow's take a while
    polls = runs(cli.db)
    for (name, _, finished), (following, started, _) in zip(polls, polls[1:], strict=False):
        assert name != following or started >= finished, f"two polls of {name} at once"


@PG_ONLY
def test_polls_pause_while_redis_is_down_and_resume_when_it_is_back(
        cli: Cli, web: FixtureWeb, tmp_path: Path) -> None:
    """A member whose Redis does not answer yet: /healthz says why, the log says it once,
    and polls start as soon as a Redis listens there."""
    port = free_port()
    config = web_config(web, {"name": "dates", "kind": "feed", "every": "1s",
                              "url": "/feeds/dates.xml", "follow": False})
    config |= {"queue": f"redis://127.0.0.1:{port}/0", "daemon": {"startup_spread": "1s"}}
    cli.write_config(config)
    address = f"127.0.0.1:{free_port()}"
    with daemon(cli, "--listen", address) as running:
        member = Member(running, address)
        running.wait_for(lambda: running.logged("error", "the queue (Redis) is unreachable"),
                         "the outage logged")
        running.wait_for(lambda: member.health().get("role") == "leader", "the election")
        response = requests.get(f"http://{address}/healthz", timeout=5)
        assert response.status_code == 503
        assert response.json() == {"status": "failing", "role": "leader", "scheduler": True,
                                   "database": True, "redis": False, "failing": ["redis"]}
        down_since = time.monotonic()  # an outage of some seconds: many offers and reads
        running.wait_for(lambda: time.monotonic() - down_since > 3
                         and member.health().get("redis") is False, "a 3-second outage")
        assert not web.hits("/feeds/dates.xml")
        server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                                   "--appendonly", "no", "--dir", str(tmp_path)],
                                  stdout=subprocess.DEVNULL)
        try:
            running.wait_for(lambda: web.hits("/feeds/dates.xml"), "a poll once Redis is back")
            running.wait_for(lambda: member.health().get("status") == "ok", "a healthy member")
            assert running.logged("warning", "the queue (Redis) is back")
            assert len([r for r in running.records() if "unreachable" in r["message"]]) == 1
        finally:
            server.terminate()
            server.wait(timeout=10)
