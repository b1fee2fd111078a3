"""RSS and Atom: feed bytes → entries, with feedparser (relative links resolved against
xml:base and the feed's own URL)."""
from __future__ import annotations

import calendar
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any
from urllib.parse import urljoin

import feedparser
from w3lib.html import remove_tags, replace_entities

from basis.dates import parse_date, zone_for_language
from basis.errors import FetchError
from basis.urls import is_web_url
from spiders.items import FeedEntry


class NotAFeed(FetchError):
    """The body could not be read as RSS or Atom."""


@dataclass(frozen=True)
class ParsedFeed:
    entries: list[FeedEntry]
    warning: str | None
    skipped: int = 0  # items with no http(s) link


def parse_feed(body: bytes, url: str, headers: Mapping[str, str],
               language_hint: str | None = None) -> ParsedFeed:
    """Entries of a feed. A broken but readable feed (bozo) yields its entries and a warning,
    as does one with items that have no http(s) link (they are skipped, never silently); a
    body with no feed in it (no channel and no entries: HTML, any other XML) raises
    NotAFeed. The source's language hint, else the feed's `<language>`, sets the zone of
    dates that name none (+08:00 for Chinese)."""
    # blank lines before `<?xml` (common from PHP sites) are no flaw worth a warning
    if body[:1].isspace() and body.lstrip().startswith(b"<?xml"):
        body = body.lstrip()
    # a stream, never bytes: feedparser opens a body that names a local file as that file
    parsed = feedparser.parse(io.BytesIO(body),  # no Content-Type: a flaw not worth a warning
                              response_headers={"content-type": "application/xml", **headers,
                                                "content-location": url},
                              resolve_relative_uris=True, sanitize_html=True)
    problem = _bozo_message(parsed)
    if not parsed.entries and not (parsed.get("version") and parsed.feed):
        raise NotAFeed(f"not an RSS or Atom feed: {problem or 'no channel and no entries'}")
    language = _lang(parsed.feed.get("language"))
    zone = zone_for_language(language_hint or language)
    entries = [e for e in (_entry(raw, language, zone, url) for raw in parsed.entries) if e]
    skipped = len(parsed.entries) - len(entries)
    warnings = [f"feed is malformed but readable: {problem}" if problem else None,
                _skipped(parsed.entries, skipped)]
    return ParsedFeed(entries, "; ".join(filter(None, warnings)) or None, skipped)


def _bozo_message(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    return str(exc).splitlines()[0] if exc else "unknown problem"


def _skipped(raws: list[Any], count: int) -> str | None:
    if not count:
        return None
    first = next(raw for raw in raws if _link(raw) is None)
    what = first.get("link") or plain_text(first.get("title", "")) or "untitled"
    return f"{count} of {len(raws)} items skipped: no http(s) link (first: {what[:80]!r})"


def _entry(raw: Any, language: str | None, zone: tzinfo, base: str) -> FeedEntry | None:
    url = _link(raw)
    if url is None:
        return None
    content = raw.get("content") or []
    name, outlet = _outlet(raw.get("source") or {}, base)
    title = plain_text(raw.get("title", ""))
    return FeedEntry(
        url=url,
        title=title.removesuffix(f" - {name}") if name else title,  # a news search's form
        summary=plain_text(raw.get("summary", "")),
        content=plain_text(content[0].get("value", "")) if content else "",
        published=_published(raw, zone),
        language=_lang(raw.get("language")) or language,
        outlet=outlet,
    )


def _outlet(source: Mapping[str, str], base: str) -> tuple[str, str | None]:
    """A news search's `<source url="…">Outlet</source>`: the outlet's name, and what pairs
    the item with the outlet's own article — its URL (resolved), else its name."""
    name = plain_text(source.get("title", ""))
    home = urljoin(base, source["href"]) if source.get("href") else ""
    return name, (home if is_web_url(home) else name) or None


def _link(raw: Any) -> str | None:
    """The item's first http(s) link: its `<link>`, else an alternate link (feedparser
    makes a permalink guid or an Atom id the link when there is none). Never `javascript:`,
    `mailto:` or the like: the link becomes the article's URL."""
    alternates = [link.get("href") for link in raw.get("links", [])
                  if link.get("rel", "alternate") == "alternate"]
    return next((url.strip() for url in (raw.get("link"), *alternates) if url and is_web_url(url)),
                None)



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
