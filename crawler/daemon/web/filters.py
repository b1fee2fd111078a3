"""What every page shares: the list filters of a request (topic, source, language, since,
page), pagination, and the template filters (times, safe links, highlights)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment
from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BaseConverter

from basis.urls import safe_url
from crawler.config import parse_duration

PAGE_SIZE = 50
LONGEST = timedelta(days=3650)  # a `since` window


class SlugConverter(BaseConverter):
    """A topic or source name as the config allows them."""

    regex = r"[a-z0-9][a-z0-9-]*"


@dataclass(frozen=True)
class ListFilters:
    """`?topic=&source=&language=&since=7d&page=2`: every list's filters. A value that does
    not parse is dropped and named in `problems`, so the page still shows."""

    topic: str | None = None
    source: str | None = None
    language: str | None = None
    since: str | None = None  # as typed: 7d, 24h
    page: int = 1
    problems: tuple[str, ...] = ()

    @classmethod
    def of(cls, args: MultiDict[str, str]) -> ListFilters:
        problems: list[str] = []
        since = (args.get("since") or "").strip() or None
        if since is not None:
            try:
                window = parse_duration(since)
            except (ValueError, OverflowError) as error:
                problems.append(f"since: {error}")
                since = None
            else:
                if window > LONGEST:
                    problems.append(f"since: {since!r} is longer than {LONGEST.days} days")
                    since = None
        page = args.get("page", "1")
        if not page.isdigit() or not 0 < int(page) < 1_000_000:
            problems.append(f"page: {page!r} is not a page number")
            page = "1"
        return cls(_word(args, "topic"), _word(args, "source"), _word(args, "language"),
                   since, int(page), tuple(problems))

    @property
    def after(self) -> datetime | None:
        """The window's start (`since` before now)."""
        if self.since is None:
            return None
        return datetime.now(timezone.utc) - parse_duration(self.since)

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def query(self, **changes: Any) -> str:
        """This list's address with `changes` (page=2, topic=None), as `?a=b`."""
        values = replace(self, **changes)
        pairs = {k: getattr(values, k) for k in ("topic", "source", "language", "since", "page")}
        pairs = {k: v for k, v in pairs.items() if v is not None and (k != "page" or v > 1)}
        return "?" + urlencode(pairs) if pairs else "?"


def _word(args: MultiDict[str, str], name: str) -> str | None:
    value = (args.get(name) or "").strip()
    return value[:100] or None


def page_of(rows: list[Any], filters: ListFilters) -> tuple[list[Any], bool]:
    """A page of rows fetched with `limit=PAGE_SIZE + 1`: the rows and whether more follow."""
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


# ---------------------------------------------------------------- template filters

def when(moment: datetime | None) -> Markup:
    """A time in UTC, which app.js shows in the reader's zone (UTC stays on hover)."""
    if moment is None:
        return Markup("—")
    moment = moment.astimezone(timezone.utc)
    utc = moment.strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(timespec="seconds"), utc, utc)


def link(url: object) -> str | None:
    """An http(s) URL, else none: a `javascript:` link is shown as text, never linked."""
    return safe_url(url)


def marked(segments: list[tuple[str, bool]]) -> Markup:
    """Highlight segments (text, matched) as escaped text with `<mark>`s."""
    return Markup("").join(Markup("<mark>{}</mark>").format(text) if hit else escape(text)
                           for text, hit in segments)


def ago(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def install(environment: Environment) -> None:
    environment.filters.update(when=when, link=link, marked=marked, ago=ago)
