"""Politeness across a deployment (`queue:` set): its members share each host's limits in
Redis, as one crawler would keep them. Without a queue none of this is installed.

    PREFIX slots:HOST         sorted set: one token per request in flight to HOST, scored by
                              the end of its lease (ms, Redis's clock); at most
                              `crawl.per_domain` of them. A lease lasts SLOT_LEASE and the
                              member renews its own every RENEW_SLOTS while the request
                              waits or downloads: a dead member's slots free in seconds
    PREFIX hold:HOST          set (PX) when HOST answered 429/503 with Retry-After: no member
                              asks HOST before it expires
    PREFIX robots:ORIGIN      the robots.txt body fetched by one member, for ROBOTS_TTL
    PREFIX robots-fetch:ORIGIN  set (NX) by the member fetching it: the others wait for it

Redis is called synchronously from the reactor thread, with small timeouts (it is meant to
be near: sub-millisecond on loopback). When it does not answer, every member falls back to
its own limits (Scrapy's, per process) for DOWN_PAUSE seconds, and says so once per outage:
crawling never stops because of the gate.
"""
from __future__ import annotations

import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from math import inf
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response
from scrapy.robotstxt import RobotParser
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, deferLater

from crawler.engine.shared import Shared
from spiders.source import HostHeld, asked_to_wait

log = logging.getLogger("mediawatch.hostgate")

GATE = "MEDIAWATCH_HOSTGATE"  # the setting that holds the deployment's HostGate
TIMEOUT = 0.1  # seconds for a Redis connect or answer: the reactor waits that long at most
DOWN_PAUSE = 10.0  # seconds without asking Redis after it failed to answer
SLOT_WAIT = 0.1  # seconds between two tries for a free slot (plus up to as much jitter)
MAX_HOLD_WAIT = 5.0  # seconds a request waits out a hold; a longer one skips it (HostHeld)
MAX_HOLD = timedelta(days=1)  # a longer Retry-After holds the host that long
SLOT_LEASE = 10.0  # seconds a slot lasts unless renewed
RENEW_SLOTS = 2.0  # seconds between two renewals of this member's slots
LEASE_MARGIN = 10.0  # seconds a robots.txt fetch may outlive its timeout and throttle delay
ROBOTS_TTL = timedelta(days=1)
UNRELEASED = 10_000  # slots to free kept while Redis is away (older ones expire on their own)
ROBOTS_WAIT = 0.2  # seconds between two looks for the robots.txt another member fetches
T = TypeVar("T")

_ACQUIRE = """
local held = redis.call('PTTL', KEYS[2])
if held > 0 then return held end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
"""
_RENEW_SLOTS = """
local now = redis.call('TIME')
local expiry = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', expiry, ARGV[i + 1]) == 1 then
    redis.call('PEXPIRE', key, ARGV[1])  -- (the set goes when its last slot lapses)
  end
end
"""
_HOLD = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
"""
_ROBOTS = """
local body = redis.call('GET', KEYS[1])
if body then return {'body', body} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {'fetch', ''} end
return {'wait', ''}
"""


class HostGate(Shared):
    """The deployment's Redis side of politeness (see the module's key layout). Each call
    answers None while Redis is unreachable."""

    def __init__(self, url: str, prefix: str) -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0),
                                          socket_connect_timeout=TIMEOUT)
        self.prefix = prefix
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._hold = self.redis.register_script(_HOLD)
        self._renew_slots = self.redis.register_script(_RENEW_SLOTS)
        self.slots: dict[str, str] = {}  # token → host: the slots this member holds
        self._robots = self.redis.register_script(_ROBOTS)
        self.down = False
        self.asked_after = 0.0  # (monotonic) while Redis is down: when to try it again
        self.unreleased: deque[tuple[str, str]] = deque(maxlen=UNRELEASED)  # slots to free

    def acquire(self, host: str, token: str, limit: int) -> int | None:
        """A slot for `token` → 0; ms the host is held for; -1: every slot is taken."""
        answer = self._ask(lambda: self._acquire(
            [f"{self.prefix}slots:{host}", f"{self.prefix}hold:{host}"],
            [token, limit, int(SLOT_LEASE * 1000)]))
        if answer == 0:
            self.slots[token] = host
        return answer

    def renew(self) -> None:
        """(Every RENEW_SLOTS.) The leases of the slots this member holds last SLOT_LEASE
        from now."""
        if self.slots:
            slots = list(self.slots.items())
            self._ask(lambda: self._renew_slots(
                [f"{self.prefix}slots:{host}" for _, host in slots],
                [int(SLOT_LEASE * 1000), *(token for token, _ in slots)]))

    def release(self, host: str, token: str) -> None:
        """Free a slot; one not freed while Redis does not answer is freed once it does."""
        self.slots.pop(token, None)
        self.unreleased.append((host, token))
        self._ask(lambda: None)

    def _release_all(self) -> None:
        if self.unreleased:
            with self.redis.pipeline(transaction=False) as pipe:
                for host, token in self.unreleased:
                    pipe.zrem(f"{self.prefix}slots:{host}", token)
                pipe.execute()
            self.unreleased.clear()

    def hold(self, host: str, until: datetime) -> None:
        """No member asks `host` before `until` (a later hold stays)."""
        ms = int(min(until - datetime.now(timezone.utc), MAX_HOLD).total_seconds() * 1000)
        if ms > 0:
            self._ask(lambda: self._hold([f"{self.prefix}hold:{host}"], [ms]))

    def robots(self, origin: str, lease: float) -> tuple[str, bytes] | None:
        """→ ('body', robots.txt), ('fetch', b'') when it is this member's to fetch, or
        ('wait', b'') while another member fetches it."""
        answer = self._ask(lambda: self._robots(
            [f"{self.prefix}robots:{origin}", f"{self.prefix}robots-fetch:{origin}"],
            [int(lease * 1000)]))
        return None if answer is None else (answer[0].decode(), answer[1])

    def fetched_robots(self, origin: str, body: bytes | None) -> None:
        """This member's fetch ended: share the body (None: it failed, another may try)."""
        def store() -> None:
            with self.redis.pipeline() as pipe:
                if body is not None:
                    pipe.set(f"{self.prefix}robots:{origin}", body, px=ROBOTS_TTL)
                pipe.delete(f"{self.prefix}robots-fetch:{origin}")
                pipe.execute()
        self._ask(store)

    def _ask(self, call: Callable[[], T]) -> T | None:
        if self.down and time.monotonic() < self.asked_after:
            return None
        try:
            self._release_all()
            answer = call()
        except redis.RedisError as exc:
            self.asked_after = time.monotonic() + DOWN_PAUSE
            if not self.down:
                self.down = True
                log.error("Redis is unreachable (%s): each member keeps to its own per-host "
                          "limits and robots.txt until it answers", type(exc).__name__)
            return None
        if self.down:
            self.down = False
            log.warning("Redis is back: per-host limits are shared again")
        return answer


def gate_of(crawler: Crawler) -> HostGate:
    gate = crawler.settings.get(GATE)
    if gate is None:
        raise NotConfigured
    return gate


def lease_of(crawler: Crawler) -> float:
    """Seconds a robots.txt fetch may take: its request waits in Scrapy's own per-host queue,
    maybe the throttle's delay once per slot, then its download's timeout."""
    settings = crawler.settings
    return settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") * \
        settings.getfloat("AUTOTHROTTLE_MAX_DELAY") + settings.getfloat("DOWNLOAD_TIMEOUT") + \
        LEASE_MARGIN


async def sleep(seconds: float) -> None:
    """Wait on the reactor without blocking it."""
    from twisted.internet import reactor  # the installed one (crawler.engine.reactor)

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))


class HostGateMiddleware:
    """At most `crawl.per_domain` requests in flight to one host across the deployment, and
    none while the host holds everyone off (Retry-After). Placed next to the download, so
    that robots.txt (fetched from the middleware before) takes a slot too, and a redirect or
    a retry takes a new one.

    A hold is waited out up to MAX_HOLD_WAIT; a longer one fails the request at once
    (HostHeld): a poll is deferred as if its own server had asked (SourceDeferred), a page
    is tried again at the next poll. Waiting requests fill the member's downloader, which
    other hosts' requests need too."""

    def __init__(self, gate: HostGate, limit: int) -> None:
        self.gate, self.limit = gate, limit
        self.renewing = LoopingCall(gate.renew)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostGateMiddleware:
        middleware = cls(gate_of(crawler),
                         crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"))
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def spider_opened(self) -> None:
        self.renewing.start(RENEW_SLOTS, now=False)

    def spider_closed(self) -> None:
        if self.renewing.running:
            self.renewing.stop()

    async def process_request(self, request: Request) -> None:
        host = urlparse_cached(request).hostname
        if not host:
            return
        token = uuid.uuid4().hex
        while (answer := self.gate.acquire(host, token, self.limit)) != 0:
            if answer is None:  # Redis is down: per process
                return
            if answer > MAX_HOLD_WAIT * 1000:
                raise HostHeld(host, datetime.now(timezone.utc) + timedelta(milliseconds=answer))
            await sleep(answer / 1000 if answer > 0 else SLOT_WAIT * (1 + random.random()))
        request.meta["hostgate"] = (host, token)

    def process_response(self, request: Request, response: Response) -> Response:
        self.release(request)
        if (until := asked_to_wait(response)) and (host := urlparse_cached(request).hostname):
            self.gate.hold(host, until)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self.release(request)

    def release(self, request: Request) -> None:
        if slot := request.meta.pop("hostgate", None):
            self.gate.release(*slot)


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's RobotsTxtMiddleware, whose robots.txt is fetched by one member for the whole
    deployment and shared for ROBOTS_TTL (read again here after as long)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.gate, self.lease = gate_of(crawler), lease_of(crawler)
        self.read_at: dict[str, float] = {}  # netloc → when its parser was made (monotonic)
        self.origins: dict[str, str] = {}  # netloc → scheme://netloc, of its robots.txt

    async def robot_parser(self, request: Request) -> RobotParser | None:
        url = urlparse_cached(request)
        netloc = url.netloc
        age = time.monotonic() - self.read_at.get(netloc, -inf)
        if netloc in self._parsers and age < ROBOTS_TTL.total_seconds():
            return await super().robot_parser(request)
        self.read_at[netloc] = time.monotonic()
        self.origins[netloc] = f"{url.scheme}://{netloc}"
        waiting: Deferred[RobotParser | None] = Deferred()
        self._parsers[netloc] = waiting  # this host's other requests wait for the parser
        body = await self.shared(self.origins[netloc])
        if body is None:  # this member's to fetch (Scrapy's way, then shared)
            del self._parsers[netloc]
            parser = await super().robot_parser(request)
        else:
            parser = self._parsers[netloc] = build_from_crawler(self._parserimpl, self.crawler,
                                                                body)
        waiting.callback(parser)
        return parser

    async def shared(self, origin: str) -> bytes | None:
        """The body another member fetched; None when this member fetches it (Redis down,
        or its fetch took longer than a lease: then it fetches its own)."""
        give_up = time.monotonic() + self.lease
        while (answer := self.gate.robots(origin, self.lease)) is not None:
            state, body = answer
            if state == "body":
                return body
            if state == "fetch" or time.monotonic() > give_up:
                return None
            await sleep(ROBOTS_WAIT)
        return None

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        # an error page (5xx) is used here, as Scrapy does, but not shared
        self.gate.fetched_robots(self.origins[netloc],
                                 response.body if response.status < 500 else None)
        await super()._parse_robots(response, netloc, request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        self.gate.fetched_robots(self.origins[netloc], None)
        super()._robots_error(exc, netloc)  # (its requests are held too)
        if isinstance(exc, HostHeld):  # not a robots.txt that failed: read it after the hold
            del self.read_at[netloc]

