"""Politeness across a deployment's members (crawler.engine.hostgate): two crawlers, each with
its own settings as two `mediawatch run` processes would have, against one host of the fixture
web, with the real Redis on 127.0.0.1:6379 under a prefix of the test's own."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from scrapy.crawler import CrawlerRunner
from twisted.internet.defer import DeferredList

from crawler.config import CrawlSettings
from crawler.engine import hostgate, reactor
from crawler.engine.fetchguard import install_resolver
from crawler.engine.hostgate import HostGate
from crawler.engine.runner import Collected
from crawler.engine.settings import scrapy_settings
from crawler.engine.shared import ITEMS
from crawler.engine.storing import Storing
from spiders.items import PageSnapshot, PollDone, SourceDeferred, SourceSpec
from spiders.source import SourceSpider
from tests.receivers import free_port
from tests.webserver import FixtureWeb

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    """The deployment's key prefix, unique to the test; its keys deleted after."""
    prefix = f"mwtest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def member(prefix: str, queue: str = REDIS, **crawl: Any) -> dict[str, Any]:
    """One member's crawl settings (a loopback host: allow_private)."""
    return scrapy_settings(CrawlSettings(allow_private=True, **crawl), queue=queue,
                           queue_prefix=prefix)


def pages(web: FixtureWeb, path: str, *names: str) -> list[SourceSpec]:
    return [SourceSpec(name, "page", web.url(path)) for name in names]


def crawl_together(*crawls: tuple[dict[str, Any], list[SourceSpec]]) -> list[Collected]:
    """Run the crawls at once on the test reactor, each in its own crawler → their items."""
    collected = [Collected() for _ in crawls]

    def start() -> DeferredList:
        runs = []
        for (settings, specs), items in zip(crawls, collected, strict=True):
            settings = settings | {ITEMS: Storing(items)}
            install_resolver(settings, reactor.install())
            runs.append(CrawlerRunner(settings).crawl(SourceSpider, sources=specs))
        return DeferredList(runs, fireOnOneErrback=True)

    reactor.run_on_reactor(start)
    return collected


def snapshots(items: Collected) -> list[str]:
    return sorted(item.source for item in items if isinstance(item, PageSnapshot))


def test_members_together_keep_per_domain_for_a_host(web: FixtureWeb, prefix: str) -> None:
    slow = "/slow/0.3/index.html"
    first, second = crawl_together(
        (member(prefix, per_domain=1, obey_robots=False), pages(web, slow, "a1", "a2")),
        (member(prefix, per_domain=1, obey_robots=False), pages(web, slow, "b1", "b2")))
    assert snapshots(first) == ["a1", "a2"] and snapshots(second) == ["b1", "b2"]
    assert web.peak["/" + slow.strip("/")] == 1  # each alone would have had one in flight


def test_a_short_retry_after_holds_the_other_members_requests(web: FixtureWeb,
                                                               prefix: str) -> None:
    (web.root / "throttled" / "feed.xml.headers").write_text("Status: 429\nRetry-After: 2\n")
    busy = SourceSpec("busy", "feed", web.url("/throttled/feed.xml"))
    crawl_together((member(prefix, obey_robots=False), [busy]))
    held = redis.Redis.from_url(REDIS).pttl(f"{prefix}hold:127.0.0.1") / 1000
    started = time.monotonic()
    (other,) = crawl_together((member(prefix, obey_robots=False),
                               pages(web, "/index.html", "other")))
    assert snapshots(other) == ["other"]  # it waited, then went
    assert time.monotonic() - started >= held > 0


def test_a_long_retry_after_defers_the_other_members_polls(web: FixtureWeb,
                                                           prefix: str) -> None:
    busy = SourceSpec("busy", "feed", web.url("/throttled/feed.xml"))  # Retry-After: 3600
    crawl_together((member(prefix, obey_robots=False), [busy]))
    (other,) = crawl_together((member(prefix, obey_robots=False),
                               pages(web, "/index.html", "other")))
    assert [type(item) for item in other] == [SourceDeferred, PollDone]
    assert other[0].until.timestamp() > time.time() + 3500
    assert web.hits("/index.html") == []  # the host was left alone


def test_robots_txt_is_fetched_once_for_the_deployment(web: FixtureWeb, prefix: str) -> None:
    first, second = crawl_together(
        (member(prefix), pages(web, "/index.html", "a") + pages(web, "/private/x.html", "ax")),
        (member(prefix), pages(web, "/index.html", "b") + pages(web, "/private/x.html", "bx")))
    assert snapshots(first) == ["a"] and snapshots(second) == ["b"]  # /private/ disallowed
    assert len(web.hits("/robots.txt")) == 1


def test_without_redis_each_member_crawls_on_its_own(web: FixtureWeb, prefix: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    (items,) = crawl_together((member(prefix, queue=closed),
                               pages(web, "/index.html", "a", "b", "c")))
    assert snapshots(items) == ["a", "b", "c"]
    assert len(web.hits("/robots.txt")) == 1  # robots.txt still obeyed, per process
    assert [r.message for r in caplog.records if "Redis" in r.message] == [
        "Redis is unreachable (ConnectionError): each member keeps to its own per-host limits "
        "and robots.txt until it answers"]


def test_a_slot_freed_while_redis_did_not_answer_is_freed_once_it_does(prefix: str) -> None:
    gate = HostGate(REDIS, prefix)
    slots = f"{prefix}slots:news.example"
    assert gate.acquire("news.example", "t1", 2) == 0
    gate.down, gate.asked_after = True, time.monotonic() + 60  # the pause after a failure
    gate.release("news.example", "t1")
    assert redis.Redis.from_url(REDIS).zcard(slots) == 1  # Redis not asked meanwhile
    gate.asked_after = 0.0  # the pause is over: the next call frees it first
    assert gate.acquire("news.example", "t2", 2) == 0
    assert redis.Redis.from_url(REDIS).zrange(slots, 0, -1) == [b"t2"]


def test_a_slot_lasts_while_its_member_renews_it_and_frees_soon_after_it_died(
        prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostgate, "SLOT_LEASE", 0.4)
    alive, dead, other = (HostGate(REDIS, prefix) for _ in range(3))
    assert alive.acquire("a.example", "alive", 1) == 0 and dead.acquire("b.example", "dead", 1) == 0
    for _ in range(3):  # 0.75 s, longer than a lease: the live member renews its slot
        time.sleep(0.25)
        alive.renew()
    assert other.acquire("a.example", "other", 1) == -1  # still taken
    assert other.acquire("b.example", "other", 1) == 0  # the dead member's lapsed
