"""The local fixture web: a real HTTP server on a free loopback port.

Static files come from `tests/fixtures/web/` with ETag / Last-Modified and 304 answers; a
file `X.headers` beside `X` holds raw header lines sent instead of the guessed Content-Type.
Routes named after behaviours:

    /status/<code>        answers with that status
    /slow/<seconds>/<p>   waits, then serves <p>
    /big/<bytes>          a body of that many bytes (text/html)

Every request is logged (method, path, headers) so tests can count fetches.
"""
from __future__ import annotations

import hashlib
import mimetypes
import sys
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

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
        parts = urlsplit(self.path).path.strip("/").split("/")
        if parts[0] == "status":
            return self.reply(int(parts[1]), b"status page", "text/plain")
        if parts[0] == "slow":
            time.sleep(float(parts[1]))
            return self.serve_file(web.root / "/".join(parts[2:]))
        if parts[0] == "big":
            return self.reply(200, b"<html><body>" + b"x" * int(parts[1]), "text/html")
        return self.serve_file(web.root / "/".join(parts))

    def serve_file(self, path: Path) -> None:
        if not path.resolve().is_relative_to(ROOT.resolve()) or not path.is_file():
            return self.reply(404, b"not found", "text/plain")
        body = path.read_bytes()
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        modified = int(path.stat().st_mtime)
        if self.headers.get("If-None-Match") == etag or self.not_modified_since(modified):
            return self.reply(304, b"", None, {"ETag": etag})
        extra = {"ETag": etag, "Last-Modified": formatdate(modified, usegmt=True)}
        sidecar = path.with_name(path.name + ".headers")
        if sidecar.is_file():
            for line in sidecar.read_text().splitlines():
                if ":" in line:
                    name, value = line.split(":", 1)
                    extra[name.strip()] = value.strip()
        content_type = None if "Content-Type" in extra else \
            TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.reply(200, body, content_type, extra)

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


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up early (a crawler's timeout) is expected here, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def start(root: Path = ROOT) -> tuple[FixtureWeb, ThreadingHTTPServer]:
    server = Server(("127.0.0.1", 0), Handler)
    web = FixtureWeb(f"http://127.0.0.1:{server.server_address[1]}", root)
    server.web = web  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return web, server
