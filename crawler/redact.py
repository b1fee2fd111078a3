"""Secrets never leave the process. The values config.yaml took from the environment and the
secret parts of channel URLs (`Config.secrets`) are masked as `***` in what is printed,
logged, stored as an error or sent to the operator; `Redactor` does it for text, JSON
documents and, as a `logging.Filter`, every log record."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
MIN_LENGTH = 6  # shorter values (a port, a flag, a language) are no tokens: masking them
#                 would garble every line that happens to contain them
_URL_SAFE = "/:@!$&'()*+,;=?~%"  # what a URL keeps as is: other characters travel %-encoded


def url_secrets(url: str) -> set[str]:
    """The parts of a channel URL that carry its secret, as `mask_url` hides them: the
    password, a host that is no name (`tgram://BOT:TOKEN/…`, `ntfy://topic`), the path
    after its first segment (all of a lone one), query values."""
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
    """Masks every secret it was given (at least MIN_LENGTH characters long), also in the
    %-encoded form a URL carries it in."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these too (a reloaded config may bring new ones; the old stay masked)."""
        self.secrets |= {s for s in secrets if len(s) >= MIN_LENGTH}
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
        """A log record's message and traceback, masked (for any handler's formatter)."""
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
