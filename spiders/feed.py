"""RSS and Atom: feed bytes → entries, with feedparser (relative links resolved against
xml:base and the feed's own URL)."""
from __future__ import annotations

import calendar
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any

import feedparser
from w3lib.html import remove_tags, replace_entities

from crawler.dates import parse_date, zone_for_language
from spiders.items import FeedEntry


class NotAFeed(Exception):
    """The body could not be read as RSS or Atom."""


@dataclass(frozen=True)
class ParsedFeed:
    entries: list[FeedEntry]
    warning: str | None


def parse_feed(body: bytes, url: str, headers: Mapping[str, str],
               language_hint: str | None = None) -> ParsedFeed:
    """Entries of a feed. A broken but readable feed (bozo) yields its entries and a warning;
    a body with no feed in it raises NotAFeed. The source's language hint, else the feed's
    `<language>`, sets the zone of dates that name none (+08:00 for Chinese)."""
    # a stream, never bytes: feedparser opens a body that names a local file as that file
    parsed = feedparser.parse(io.BytesIO(body),
                              response_headers={**headers, "content-location": url},
                              resolve_relative_uris=True, sanitize_html=True)
    problem = _bozo_message(parsed)
    if problem and not parsed.entries and not parsed.get("version"):
        raise NotAFeed(f"not an RSS or Atom feed: {problem}")
    language = _lang(parsed.feed.get("language"))
    zone = zone_for_language(language_hint or language)
    entries = [e for e in (_entry(raw, language, zone) for raw in parsed.entries) if e]
    return ParsedFeed(entries, f"feed is malformed but readable: {problem}" if problem else None)


def _bozo_message(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    return str(exc).splitlines()[0] if exc else "unknown problem"


def _entry(raw: Any, language: str | None, zone: tzinfo) -> FeedEntry | None:
    url = raw.get("link") or _alternate(raw)
    if not url:
        return None
    content = raw.get("content") or []
    return FeedEntry(
        url=url.strip(),
        title=plain_text(raw.get("title", "")),
        summary=plain_text(raw.get("summary", "")),
        content=plain_text(content[0].get("value", "")) if content else "",
        published=_published(raw, zone),
        language=_lang(raw.get("language")) or language,
    )


def _alternate(raw: Any) -> str | None:
    for link in raw.get("links", []):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return link["href"]
    return None


def _published(raw: Any, zone: tzinfo) -> datetime | None:
    """The entry's date read by `parse_date` (in the feed's zone when it names none), else
    feedparser's reading of it: feedparser reads zone-less dates as UTC and misreads Chinese
    ones (`2026年11月27日 09:00` → 1 Nov), but knows a few exotic forms parse_date does not."""
    for key in ("published", "updated"):  # dict.get: FeedParserDict's maps one to the other
        published = parse_date(dict.get(raw, key), zone) or _time(dict.get(raw, f"{key}_parsed"))
        if published:
            return published
    return None


def _time(struct: Any) -> datetime | None:
    return datetime.fromtimestamp(calendar.timegm(struct), timezone.utc) if struct else None


def _lang(value: str | None) -> str | None:
    return value.split("-")[0].lower() if value else None


def plain_text(html: str) -> str:
    return " ".join(replace_entities(remove_tags(html or "")).split())
