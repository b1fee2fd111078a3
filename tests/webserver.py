"""The local fixture web: a real HTTP server on a free loopback port.

Static files come from `root` (each test gets a scratch copy of `tests/fixtures/web/`) with ETag / Last-Modified and 304 answers; a
file `X.headers` beside `X` holds raw header lines sent instead of the guessed Content-Type.
Routes named after behaviours:

    /status/<code>        answers with that status
    /slow/<seconds>/<p>   waits, then serves <p>
    /big/<bytes>          a body of that many bytes (text/html)
    /drip/<seconds>/<n>   announces <n> bytes, then sends one every <seconds> (a drip feed)
    /bomb/<enc>/<MB>      a small body with Content-Encoding <enc> (gzip, deflate, br, zstd)
                          that inflates to <MB> megabytes
    /redirect/<n>/<p>     a chain of <n> redirects (302), then serves <p>
    /redirect-to?url=<u>  302 to any URL <u>: file:, loopback, another host
    /set-cookie?url=<u>   sets a cookie, then 302 to <u>

A request target in absolute form (`GET http://news.example/feeds/x.xml`) is answered like
its path, as a forward proxy would: with `http_proxy` pointed at this server, any host name
or public address serves the fixture web (the log keeps the absolute target).

Every request is logged (method, path, headers) so tests can count fetches, and `peak` keeps
the most requests of one path served at once (two polls of a source overlapping). `start(tls=…)`
serves it over https (certificates made by tests/certificates.py).
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import mimetypes
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests import events

ROOT = Path(__file__).parent / "fixtures" / "web"
TYPES = {".xml": "application/xml", ".atom": "application/atom+xml", ".html": "text/html",
         ".txt": "text/plain", ".json": "application/json"}


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FixtureWeb:
    base: str
    root: Path
    log: list[Hit] = field(default_factory=list)
    peak: dict[str, int] = field(default_factory=dict)  # path → most requests at once
    _serving: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        self.log.clear()
        self.peak.clear()

    @contextmanager
    def serving(self, path: str) -> Iterator[None]:
        with self._lock:
            self._serving[path] = now = self._serving.get(path, 0) + 1
            self.peak[path] = max(self.peak.get(path, 0), now)
        try:
            yield
        finally:
            with self._lock:
                self._serving[path] -= 1

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def hits(self, path: str) -> list[Hit]:
        return [h for h in self.log if urlsplit(h.path).path == path]


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        web: FixtureWeb = self.server.web  # type: ignore[attr-defined]
        web.log.append(Hit("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
        events.happened()
        with web.serving(urlsplit(self.path).path):
            self.answer(web)

    def answer(self, web: FixtureWeb) -> None:
        target = urlsplit(self.path)
        parts = target.path.strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        if parts[0] == "status":
            return self.reply(int(parts[1]), b"status page", "text/plain")
        if parts[0] == "slow":
            time.sleep(float(parts[1]))
            return self.serve_file(web.root / "/".join(parts[2:]))
        if parts[0] == "big":
            return self.reply(200, b"<html><body>" + b"x" * int(parts[1]), "text/html")
        if parts[0] == "drip":
            return self.drip(float(parts[1]), int(parts[2]))
        if parts[0] == "bomb":
            return self.reply(200, bomb(parts[1], int(parts[2])), "application/rss+xml",
                              {"Content-Encoding": parts[1]})
        if parts[0] == "redirect":
            hops = int(parts[1])
            rest = "/".join(parts[2:])
            to = f"/redirect/{hops - 1}/{rest}" if hops > 1 else f"/{rest}"
            return self.reply(302, b"", None, {"Location": to})
        if parts[0] == "redirect-to":
            return self.reply(302, b"", None, {"Location": query["url"]})
        if parts[0] == "set-cookie":
            return self.reply(302, b"", None, {"Location": query["url"],
                                                "Set-Cookie": "session=FIXTURE-COOKIE; Path=/"})
        return self.serve_file(web.root / "/".join(parts))

    def serve_file(self, path: Path) -> None:
        web: FixtureWeb = self.server.web  # type: ignore[attr-defined]
        if not path.resolve().is_relative_to(web.root.resolve()) or not path.is_file():
            return self.reply(404, b"not found", "text/plain")
        body = path.read_bytes()
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        modified = int(path.stat().st_mtime)
        extra = {"ETag": etag, "Last-Modified": formatdate(modified, usegmt=True)}
        sidecar = path.with_name(path.name + ".headers")
        if sidecar.is_file():
            for line in sidecar.read_text().splitlines():
                if ":" in line:
                    name, value = line.split(":", 1)
                    extra[name.strip()] = value.strip()
        status = int(extra.pop("Status", 200))  # an error status wins over a 304
        if status == 200 and (self.headers.get("If-None-Match") == etag
                              or self.not_modified_since(modified)):
            return self.reply(304, b"", None, {"ETag": etag})
        content_type = None if "Content-Type" in extra else \
            TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.reply(status, body, content_type, extra)

    def drip(self, seconds: float, size: int) -> None:
        """Headers at once, then the body one byte at a time: never idle, done only after
        <size> x <seconds>."""
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        for _ in range(size):
            self.wfile.write(b" ")
            time.sleep(seconds)

    def not_modified_since(self, modified: int) -> bool:
        """If-Modified-Since counts only without If-None-Match (RFC 9110 13.1.3)."""
        since = self.headers.get("If-Modified-Since")
        if not since or "If-None-Match" in self.headers:
            return False
        try:
            return parsedate_to_datetime(since).timestamp() >= modified
        except (TypeError, ValueError):
            return False

    def reply(self, status: int, body: bytes, content_type: str | None,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)


@functools.cache
def bomb(encoding: str, megabytes: int) -> bytes:
    """<megabytes> MB of spaces after an RSS start tag, compressed (a few kB on the wire)."""
    body = b"<rss>" + b" " * (megabytes * 1024 * 1024)
    if encoding == "gzip":
        return gzip.compress(body, mtime=0)
    if encoding == "deflate":
        return zlib.compress(body, 9)
    if encoding == "br":
        import brotli
        return brotli.compress(body, quality=5)
    if encoding == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python 3.14
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        return zstd.compress(body)
    raise ValueError(f"unknown encoding {encoding!r}")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up early (a crawler's timeout) is expected here, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class TLSServer(Server):
    """The fixture web over https: the TLS handshake in the request's own thread."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except OSError:  # the client rejected the certificate
            return
        with request:
            super().finish_request(request, client_address)


def start(root: Path = ROOT, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
          ) -> tuple[FixtureWeb, ThreadingHTTPServer]:
    """The fixture web on a free port of `host` (loopback); over https with `tls` (a server
    context)."""
    server = TLSServer(tls) if tls else Server((host, 0), Handler)
    scheme = "https" if tls else "http"
    web = FixtureWeb(f"{scheme}://{host}:{server.server_address[1]}", root)
    server.web = web  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return web, server
