"""Faults, with real processes: three `mediawatch run` members of one deployment (`queue:`) on
their own PostgreSQL and Redis (tests/services.py: stopped and restarted here, so never the
shared ones), the fixture web and a real SMTP server. One deployment lives through every
fault in turn, as it would in production — a member lost is replaced, as an orchestrator
would — and at the end every alert was delivered exactly once:

1. the leader SIGKILLed mid-poll → another member leads within 15 s, every source polled again;
2. a member SIGKILLed holding polls (slow feeds) → those sources polled again by another;
3. Redis down (12 s here: the issue's 30 s behaves the same, since the members only retry
   with a capped backoff of 5 s) → no poll starts, every /healthz is 503 naming redis; an
   article published meanwhile is stored and alerted after Redis is back (started empty);
4. PostgreSQL restarted while a poll stores a batch of articles → every article stored has
   its match and its outbox row; the batch is stored whole in the end (the poll retried).

Throughout, no two requests for one feed are ever served at once (the fixture web's `peak`).
"""
from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, create_engine, text

from alerts.dispatcher import SENDING_TIMEOUT
from tests.conftest import Cli, cli_for, web_config
from tests.receivers import SmtpServer, free_port
from tests.services import OwnPostgres, OwnRedis, own_postgres, own_redis
from tests.test_daemon import Running, daemon
from tests.webserver import FixtureWeb

WIRES = ("wire-1", "wire-2", "wire-3")  # polled every second
SLOWS = ("slow-1", "slow-2")  # every 2 s, each answer 2 s late: a member is mid-poll
FAILOVER = 15.0  # seconds: the bound for a new leader
CHECK_EVERY = 0.25  # seconds between two checks of a condition (see Deployment.wait_for)
_IN_FLIGHT = re.compile(r'^mediawatch_source_in_flight\{source="([^"]+)"\} 1\.0$', re.M)


# ---------------------------------------------------------------- the feeds

class Feeds:
    """The fixture web's feeds of this test: items are published (appended) over time, each
    a distinct story about students that the topic matches."""

    def __init__(self, web: FixtureWeb) -> None:
        self.web = web
        self.items: dict[str, list[str]] = {name: [] for name in WIRES + SLOWS}
        self.count = itertools.count(1)
        for name in self.items:
            self.write(name)

    def path(self, name: str) -> str:
        return f"/feeds/_{name}.xml"

    def url(self, name: str) -> str:
        return self.path(name) if name in WIRES else f"/slow/2{self.path(name)}"

    def publish(self, name: str, n: int = 1) -> list[str]:
        """`n` new items at the top of feed `name`. → their links"""
        links = []
        for _ in range(n):
            k = next(self.count)
            rng = random.Random(k)
            words = " ".join("".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou")
                                     for _ in range(3)) for _ in range(40))
            link = f"http://news.example/{name}/story-{k}.html"
            self.items[name].insert(0, (
                f"<item><title>Students {k} report {words[:30]}</title><link>{link}</link>"
                f"<description>Students abroad, report {k}: {words}.</description>"
                f"<pubDate>{format_datetime(datetime.now(timezone.utc), usegmt=True)}</pubDate>"
                "</item>"))
            links.append(link)
        self.write(name)
        return links

    def write(self, name: str) -> None:
        path = self.web.root / self.path(name).lstrip("/")
        staged = path.with_suffix(".tmp")  # replaced whole: never served half-written
        staged.write_text(f'<rss version="2.0"><channel><title>{name}</title>'
                          f'{"".join(self.items[name])}</channel></rss>', encoding="utf-8")
        staged.replace(path)


# ---------------------------------------------------------------- the deployment

@dataclass
class Member:
    running: Running
    base: str
    killed: bool = False  # by the test (any other exit fails it)

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            reply = requests.get(f"{self.base}/healthz", timeout=5)
            return reply.status_code, reply.json()
        except (requests.RequestException, ValueError):
            return 0, {}

    def metrics(self) -> str:
        try:
            return requests.get(f"{self.base}/metrics", timeout=5).text
        except requests.RequestException:
            return ""

    def polling(self) -> set[str]:
        return set(_IN_FLIGHT.findall(self.metrics()))

    def kill(self) -> float:
        self.killed = True
        self.running.process.kill()
        self.running.process.wait()
        return time.time()


class Deployment:
    def __init__(self, cli: Cli, postgres: OwnPostgres, redis: OwnRedis, stack: ExitStack) -> None:
        self.cli, self.postgres, self.redis, self.stack = cli, postgres, redis, stack
        self.db: Engine = create_engine(postgres.url, pool_pre_ping=True)
        self.members: list[Member] = []

    def join(self) -> Member:
        base = f"127.0.0.1:{free_port()}"
        member = Member(self.stack.enter_context(daemon(self.cli, "--listen", base)),
                        f"http://{base}")
        self.members.append(member)
        return member

    def alive(self) -> list[Member]:
        return [m for m in self.members if not m.killed]

    def leaders(self) -> list[Member]:
        return [m for m in self.alive() if m.health()[1].get("role") == "leader"]

    def sql(self, query: str, **params: Any) -> list[Any]:
        try:
            with self.db.connect() as conn:
                return list(conn.execute(text(query), params))
        except Exception:  # noqa: BLE001 — PostgreSQL restarting: asked again at the next event
            return []

    def polled_since(self, moment: float) -> set[str]:
        """Sources with a poll started after `moment` (epoch) and finished."""
        rows = self.sql("select s.name from crawl_runs r join sources s on s.id = r.source_id "
                        "where r.started_at > :t and r.finished_at is not null",
                        t=_utc(moment))
        return {name for (name,) in rows}

    def stored(self, links: list[str]) -> bool:
        rows = self.sql("select count(*) from articles where canonical_url = any(:links)",
                        links=links)
        return bool(rows) and rows[0][0] == len(links)

    def all_polled_since(self, moment: float, what: str, timeout: float = 30,
                         also: Any = lambda: True) -> None:
        """Until every source had a poll since `moment` (and `also()`)."""
        self.wait_for(lambda: self.polled_since(moment) >= set(WIRES + SLOWS) and also(), what,
                      timeout, lambda: "not polled: "
                      f"{sorted(set(WIRES + SLOWS) - self.polled_since(moment))}")

    def wait_for(self, ready: Any, what: str, timeout: float = 30,
                 detail: Any = lambda: "") -> None:
        """Until `ready()`, checked every CHECK_EVERY seconds rather than at each event of
        tests.events: it asks the database and the members, and an event's sender (the
        fixture web, a log reader) waits while a check runs. Fails when a member not killed
        by the test exited."""
        deadline = time.monotonic() + timeout
        while not ready():
            for member in self.alive():
                member.running.alive()
            assert time.monotonic() < deadline, \
                f"timed out after {timeout:g}s waiting for {what}; {detail()}"
            time.sleep(CHECK_EVERY)


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, timezone.utc).replace(tzinfo=None)


def _config(web: FixtureWeb, feeds: Feeds, smtp: SmtpServer, redis: OwnRedis) -> dict[str, Any]:
    sources = [{"name": name, "kind": "feed", "url": feeds.url(name), "follow": False,
                "every": "1s" if name in WIRES else "2s"} for name in WIRES + SLOWS]
    config = web_config(web, *sources, backfill="36500d", poll_deadline="10s",
                        obey_robots=False)
    config |= {"queue": redis.url,
               "daemon": {"dispatch_every": "1s", "startup_spread": "1s"},
               "topics": [{"name": "students", "query": "student*", "channels": ["desk"]}],
               "channels": {"desk": {"type": "email", "url": smtp.url(),
                                     "from": "alerts@mediawatch.test",
                                     "to": ["desk@mediawatch.test"]}}}
    return config


@pytest.fixture
def deployment(tmp_path: Path, web: FixtureWeb, smtp_server: SmtpServer
               ) -> Iterator[tuple[Deployment, Feeds]]:
    with own_postgres(tmp_path) as postgres, own_redis(tmp_path) as redis, ExitStack() as stack:
        feeds = Feeds(web)
        cli = cli_for(tmp_path, postgres.url)
        cli.write_config(_config(web, feeds, smtp_server, redis))
        deployed = Deployment(cli, postgres, redis, stack)
        try:
            yield deployed, feeds
        finally:
            deployed.db.dispose()
            for n, member in enumerate(deployed.members, 1):  # shown when the test fails
                print(f"--- member {n} ({member.base}), last lines:", *member.running.lines[-25:],
                      sep="\n")


# ---------------------------------------------------------------- the faults

@pytest.mark.long(90)
def test_three_members_live_through_failover_a_lost_member_redis_and_postgres_outages(
        deployment: tuple[Deployment, Feeds], web: FixtureWeb, smtp_server: SmtpServer) -> None:
    d, feeds = deployment
    published = feeds.publish("wire-1") + feeds.publish("slow-1")
    start = time.time()
    for _ in range(3):
        d.join()
    d.all_polled_since(start, "one leader and every source polled",
                       also=lambda: len(d.leaders()) == 1)
    d.wait_for(lambda: len(smtp_server.messages) >= 2, "the first alerts")

    # 1. the leader SIGKILLed mid-poll
    leader = d.leaders()[0]
    d.wait_for(leader.polling, "the leader mid-poll")
    killed = leader.kill()
    d.wait_for(lambda: len(d.leaders()) == 1, "a new leader", timeout=FAILOVER)
    assert time.time() - killed <= FAILOVER
    elected = time.time()
    d.join()  # the orchestrator replaces the member lost
    # the source polled by the leader waits for its lease to expire (deployment.ORPHANED)
    d.all_polled_since(elected, "every source polled again", timeout=25)

    # 2. a member SIGKILLed holding polls
    holding: dict[str, set[str]] = {}

    def a_member_holds_polls() -> bool:
        for member in d.alive():
            if member not in d.leaders() and (held := member.polling() & set(SLOWS)):
                holding[member.base] = held
                return True
        return False

    d.wait_for(a_member_holds_polls, "a member mid-poll on a slow feed")
    victim = next(m for m in d.alive() if m.base in holding)
    killed = victim.kill()
    d.join()
    d.wait_for(lambda: holding[victim.base] <= d.polled_since(killed),
               "the polls of the member lost run again")
    reclaimed = sum(float(v) for m in d.alive() for v in re.findall(
        r"^mediawatch_polls_reclaimed_total (\S+)$", m.metrics(), re.M))
    print(f"reclaimed polls after the member's death: {reclaimed:g}")

    # 3. Redis down for 12 s
    down = time.time()
    d.redis.stop()
    d.wait_for(lambda: all(h[0] == 503 and "redis" in h[1].get("failing", [])
                           for h in (m.health() for m in d.alive())),
               "every /healthz failing on redis", timeout=10)
    during = feeds.publish("wire-2")  # nothing may be lost
    paused_from = down + 4  # the polls in flight (2 s answers) are stored
    time.sleep(max(0.0, down + 12 - time.time()))  # the outage itself: 12 s
    d.redis.start()
    up = time.time()
    assert d.sql("select count(*) from crawl_runs where started_at between :a and :b",
                 a=_utc(paused_from), b=_utc(up))[0][0] == 0, "a poll ran without Redis"
    d.wait_for(lambda: all(m.health()[0] == 200 for m in d.alive()), "/healthz ok again")
    d.all_polled_since(up, "polls resumed and the article published meanwhile stored",
                       also=lambda: d.stored(during))

    # 4. PostgreSQL restarted while a poll stores a batch
    before = d.sql("select count(*) from articles")[0][0]
    batch = feeds.publish("wire-3", 30)
    d.wait_for(lambda: d.sql("select count(*) from articles")[0][0] > before,
               "the batch being stored")
    d.postgres.restart()
    restarted = time.time()
    d.wait_for(lambda: d.stored(batch), "the whole batch stored after the restart")
    d.all_polled_since(restarted, "one leader and every source polled after the restart",
                       also=lambda: len(d.leaders()) == 1)
    orphans = d.sql("select count(*) from articles a where a.duplicate_of is null and not exists"
                    " (select 1 from topic_matches m where m.article_id = a.id)")[0][0]
    unalerted = d.sql("select count(distinct a.story_id) from articles a join topic_matches m "
                      "on m.article_id = a.id where not exists (select 1 from alerts x where "
                      "x.topic = m.topic and x.story_id = a.story_id)")[0][0]
    assert (orphans, unalerted) == (0, 0), "an article stored without its match or outbox row"

    # after all of it: every alert delivered exactly once, nothing lost
    assert d.stored(published + during + batch)

    def all_sent() -> bool:
        rows = d.sql("select count(*) filter (where status = 'sent'), count(*) from alerts "
                     "where kind in ('new', 'update')")
        return bool(rows) and rows[0][0] == rows[0][1] == len(smtp_server.messages)

    d.wait_for(all_sent, "every alert sent", timeout=SENDING_TIMEOUT.total_seconds() + 30,
               detail=lambda: f"{len(smtp_server.messages)} "
               "mails; alerts by status: " + str(d.sql("select status, count(*) from alerts "
                                                       "group by status")))
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == len(set(ids)), "an alert was sent twice"
    pairs = {(topic, int(story)) for topic, story in re.findall(r"<([\w-]+)\.story-(\d+)\.desk@",
                                                               " ".join(ids))}
    stored = {(topic, story) for topic, story in d.sql(
        "select topic, story_id from alerts where kind = 'new' and status = 'sent'")}
    assert pairs == stored, "a (topic, story) alerted twice or never"
    assert all(count <= 1 for count in web.peak.values()), \
        f"two polls of one feed at once: {web.peak}"
