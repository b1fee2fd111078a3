"""Many daemons, one deployment (`queue:` set, on PostgreSQL). Every `mediawatch run` on the
database is a member; the one whose dedicated connection holds the advisory lock leads: it
runs the schedule, and offers each due poll on a Redis stream instead of polling it itself.
Every member (the leader too) reads the stream through one consumer group and runs the polls
it takes; a poll whose member died (stopped renewing its lease) is claimed again (XAUTOCLAIM).

Redis keys, under a prefix of the PostgreSQL database (`queue_prefix`), so that two
deployments — or two tests, each on its own database — never share one:

    PREFIX polls          the stream: one entry per offered poll {name, due_at, deadline}
                          (epoch seconds), read by the group `members`
    PREFIX queued:NAME    set (NX) with the offer: no second offer while one waits or runs
    PREFIX lease:NAME     set (NX) by the member that polls, to the poll's token (member and
                          entry id): never two polls of one source. It lasts LEASE_TTL and
                          is renewed every RENEW_EVERY while the poll runs, however long; the
                          renewal also keeps the poll's entry fresh in the group, so only the
                          entries of a member that stopped renewing (dead, or cut from Redis)
                          are claimed again, after ORPHANED — by then its leases expired.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from spiders.items import SourceSpec

log = logging.getLogger("mediawatch.deployment")

GROUP = "members"
LOCK_EVERY = 2.0  # seconds: a member tries the lock, the leader pings its connection
READ_BLOCK = 1.0  # seconds an XREADGROUP waits for an entry
RECLAIM_EVERY = 2.0  # seconds between two looks for polls whose member died
RENEW_EVERY = 2.0  # seconds between two renewals of this member's leases and entries
LEASE_TTL = timedelta(seconds=10)  # a lease not renewed this long expires
ORPHANED = LEASE_TTL + timedelta(seconds=2)  # an entry not renewed this long is claimed again
OFFER_TTL = 3 * ORPHANED  # an offer blocks the next this long at most (normally until its
# poll ends): a poll whose member died is reclaimed before the schedule offers it again
MAX_BACKOFF = 5.0  # seconds between two tries while Redis is down
GONE_AFTER = timedelta(minutes=10)  # a member silent this long, holding nothing, has left
# The lock connection dies fast with its leader: the server probes an idle client after
# 3 s (then every 2 s, 3 times), the client likewise, and on both sides a send still
# unacknowledged after 10 s ends it (a cut that falls while an answer is on its way would
# otherwise wait out TCP's retransmissions: many minutes).
LOCK_CONNECT_ARGS: dict[str, Any] = {
    "options": "-c tcp_keepalives_idle=3 -c tcp_keepalives_interval=2 "
               "-c tcp_keepalives_count=3 -c tcp_user_timeout=10000",
    "keepalives": 1, "keepalives_idle": 3, "keepalives_interval": 2, "keepalives_count": 3,
    "tcp_user_timeout": 10_000, "connect_timeout": 5}

_OFFER = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  local now = redis.call('TIME')  -- the server's clock: members' clocks may differ
  local oldest = now[1] * 1000 + math.floor(now[2] / 1000) - 2 * ARGV[1]
  return redis.call('XADD', KEYS[2], 'MINID', '~', oldest, '*',
                    'name', ARGV[2], 'due_at', ARGV[3], 'deadline', ARGV[4])
end
return false
"""
_RENEW = """
local lost, claim = {}, {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
for i = 2, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder == ARGV[2 + i] or not holder then  -- lapsed (Redis was away): taken again
    redis.call('SET', KEYS[i], ARGV[2 + i], 'PX', ARGV[3])
    table.insert(claim, ARGV[2 + #KEYS + i - 1])  -- its entry: idle from now
  else
    table.insert(lost, KEYS[i])
  end
end
if #claim > 5 then
  table.insert(claim, 'JUSTID')
  redis.call(unpack(claim))
end
return lost
"""


_FINISH = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '' then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return redis.call('DEL', KEYS[3])
"""


def queue_prefix(database_url: str) -> str:
    """`mediawatch:HOST:PORT:DB:`: the deployment's keys, from its PostgreSQL database."""
    url = make_url(database_url)
    return f"mediawatch:{url.host or 'localhost'}:{url.port or 5432}:{url.database}:"


def member_name() -> str:
    """This process in the consumer group and in leases: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Outage:
    """Logs a dependency's outage once when it starts and once when it ends, not per try."""

    def __init__(self, what: str, consequence: str) -> None:
        self.what, self.consequence = what, consequence
        self.down = False
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            first, self.down = not self.down, True
        if first:
            log.error("%s is unreachable (%s): %s", self.what,
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                      self.consequence)

    def ok(self) -> None:
        with self._lock:
            was, self.down = self.down, False
        if was:
            log.warning("%s is back", self.what)


# ---------------------------------------------------------------- leadership

class Leadership:
    """Who leads: the member whose own connection holds `pg_try_advisory_lock(key)`. A
    thread tries the lock every LOCK_EVERY seconds; the leader pings its connection as
    often and steps down at the first failure (`on_step_down`), then tries again. When
    the leader dies its connection closes (or, machine gone, the server's keepalives cut
    it within ~9 s) and the lock is free for the next try of another member."""

    def __init__(self, url: str, key: int, on_lead: Callable[[], None],
                 on_step_down: Callable[[], None], every: float = LOCK_EVERY) -> None:
        self.engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                                    connect_args=LOCK_CONNECT_ARGS)
        self.key, self.every = key, every
        self.on_lead, self.on_step_down = on_lead, on_step_down
        self.leader = False
        self.outage = Outage("the database (leader election)",
                             "this member cannot lead until it answers")
        self._connection: Connection | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Release the lock (by closing its connection) soon: another member takes over."""
        self._stopping.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
                self.outage.ok()
            except Exception as exc:  # noqa: BLE001 — whatever breaks the lock's upkeep ends
                self._lost(exc)  # the leadership: a silent thread would lead forever
            self._stopping.wait(self.every)
        self._close()

    def _tick(self) -> None:
        if self._connection is None:
            self._connection = self.engine.connect()
        if self.leader:
            self._connection.exec_driver_sql("select 1")
        elif self._connection.scalar(text("select pg_try_advisory_lock(:key)"),
                                     {"key": self.key}):
            self.leader = True
            self.on_lead()

    def _lost(self, exc: Exception) -> None:
        self._close()
        if self.leader:
            self.leader = False
            log.error("the leader's lock connection failed: stepping down (%s)",
                      (str(exc) or type(exc).__name__).splitlines()[0])
            self.on_step_down()
        else:
            self.outage.failed(exc)

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()  # closed, never back to a pool
            except SQLAlchemyError:
                pass
            self._connection = None
        self.engine.dispose()


# ---------------------------------------------------------------- the queue

@dataclass(frozen=True)
class Offer:
    """One stream entry: a poll of `name` offered at `due_at`."""

    id: str
    name: str
    due_at: datetime
    reclaimed: bool = False


class PollQueue:
    """The deployment's Redis side (see the module's key layout); every call may raise
    `redis.RedisError`."""

    def __init__(self, url: str, prefix: str, member: str) -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                          socket_connect_timeout=3, health_check_interval=5)
        self.prefix, self.member = prefix, member
        self.stream = f"{prefix}polls"
        self._offer = self.redis.register_script(_OFFER)
        self._finish = self.redis.register_script(_FINISH)
        self._renew = self.redis.register_script(_RENEW)
        self.cursor = "0-0"  # where the next XAUTOCLAIM looks

    def queued_key(self, name: str) -> str:
        return f"{self.prefix}queued:{name}"

    def lease_key(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def offer(self, name: str, ttl: timedelta = OFFER_TTL) -> bool:
        """Offer a poll of `name` unless one is queued or running. Entries older than
        twice `ttl` are trimmed: their polls ran, or were offered again since."""
        now = time.time()
        return bool(self._offer(keys=[self.queued_key(name), self.stream],
                                args=[_ms(ttl), name, f"{now:.3f}",
                                      f"{now + ttl.total_seconds():.3f}"]))

    def read(self, count: int, block: float = READ_BLOCK) -> list[Offer]:
        """Up to `count` new entries for this member, waiting up to `block` seconds."""
        found = self.redis.xreadgroup(GROUP, self.member, {self.stream: ">"}, count=count,
                                      block=int(block * 1000))
        return [offer for _, entries in found or [] for offer in _offers(entries, False)]

    def reclaim(self, idle: timedelta, count: int) -> list[Offer]:
        """Up to `count` entries delivered longer than `idle` ago and never acknowledged
        (their member died or lost Redis), now this member's."""
        cursor, entries, *_ = self.redis.xautoclaim(self.stream, GROUP, self.member,
                                                    min_idle_time=_ms(idle),
                                                    start_id=self.cursor, count=count)
        self.cursor = cursor
        return _offers(entries, True)

    def forget_gone(self, idle: timedelta = GONE_AFTER) -> None:
        """Drop from the group the members that hold no poll and have not read for `idle`
        (a live member reads every second): each start joins under a new name."""
        for consumer in self.redis.xinfo_consumers(self.stream, GROUP):
            if consumer["pending"] == 0 and consumer["idle"] > _ms(idle) \
                    and consumer["name"] != self.member:
                self.redis.xgroup_delconsumer(self.stream, GROUP, consumer["name"])

    def token(self, offer: Offer) -> str:
        """Whose lease: this member, for the poll of this entry."""
        return f"{self.member}|{offer.id}"

    def lease(self, offer: Offer) -> bool:
        return bool(self.redis.set(self.lease_key(offer.name), self.token(offer), nx=True,
                                   px=_ms(LEASE_TTL)))

    def renew(self, offers: list[Offer]) -> list[str]:
        """Renew the leases of these running polls (one that lapsed while Redis was away is
        taken again) and keep their entries fresh. → the sources whose lease another poll
        took meanwhile"""
        if not offers:
            return []
        lost = self._renew(keys=[self.stream, *(self.lease_key(o.name) for o in offers)],
                           args=[GROUP, self.member, _ms(LEASE_TTL),
                                 *(self.token(o) for o in offers), *(o.id for o in offers)])
        return [key.removeprefix(self.lease_key("")) for key in lost]

    def finish(self, offer: Offer, leased: bool) -> None:
        """Acknowledge the entry; a leased poll also releases its lease (if still this
        poll's) and lets the source be offered again. (One script: one round trip.)"""
        self._finish(keys=[self.stream, self.lease_key(offer.name), self.queued_key(offer.name)],
                     args=[GROUP, offer.id, self.token(offer) if leased else ""])

    def depth(self) -> int:
        """Entries not yet delivered plus those delivered and not yet acknowledged."""
        for group in self.redis.xinfo_groups(self.stream):
            if group["name"] == GROUP:
                lag = group.get("lag")
                return int(lag if lag is not None else self.redis.xlen(self.stream)) + \
                    int(group["pending"])
        return 0

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False


def _ms(duration: timedelta) -> int:
    return int(duration.total_seconds() * 1000)


def _offers(entries: list[Any], reclaimed: bool) -> list[Offer]:
    return [Offer(entry_id, fields["name"],
                  datetime.fromtimestamp(float(fields["due_at"]), timezone.utc), reclaimed)
            for entry_id, fields in entries if fields]  # (a trimmed entry has none)


class Consumer:
    """This member's share of the stream, read in its own thread (never the reactor's):
    new entries up to the free poll `slots`, and every RECLAIM_EVERY seconds the orphaned
    ones. `take(offer)` is called for each (in this thread) and returns whether the poll
    started; `done(offer)` must be called when a started poll ends: it frees the slot,
    acknowledges the entry and releases the lease — or, Redis unreachable, leaves that to
    the upkeep. The upkeep, a thread of its own (a slow `take` must not hold it up), renews
    the leases of the polls running every RENEW_EVERY seconds, and goes on after `stop`
    until the last of them is done. While Redis is down, both wait and log once."""

    def __init__(self, queue: PollQueue, slots: int, take: Callable[[Offer], bool]) -> None:
        self.queue, self.slots, self.take = queue, slots, take
        self.outage = Outage("the queue (Redis)", "polls pause until it is back")
        self.held: dict[str, Offer] = {}  # entry id → a poll started and not yet done
        self.unfinished: list[Offer] = []  # polls done, their entry not yet acknowledged
        self._room = threading.Condition()
        self._stopping = threading.Event()
        self._grouped = False
        self._next_reclaim = 0.0
        self._threads = [threading.Thread(target=self._run, name="poll-consumer", daemon=True),
                         threading.Thread(target=self._keep_up, name="poll-leases",
                                          daemon=True)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Take no more polls; the leases of those running are kept until they end."""
        self._stopping.set()
        with self._room:
            self._room.notify_all()

    def done(self, offer: Offer) -> None:
        """(Any thread.) The poll of `offer` ended."""
        with self._room:
            self.held.pop(offer.id, None)
            self._room.notify_all()
        try:
            self.queue.finish(offer, leased=True)
        except redis.RedisError as exc:
            self.outage.failed(exc)
            with self._room:
                self.unfinished.append(offer)

    def _run(self) -> None:
        wait = 0.5
        while not self._stopping.is_set():
            try:
                self._step()
                self.outage.ok()
                wait = 0.5
            except redis.RedisError as exc:
                self._grouped = False  # a Redis restarted without its data lost the group
                if isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc):
                    continue
                self.outage.failed(exc)
                self._stopping.wait(wait)
                wait = min(wait * 2, MAX_BACKOFF)
            except Exception:  # noqa: BLE001 — one bad entry must not end this member's polls
                log.exception("the poll consumer failed; it goes on")
                self._stopping.wait(wait)

    def _step(self) -> None:
        if not self._grouped:
            self.queue.ensure_group()
            self._grouped = True
        if time.monotonic() >= self._next_reclaim and self._free():
            self._next_reclaim = time.monotonic() + RECLAIM_EVERY
            self._take_all(self.queue.reclaim(ORPHANED, self._free()))
            self.queue.forget_gone()
        free = self._free()
        if free:
            self._take_all(self.queue.read(free))
        else:
            with self._room:
                self._room.wait(READ_BLOCK)

    def _keep_up(self) -> None:
        """(The upkeep thread.) Until stopped with nothing left to renew or acknowledge."""
        while True:
            with self._room:
                if self._stopping.is_set() and not self.held and not self.unfinished:
                    return
            try:
                self._upkeep()
            except redis.RedisError as exc:
                self.outage.failed(exc)
            except Exception:  # noqa: BLE001 — the leases must go on being renewed
                log.exception("renewing the poll leases failed; it goes on")
            time.sleep(RENEW_EVERY)

    def _upkeep(self) -> None:
        """Acknowledge the polls that ended while Redis was unreachable; renew the leases."""
        with self._room:
            unfinished, self.unfinished = self.unfinished, []
        for n, offer in enumerate(unfinished):
            try:
                self.queue.finish(offer, leased=True)
            except redis.RedisError:
                with self._room:
                    self.unfinished.extend(unfinished[n:])
                raise
        with self._room:
            held = list(self.held.values())
        for name in self.queue.renew(held):
            log.error("%s: another member took the lease of the poll running here (Redis "
                      "was unreachable for longer than a lease): both may poll it now", name)

    def _free(self) -> int:
        with self._room:
            return max(self.slots - len(self.held), 0)

    def _take_all(self, offers: list[Offer]) -> None:
        for offer in offers:
            with self._room:
                if offer.id in self.held:  # its own entry, reclaimed: the poll runs here
                    continue
                self.held[offer.id] = offer
            started = False
            try:
                started = self.take(offer)
            finally:
                if not started:
                    with self._room:
                        self.held.pop(offer.id, None)


# ---------------------------------------------------------------- this member

class Member:
    """This daemon in its deployment: leadership, the queue and its consumer. The daemon
    gives `prepare(name, offered_at)` (a thread: the poll's spec, or None when the source
    is unknown here, held back by backoff or Retry-After, or polled since the offer) and
    `launch(spec)` (the reactor: a Deferred that fires when the poll has ended and its
    crawl-run row is written, or None if not started); `claimed(reclaimed)` counts each
    poll it starts."""

    def __init__(self, queue_url: str, database_url: str, lock_key: int, slots: int,
                 reactor: Any, claimed: Callable[[bool], None],
                 prepare: Callable[[str, datetime], SourceSpec | None],
                 launch: Callable[[SourceSpec], Deferred[Any] | None],
                 on_lead: Callable[[], None], on_step_down: Callable[[], None]) -> None:
        self.name = member_name()
        self.queue = PollQueue(queue_url, queue_prefix(database_url), self.name)
        self.reactor, self.claimed = reactor, claimed
        self.prepare, self.launch = prepare, launch
        self.consumer = Consumer(self.queue, slots, self.take)
        self.outage = self.consumer.outage  # one log line per outage, offers included
        self.leadership = Leadership(database_url, lock_key,
                                     lambda: reactor.callFromThread(on_lead),
                                     lambda: reactor.callFromThread(on_step_down))

    def start(self) -> None:
        """Join: elect (at once) and take polls (call once the crawler can run them)."""
        self.leadership.start()

    def start_polling(self) -> None:
        self.consumer.start()

    def stop(self) -> None:
        self.consumer.stop()
        self.leadership.stop()

    def offer(self, name: str) -> None:
        """(The leader, a pool thread.) A due poll of `name`, for whichever member takes
        it; skipped if one is queued or running, and while Redis is down (the schedule
        offers it again at its next run)."""
        try:
            self.queue.offer(name)
        except redis.RedisError as exc:
            self.outage.failed(exc)

    def take(self, offer: Offer) -> bool:
        """(The consumer's thread.) Lease the source and start its poll; an entry whose
        source is leased (polled elsewhere) or needs no poll is acknowledged and dropped."""
        if not self.queue.lease(offer):
            self.queue.finish(offer, leased=False)
            return False
        try:
            spec = self.prepare(offer.name, offer.due_at)
        except Exception:  # noqa: BLE001 — the schedule offers it again
            log.exception("%s: poll not started", offer.name)
            spec = None
        if spec is None:
            self.queue.finish(offer, leased=True)
            return False
        if offer.reclaimed:
            log.warning("%s: poll reclaimed from a member that did not finish it", offer.name)
        self.claimed(offer.reclaimed)
        self.reactor.callFromThread(self._launch, spec, offer)
        return True

    def _launch(self, spec: SourceSpec, offer: Offer) -> None:
        """(The reactor.)"""
        try:
            ended = self.launch(spec)
        except Exception:  # noqa: BLE001 — its lease must not be renewed forever
            log.exception("%s: poll not started", offer.name)
            ended = None
        if ended is None:
            deferToThread(self.consumer.done, offer)
        else:
            ended.addBoth(self._ended, offer)

    def _ended(self, result: Any, offer: Offer) -> Any:
        deferToThread(self.consumer.done, offer)
        return result
