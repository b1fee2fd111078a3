"""The daemon's HTTP side, a Twisted resource tree: `/healthz`, `/metrics` and per-topic
feeds of matches (`/topics/NAME.atom`, `/topics/NAME.json`). Database work runs in the
reactor's thread pool, never on the reactor thread; anything else is a JSON 404."""
from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from feedgen.feed import FeedGenerator
from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload, sessionmaker
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from basis.clock import utcnow
from basis.dates import iso
from basis.urls import safe_url
from basis.xml import xml_text
from crawler.config import Config, Topic
from crawler.daemon.metrics import CONTENT_TYPE, Metrics
from storage.models import Article, Sighting, TopicMatch

log = logging.getLogger(__name__)

FEED_SIZE = 50
DATABASE_TIMEOUT = 5.0  # seconds /healthz waits for `SELECT 1`
JSON = "application/json"
ATOM = "application/atom+xml; charset=utf-8"
_FEED = re.compile(rb"([a-z0-9-]+)\.(atom|json)")
_ADDRESS = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})")

Reply = tuple[int, str, bytes]  # status, content type, body


def site(db: sessionmaker[Session], config: Callable[[], Config], metrics: Metrics,
         scheduler_alive: Callable[[], bool]) -> Site:
    """The resource tree the daemon serves (`scheduler_alive` is called on the reactor);
    `config` gives the running config at each request, so a reload's topics are served."""
    root = _Page()
    root.putChild(b"healthz", _Health(db, scheduler_alive))
    root.putChild(b"metrics", _Metrics(metrics))
    root.putChild(b"topics", _Topics(db, config))
    return _QuietSite(root)


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


class _NotFound(_Page):
    def __init__(self, message: str = "not found") -> None:
        super().__init__()
        self.message = message

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
    def __init__(self, db: sessionmaker[Session], scheduler_alive: Callable[[], bool]) -> None:
        super().__init__()
        self.db, self.scheduler_alive = db, scheduler_alive

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
        return _answer(request, database.addCallback(
            lambda up: _health(scheduler=scheduler, database=up)))

    def ping(self) -> None:
        with self.db() as session:
            session.execute(text("SELECT 1"))

    def unreachable(self, failure: Failure) -> bool:
        log.warning("health: database unreachable: %s",
                    (failure.getErrorMessage() or failure.type.__name__).splitlines()[0])
        return False


def _health(**parts: bool) -> Reply:
    failing = [name for name, ok in parts.items() if not ok]
    document: dict[str, Any] = {"status": "failing" if failing else "ok", **parts}
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


# ---------------------------------------------------------------- /topics/NAME.{atom,json}

class _Topics(_Page):
    def __init__(self, db: sessionmaker[Session], config: Callable[[], Config]) -> None:
        super().__init__()
        self.db, self.config = db, config

    def getChild(self, path: bytes, request: Request) -> Resource:
        found = _FEED.fullmatch(path)
        topic = next((t for t in self.config().topics if t.name == found[1].decode()),
                     None) if found else None
        if found is None or topic is None:
            return _NotFound("no such topic: feeds are /topics/NAME.atom and "
                             "/topics/NAME.json for the topics in the config")
        return _TopicFeed(self.db, topic, found[2].decode())


class _TopicFeed(_Page):
    def __init__(self, db: sessionmaker[Session], topic: Topic, kind: str) -> None:
        super().__init__()
        self.db, self.topic, self.kind = db, topic, kind

    def render_GET(self, request: Request) -> int:
        return _answer(request, deferToThread(self.reply))

    def reply(self) -> Reply:
        with self.db() as session:
            entries = topic_entries(session, self.topic.name)
        if self.kind == "atom":
            return 200, ATOM, atom_feed(self.topic, entries)
        return _json(200, {"topic": self.topic.name, "query": self.topic.query,
                           "matches": entries})


def topic_entries(session: Session, topic: str, limit: int = FEED_SIZE) -> list[dict[str, Any]]:
    """The latest matches of a topic, one per original article, newest first."""
    rows = session.execute(
        select(Article, TopicMatch.highlights).join(TopicMatch)
        .where(TopicMatch.topic == topic, Article.duplicate_of.is_(None))
        .options(selectinload(Article.source),
                 selectinload(Article.sightings).selectinload(Sighting.source))
        .order_by(Article.first_seen_at.desc(), Article.id.desc()).limit(limit))
    return [{
        "story_id": article.story_id,
        "article_id": article.id,
        "title": article.title,
        "canonical_url": article.canonical_url,
        "source": article.source.name,
        "published_at": article.published_at,
        "first_seen_at": article.first_seen_at,
        "snippet": highlights.get("snippet", "") if isinstance(highlights, dict) else "",
        "sightings": [{"source": s.source.name, "url": s.url, "seen_at": s.seen_at}
                      for s in article.sightings],
    } for article, highlights in rows]


def atom_feed(topic: Topic, entries: list[dict[str, Any]]) -> bytes:
    """An Atom document; feedgen (lxml) escapes all text, characters XML cannot hold are
    dropped."""
    feed = FeedGenerator()
    feed.id(f"urn:mediawatch:topic:{topic.name}")
    feed.title(f"mediawatch: {topic.name}")
    feed.subtitle(xml_text(topic.query))
    feed.author(name="mediawatch")
    feed.updated(entries[0]["first_seen_at"] if entries else utcnow())
    for entry in entries:
        item = feed.add_entry(order="append")
        item.id(f"urn:mediawatch:article:{entry['article_id']}")
        item.title(xml_text(entry["title"] or entry["canonical_url"]))
        link = safe_url(entry["canonical_url"])  # never a javascript: or data: link
        if link:
            item.link(href=link)
        item.updated(entry["first_seen_at"])
        if entry["published_at"]:
            item.published(entry["published_at"])
        item.author(name=xml_text(entry["source"]))
        if entry["story_id"] is not None:
            item.category(term=str(entry["story_id"]), scheme="urn:mediawatch:story",
                          label=f"story {entry['story_id']}")
        item.content(xml_text(_entry_text(entry)))
    return feed.atom_str(pretty=True)


def _entry_text(entry: dict[str, Any]) -> str:
    """The snippet and the sightings, as plain text: feedgen 1.0 drops the `rel` of an
    entry's links, so sightings cannot be `related` links."""
    head = [entry["snippet"], ""] if entry["snippet"] else []
    seen = [f"- {s['source']}: {s['url']} ({iso(s['seen_at'])})" for s in entry["sightings"]]
    return "\n".join([*head, "Seen at:", *seen])

