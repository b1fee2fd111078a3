"""Secrets never leave the process. One rule masks them everywhere:

* a URL that carries a secret is shown by `mask_url`: its password always as `***`; for a
  channel endpoint also a host that is no name but a token or topic, the path after its
  first segment and the query values (`url_secrets` are those parts);
* any other text — what is printed, logged, stored as an error or sent to the operator —
  goes through a `Redactor`, which masks every secret value it was given of at least
  `MIN_SECRET` characters, also in the %-encoded form a URL carries it in (shorter values —
  a port, a flag, a language — are no tokens, and masking them would garble every line).
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
MIN_SECRET = 6
_URL_SAFE = "/:@!$&'()*+,;=?~%"  # what a URL keeps as is: other characters travel %-encoded


def mask_url(url: str, *, endpoint: bool = True, keep_query: bool = False) -> str:
    """The URL as it may be shown: `user:***@` for a password. An `endpoint` (a channel's
    URL) also hides a host that is no name (`ntfys://Se***`), a user without password, the
    path after its first segment cut to two characters
    (`https://hooks.slack.com/services/T0***`) and, unless `keep_query`, the query."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    host = parts.hostname or ""
    user = unquote(parts.username or "")
    if parts.password is not None:
        userinfo = f"{user}:{MASK}@"
    else:
        userinfo = f"{MASK if endpoint else user}@" if user else ""
    if ":" in host:
        host = f"[{host}]"
    elif endpoint and host and "." not in host and host != "localhost":
        host = f"{host[:2]}{MASK}"
    if not endpoint:
        query = f"?{parts.query}" if parts.query else ""
        return f"{parts.scheme}://{userinfo}{host}{port}{parts.path}{query}"
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > 1:
        path = f"/{segments[0]}/{'/'.join(segments[1:])[:2]}{MASK}"
    else:
        path = f"/{segments[0][:2]}{MASK}" if segments else ""
    query = (f"?{parts.query}" if keep_query else f"?{MASK}") if parts.query else ""
    return f"{parts.scheme}://{userinfo}{host}{port}{path}{query}"


def url_secrets(url: str) -> set[str]:
    """The parts of an endpoint URL that `mask_url` hides: the password, a host that is no
    name (`tgram://BOT:TOKEN/…`, `ntfy://topic`), the path after its first segment (all
    of a lone one), query values — and the whole URL."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    segments = [s for s in parts.path.split("/") if s]
    hidden = segments[1:] if len(segments) > 1 else segments
    found = {url, parts.password or "", *hidden, "/".join(hidden),
             *(value for _, value in parse_qsl(parts.query))}
    if "." not in host and not host.startswith(("localhost", "[")):
        found |= {host, *host.split(":")}
    return found | {unquote(s) for s in found}


class Redactor(logging.Filter):
    """Masks every secret it was given in text, JSON documents and, as a `logging.Filter`,
    every log record (for any handler's formatter)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these too (a reloaded config may bring new ones; the old stay masked)."""
        self.secrets |= {s for s in secrets if len(s) >= MIN_SECRET}
        forms = self.secrets | {quote(s, safe=_URL_SAFE) for s in self.secrets}
        if forms:
            self._pattern = re.compile("|".join(
                map(re.escape, sorted(forms, key=len, reverse=True))))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern and text else text

    def deep(self, document: Any) -> Any:
        """A JSON document with every string in it masked."""
        if isinstance(document, str):
            return self(document)
        if isinstance(document, dict):
            return {key: self.deep(value) for key, value in document.items()}
        if isinstance(document, (list, tuple)):
            return [self.deep(value) for value in document]
        return document

    def filter(self, record: logging.LogRecord) -> bool:
        """A log record's message and traceback, masked."""
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: show its parts, masked
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self(message), None
        if record.exc_info:
            record.exc_text = self(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


@contextmanager
def hushed(logger: str) -> Iterator[None]:
    """Drop what `logger` logs from this thread meanwhile (a library that logs a URL it was
    given, secrets and all); other threads log as usual."""
    me = threading.get_ident()
    quiet = logging.Filter()
    quiet.filter = lambda record: record.thread != me  # type: ignore[method-assign]
    logging.getLogger(logger).addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger(logger).removeFilter(quiet)
