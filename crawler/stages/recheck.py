"""Statements re-checked for edits and deletions (pure): when an official article is
fetched again, whether where a fetch landed means the page is gone, and the readable diff
of two versions of its text."""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from basis.text import clip

# (every, until): fetched again every `every` while younger than `until` (since first seen)
SCHEDULE: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(hours=1), timedelta(days=1)), (timedelta(days=1), timedelta(days=30)))
GONE = (404, 410)
CONFIRM_GONE = timedelta(minutes=15)  # a page gone is asked again this soon: a glitch passes
DIFF_LINES = 40  # lines of a diff shown in an alert
LINE_CHARS = 300
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|(?<=[.;:])\s+|\n+")
_FRONT_PAGES = {"", "/", "/index.html", "/index.htm", "/index.php", "/default.aspx"}


def next_check(first_seen: datetime, now: datetime,
               schedule: Sequence[tuple[timedelta, timedelta]] = SCHEDULE) -> datetime | None:
    """When to fetch an article first seen at `first_seen` again, after a check at `now`:
    the step of the band its age falls in, never beyond that band's end; None once it is
    older than the last band (hourly for a day, then daily up to 30 days by default)."""
    age = now - first_seen
    for every, until in schedule:
        if age < until:
            return min(now + every, first_seen + until)
    return None


def is_front_page(requested: str, landed: str) -> bool:
    """Whether a fetch of `requested` was redirected to its site's front page (the way
    many sites answer for a page they took down)."""
    asked, got = urlsplit(requested), urlsplit(landed)
    return landed != requested and got.path in _FRONT_PAGES and not got.query \
        and got.hostname is not None \
        and got.hostname.removeprefix("www.") == (asked.hostname or "").removeprefix("www.")


def sentences(text: str) -> list[str]:
    """A text cut into sentences (Chinese and Latin punctuation, line breaks)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def text_diff(old: str, new: str, limit: int = DIFF_LINES) -> list[str]:
    """What changed, sentence by sentence: `- ` removed, `+ ` added, `  ` one sentence of
    context (`  …` between distant changes); at most `limit` lines."""
    lines: list[str] = []
    for line in difflib.unified_diff(sentences(old), sentences(new), n=1, lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        lines.append("  …" if line.startswith("@@") else
                     f"{line[0] if line[0] in '+-' else ' '} {clip(line[1:], LINE_CHARS)}")
    lines = lines[1:]  # (the first hunk's mark)
    if len(lines) > limit:
        lines = [*lines[:limit - 1], f"  … ({len(lines) - limit + 1} more lines)"]
    return lines
