"""Many daemons, one deployment (`queue:` set, on PostgreSQL). Every `mediawatch run` on the
database is a member; the one whose dedicated connection holds the advisory lock leads: it
runs the schedule, and offers each due poll on a Redis stream instead of polling it itself.
Every member (the leader too) reads the stream through one consumer group and runs the polls
it takes; a poll whose member died is claimed again (XAUTOCLAIM) once its deadline passed.

Redis keys, under a prefix of the PostgreSQL database (`queue_prefix`), so that two
deployments — or two tests, each on its own database — never share one:

    PREFIX polls          the stream: one entry per offered poll {name, due_at, deadline}
                          (epoch seconds), read by the group `members`
    PREFIX queued:NAME    set (NX) with the offer: no second offer while one waits or runs
    PREFIX lease:NAME     set (NX) by the member that polls: never two polls of one source
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
MARGIN = timedelta(seconds=5)  # past `crawl.poll_deadline`: a poll still pending is orphaned
# (its lease expires a little before, and a poll's end waits less than that for its row:
# service.ROW_GRACE); an offer blocks the next for 3 margins: a poll whose member died is
# reclaimed before the schedule offers it again
MAX_BACKOFF = 5.0  # seconds between two tries while Redis is down
GONE_AFTER = timedelta(minutes=10)  # a member silent this long, holding nothing, has left
# The lock connection dies fast with its leader: the server probes an idle client after
# 5 s (then every 2 s, 3 times), the client likewise, and unacknowledged sends time out.
LOCK_CONNECT_ARGS: dict[str, Any] = {
    "options": "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 "
               "-c tcp_keepalives_count=3",
    "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
    "tcp_user_timeout": 10_000, "connect_timeout": 5}

_OFFER = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[2], '*',
                    'name', ARGV[3], 'due_at', ARGV[4], 'deadline', ARGV[5])
end
return false
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
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
    it within ~11 s) and the lock is free for the next try of another member."""

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
        self._release = self.redis.register_script(_RELEASE)
        self._extend = self.redis.register_script(_EXTEND)
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

    def offer(self, name: str, ttl: timedelta) -> bool:
        """Offer a poll of `name` unless one is queued or running. Entries older than
        twice `ttl` are trimmed: their polls ran, or were offered again since."""
        now = time.time()
        oldest = int((now - 2 * ttl.total_seconds()) * 1000)
        return bool(self._offer(keys=[self.queued_key(name), self.stream],
                                args=[_ms(ttl), oldest, name, f"{now:.3f}",
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

    def lease(self, name: str, ttl: timedelta) -> bool:
        return bool(self.redis.set(self.lease_key(name), self.member, nx=True, px=_ms(ttl)))

    def extend(self, name: str, ttl: timedelta) -> None:
        """The lease of `name`, if still this member's, lasts `ttl` from now."""
        self._extend(keys=[self.lease_key(name)], args=[self.member, _ms(ttl)])

    def finish(self, offer: Offer, leased: bool) -> None:
        """Acknowledge the entry; a leased poll also releases its lease (if still this
        member's) and lets the source be offered again."""
        with self.redis.pipeline() as pipe:
            pipe.xack(self.stream, GROUP, offer.id)
            if leased:
                self._release(keys=[self.lease_key(offer.name)], args=[self.member],
                              client=pipe)
                pipe.delete(self.queued_key(offer.name))
            pipe.execute()

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
    started; `done()` must be called when a started poll ends, freeing its slot. While
    Redis is down, it waits (backing off) and logs once."""

    def __init__(self, queue: PollQueue, slots: int, take: Callable[[Offer], bool],
                 orphaned_after: Callable[[], timedelta]) -> None:
        self.queue, self.slots, self.take = queue, slots, take
        self.orphaned_after = orphaned_after
        self.outage = Outage("the queue (Redis)", "polls pause until it is back")
        self.running = 0  # polls started and not yet done
        self._room = threading.Condition()
        self._stopping = threading.Event()
        self._grouped = False
        self._next_reclaim = 0.0
        self._thread = threading.Thread(target=self._run, name="poll-consumer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._room:
            self._room.notify_all()

    def done(self) -> None:
        with self._room:
            self.running -= 1
            self._room.notify_all()

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
            self._take_all(self.queue.reclaim(self.orphaned_after(), self._free()))
            self.queue.forget_gone()
        free = self._free()
        if free:
            self._take_all(self.queue.read(free))
        else:
            with self._room:
                self._room.wait(READ_BLOCK)

    def _free(self) -> int:
        with self._room:
            return max(self.slots - self.running, 0)

    def _take_all(self, offers: list[Offer]) -> None:
        for offer in offers:
            with self._room:
                self.running += 1
            started = False
            try:
                started = self.take(offer)
            finally:
                if not started:
                    self.done()


# ---------------------------------------------------------------- this member

class Member:
    """This daemon in its deployment: leadership, the queue and its consumer. The daemon
    gives `prepare(name, offered_at)` (a thread: the poll's spec, or None when the source
    is unknown here, held back by backoff or Retry-After, or polled since the offer) and
    `launch(spec)` (the reactor: the poll's `done` Deferred, or None if not started);
    `claimed(reclaimed)` counts each poll it starts."""

    def __init__(self, queue_url: str, database_url: str, lock_key: int, slots: int,
                 poll_deadline: Callable[[], timedelta], reactor: Any,
                 claimed: Callable[[bool], None],
                 prepare: Callable[[str, datetime], SourceSpec | None],
                 launch: Callable[[SourceSpec], Deferred[Any] | None],
                 on_lead: Callable[[], None], on_step_down: Callable[[], None]) -> None:
        self.name = member_name()
        self.queue = PollQueue(queue_url, queue_prefix(database_url), self.name)
        self.poll_deadline, self.reactor, self.claimed = poll_deadline, reactor, claimed
        self.prepare, self.launch = prepare, launch
        self.consumer = Consumer(self.queue, slots, self.take,
                                 lambda: poll_deadline() + MARGIN)
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
            self.queue.offer(name, self.poll_deadline() + 3 * MARGIN)
        except redis.RedisError as exc:
            self.outage.failed(exc)

    def take(self, offer: Offer) -> bool:
        """(The consumer's thread.) Lease the source and start its poll; an entry whose
        source is leased (polled elsewhere) or needs no poll is acknowledged and dropped."""
        if not self.queue.lease(offer.name, self.poll_deadline() + MARGIN * 0.9):
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

    def extend(self, name: str) -> None:
        """(A pool thread.) A poll given up at its deadline may still run: its lease lasts
        one more deadline (meanwhile a member that reclaims its entry finds it leased)."""
        try:
            self.queue.extend(name, self.poll_deadline() + MARGIN * 0.9)
        except redis.RedisError as exc:
            self.outage.failed(exc)

    def _launch(self, spec: SourceSpec, offer: Offer) -> None:
        """(The reactor.)"""
        done = self.launch(spec)
        if done is None:
            deferToThread(self._finish, offer)
        else:
            done.addBoth(self._ended, offer)

    def _ended(self, result: Any, offer: Offer) -> Any:
        deferToThread(self._finish, offer)
        return result

    def _finish(self, offer: Offer) -> None:
        """(A pool thread.) An entry not acknowledged (Redis down) is reclaimed later, and
        dropped then: its source was polled since."""
        try:
            self.queue.finish(offer, leased=True)
        except redis.RedisError as exc:
            self.outage.failed(exc)
        finally:
            self.consumer.done()
