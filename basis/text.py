"""Untrusted text — titles, bodies, error messages from the web — made safe to show. These
helpers only *clean* it (control characters out, length bounded); each channel still
escapes it for its own format (HTML, Slack's `&<>`, rich's markup)."""
from __future__ import annotations

import re

# C0/C1 controls (CR, LF, ESC, NUL…), line/paragraph separators, bidi embeddings/isolates.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in `…` when it was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def one_line(text: object, limit: int | None = None) -> str:
    """Untrusted text as a single clean line: controls become spaces, runs of whitespace
    collapse, and the result is clipped to `limit` characters."""
    line = _SPACE.sub(" ", CONTROL.sub(" ", str(text or ""))).strip()
    return clip(line, limit) if limit else line


def printable(text: str) -> str:
    """Untrusted text for a terminal: control characters (escape sequences, bidi
    overrides) removed, line breaks and tabs kept."""
    return CONTROL.sub(lambda m: m.group() if m.group() in "\n\t" else "", text)

