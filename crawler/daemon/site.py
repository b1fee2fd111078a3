"""The daemon's HTTP side, a Twisted resource tree: `/healthz` and `/metrics`, and every other
path to the reading room (crawler.daemon.web: pages and topic feeds), a WSGI application
run in the reactor's thread pool. Database work never runs on the reactor thread. The
pages are served on loopback, or anywhere once `web.token` is set; until then a daemon
listening beyond loopback serves only `/healthz` and `/metrics`."""
from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.wsgi import WSGIResource

from basis.dates import iso
from basis.errors import UsageError
from crawler.config import Config
from crawler.daemon.metrics import CONTENT_TYPE, Metrics
from crawler.daemon.web import ReadingRoom, is_loopback
from crawler.engine.reactor import install

log = logging.getLogger(__name__)

DATABASE_TIMEOUT = 5.0  # seconds /healthz waits for `SELECT 1`
JSON = "application/json"
_ADDRESS = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})")

Reply = tuple[int, str, bytes]  # status, content type, body


def site(db: sessionmaker[Session], config: Callable[[], Config], metrics: Metrics,
         scheduler_alive: Callable[[], bool], loopback: bool,
         role: Callable[[], str] = lambda: "leader",
         redis_alive: Callable[[], bool] | None = None) -> Site:
    """The resource tree the daemon serves (`scheduler_alive` and `role` are called on the
    reactor, `redis_alive` — a daemon with `queue` — in a thread); `config` gives the
    running config at each request, so a reload's topics and token are seen at once;
    `loopback`: whether it listens on this machine only."""
    from twisted.internet import reactor  # the daemon's, installed before we are called

    root = _Root(WSGIResource(reactor, reactor.getThreadPool(), ReadingRoom(db, config)),
                 lambda: loopback or config().web.token is not None)
    root.putChild(b"healthz", _Health(db, scheduler_alive, role, redis_alive))
    root.putChild(b"metrics", _Metrics(metrics))
    return _QuietSite(root)


def serve_web(config: Config, db: sessionmaker[Session], address: str) -> None:
    """`mediawatch web`: the reading room alone, until SIGTERM or SIGINT. Beyond loopback
    only with `web.token`."""
    host, _ = parse_address(address)
    if not is_loopback(host) and config.web.token is None:
        raise UsageError(f"refusing to serve the web pages on {address}, beyond loopback, "
                         "without web.token: set it in the config from the environment "
                         "(token: \"${MEDIAWATCH_WEB_TOKEN}\"), or listen on 127.0.0.1")
    reactor = install()
    room = WSGIResource(reactor, reactor.getThreadPool(), ReadingRoom(db, lambda: config))
    port = listen(reactor, _QuietSite(_Root(room, lambda: True)), address)
    bound = port.getHost()
    log.info("the reading room on http://%s:%d/ (Ctrl-C stops it)",
             f"[{bound.host}]" if ":" in bound.host else bound.host, bound.port)
    reactor.run()


def listen(reactor: IReactorTCP, site: Site, address: str) -> IListeningPort:
    """Serve `site` on `HOST:PORT` (`[::1]:8787` for IPv6; port 0 picks a free one)."""
    host, port = parse_address(address)
    return reactor.listenTCP(port, site, interface=host)


def parse_address(address: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPV6]:PORT` → (host, port); a ValueError that says what is wrong."""
    found = _ADDRESS.fullmatch(address.strip())
    if found is None:
        raise ValueError(f"invalid listen address {address!r}: use HOST:PORT, e.g. "
                         "127.0.0.1:8787 or [::1]:8787")
    port = int(found["port"])
    if port > 65535:
        raise ValueError(f"invalid listen address {address!r}: port {port} is above 65535")
    if found["v6"] is None:
        return found["host"], port
    try:
        ipaddress.IPv6Address(found["v6"])
    except ValueError:
        raise ValueError(f"invalid listen address {address!r}: {found['v6']!r} is not an "
                         "IPv6 address") from None
    return found["v6"], port


class _QuietSite(Site):
    """Probes and scrapes come every few seconds: their access log is debug output."""

    noisy = False

    def log(self, request: Request) -> None:
        log.debug("%s %s %s", request.method.decode(), request.uri.decode("latin-1"),
                  request.code)


# ---------------------------------------------------------------- plumbing

class _Page(Resource):
    """Only its own children: any other path below it is 404, and so is itself unless a
    subclass renders it."""

    def getChild(self, path: bytes, request: Request) -> Resource:
        return _NotFound()

    def render_GET(self, request: Request) -> bytes | int:
        return _write(request, _error(404, "not found"))


class _Root(_Page):
    """Its own children (health, metrics), else the reading room while `pages()` allows."""

    def __init__(self, room: WSGIResource, pages: Callable[[], bool]) -> None:
        super().__init__()
        self.room, self.pages = room, pages

    def getChild(self, path: bytes, request: Request) -> Resource:
        if not self.pages():
            return _NotFound("the web pages are served beyond loopback only with web.token "
                             "set (see the README, \"The reading room\")")
        request.postpath.insert(0, request.prepath.pop())  # the room sees the whole path
        return self.room


class _NotFound(_Page):
    def __init__(self, message: str = "not found") -> None:
        super().__init__()
        self.message = message

    def getChild(self, path: bytes, request: Request) -> Resource:
        return self  # the same answer all the way down

    def render(self, request: Request) -> bytes:
        return _write(request, _error(404, self.message))


def _error(code: int, message: str) -> Reply:
    return _json(code, {"error": message})


def _json(code: int, document: Any) -> Reply:
    return code, JSON, json.dumps(document, indent=1, default=iso).encode() + b"\n"


def _write(request: Request, reply: Reply) -> bytes:
    code, content_type, body = reply
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", content_type.encode())
    request.setHeader(b"Cache-Control", b"no-store")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    return body


def _answer(request: Request, reply: Deferred[Reply]) -> int:
    """Answer with `reply` when it fires (a 500 if it fails), unless the client has gone."""
    gone: list[bool] = []
    request.notifyFinish().addErrback(lambda _: gone.append(True))

    def failed(failure: Failure) -> Reply:
        log.error("%s failed: %s", request.uri.decode("latin-1"), failure.getErrorMessage(),
                  exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        return _error(500, "internal error")

    def finish(answer: Reply) -> None:
        if not gone:
            request.write(_write(request, answer))
            request.finish()

    reply.addErrback(failed).addCallback(finish)
    return NOT_DONE_YET


# ---------------------------------------------------------------- /healthz and /metrics

class _Health(_Page):
    def __init__(self, db: sessionmaker[Session], scheduler_alive: Callable[[], bool],
                 role: Callable[[], str], redis_alive: Callable[[], bool] | None) -> None:
        super().__init__()
        self.db, self.scheduler_alive = db, scheduler_alive
        self.role, self.redis_alive = role, redis_alive

    def render_GET(self, request: Request) -> int:
        from twisted.internet import reactor  # the daemon's, installed before we are called

        try:
            scheduler = bool(self.scheduler_alive())
        except Exception:  # noqa: BLE001 — a broken probe is a dead scheduler
            log.exception("health: the scheduler probe failed")
            scheduler = False
        database: Deferred[Any] = deferToThread(self.ping)
        database.addTimeout(DATABASE_TIMEOUT, reactor)
        database.addCallbacks(lambda _: True, self.unreachable)
        checks = [database]
        if self.redis_alive is not None:
            redis = deferToThread(self.redis_alive)
            redis.addTimeout(DATABASE_TIMEOUT, reactor)  # the pool may be stuck on the database
            checks.append(redis.addErrback(lambda _: False))
        role = self.role()
        return _answer(request, gatherResults(checks).addCallback(
            lambda up: _health(role, scheduler=scheduler, database=up[0],
                               **({"redis": up[1]} if len(up) > 1 else {}))))

    def ping(self) -> None:
        with self.db() as session:
            session.execute(text("SELECT 1"))

    def unreachable(self, failure: Failure) -> bool:
        log.warning("health: database unreachable: %s",
                    (failure.getErrorMessage() or failure.type.__name__).splitlines()[0])
        return False


def _health(role: str, **parts: bool) -> Reply:
    failing = [name for name, ok in parts.items() if not ok]
    document: dict[str, Any] = {"status": "failing" if failing else "ok", "role": role,
                                **parts}
    if failing:
        document["failing"] = failing
    return _json(503 if failing else 200, document)


class _Metrics(_Page):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def render_GET(self, request: Request) -> int:
        self.metrics.sample()  # on the reactor thread, where the scheduler's state lives
        return _answer(request, deferToThread(
            lambda: (200, CONTENT_TYPE, self.metrics.render())))
