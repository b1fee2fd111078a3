"""RSS, Atom and JSON Feed: feed bytes (plain or gzipped) → entries, with feedparser for RSS
and Atom (relative links resolved against xml:base and the feed's own URL)."""
from __future__ import annotations

import calendar
import gzip
import io
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any
from urllib.parse import urljoin

import feedparser
import lxml.etree
import lxml.html
from w3lib.html import remove_tags, replace_entities

from basis.dates import parse_date, zone_for_language
from basis.errors import FetchError
from basis.urls import is_web_url
from spiders.items import FeedEntry


class NotAFeed(FetchError):
    """The body could not be read as RSS, Atom or JSON Feed."""


@dataclass(frozen=True)
class ParsedFeed:
    entries: list[FeedEntry]
    warning: str | None
    skipped: int = 0  # items with no http(s) link


GZIP_MAGIC = b"\x1f\x8b"
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
HTML_START = re.compile(rb"(\xef\xbb\xbf)?\s*(<!--.*?-->\s*)*<(!doctype html|html)", re.I | re.S)
ADVERTISED = 5  # feeds named in the error for an HTML page: the first few
JSON_FEED_VERSION = "jsonfeed.org/version/"


def parse_feed(body: bytes, url: str, headers: Mapping[str, str],
               language_hint: str | None = None, max_bytes: int = 50_000_000) -> ParsedFeed:
    """Entries of a feed. A broken but readable feed (bozo) yields its entries and a warning,
    as does one with items that have no http(s) link (they are skipped, never silently); a
    body with no feed in it (no channel and no entries: HTML, any other XML) raises
    NotAFeed, which names the feeds an HTML page advertises. A gzipped body (a `.gz` file)
    is inflated up to `max_bytes`. The source's language hint, else the feed's language,
    sets the zone of dates that name none (+08:00 for Chinese)."""
    body = _inflated(body, max_bytes)
    if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return _json_feed(body, url, language_hint)
    # blank lines before `<?xml` (common from PHP sites) are no flaw worth a warning
    if body[:1].isspace() and body.lstrip().startswith(b"<?xml"):
        body = body.lstrip()
    # a stream, never bytes: feedparser opens a body that names a local file as that file.
    # No base URL (nor the server's Content-Location): it would turn a bare <guid>, taken
    # for the link, into a URL on this host (relative links are resolved against the
    # feed's URL below, and against xml:base by feedparser).
    parsed = feedparser.parse(io.BytesIO(body),  # no Content-Type: a flaw not worth a warning
                              response_headers={"content-type": "application/xml", **{
                                  k: v for k, v in headers.items() if k != "content-location"}},
                              resolve_relative_uris=True, sanitize_html=True)
    problem = _bozo_message(parsed)
    if not parsed.entries and not (parsed.get("version") and parsed.feed):
        raise NotAFeed(_html_page(body, url, headers) or
                       f"not an RSS or Atom feed: {problem or 'no channel and no entries'}")
    language = _lang(parsed.feed.get("language"))
    zone = zone_for_language(language_hint or language)
    read = [(raw, _entry(raw, url, language, zone)) for raw in parsed.entries]
    return _parsed(read, f"feed is malformed but readable: {problem}" if problem else None)


def _inflated(body: bytes, max_bytes: int) -> bytes:
    """A gzipped body (served as a file, not with Content-Encoding) inflated, never past
    `max_bytes`; any other body as it is."""
    if not body.startswith(GZIP_MAGIC):
        return body
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            inflated = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise NotAFeed(f"not a feed: a broken gzip file ({exc})") from None
    if len(inflated) > max_bytes:
        raise NotAFeed("feed larger than crawl.max_bytes once decompressed")
    return inflated


def _parsed(read: list[tuple[Any, FeedEntry | None]], warning: str | None) -> ParsedFeed:
    """The entries read, and a warning naming the first item skipped for want of a link."""
    entries = [entry for _, entry in read if entry]
    skipped = [raw for raw, entry in read if entry is None]
    if skipped:
        first = skipped[0]
        what = _str(first.get("link")) or plain_text(_str(first.get("title"))) \
            or _str(first.get("id")) or "untitled"
        warning = "; ".join(filter(None, [warning, f"{len(skipped)} of {len(read)} items "
                                          f"skipped: no http(s) link (first: {what[:80]!r})"]))
    return ParsedFeed(entries, warning, len(skipped))


def _bozo_message(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    return str(exc).splitlines()[0] if exc else "unknown problem"


def _html_page(body: bytes, url: str, headers: Mapping[str, str]) -> str | None:
    """For an HTML page at a feed's URL, the error that names the feeds it advertises
    (`<link rel="alternate" type="application/rss+xml" href=…>`)."""
    content_type = headers.get("content-type", "").lower()
    if not (content_type.startswith(("text/html", "application/xhtml+xml"))
            or HTML_START.match(body[:1024])):
        return None
    try:
        links = lxml.html.document_fromstring(body).xpath("//link[@href]")
    except (ValueError, lxml.etree.ParserError):
        links = []
    feeds = dict.fromkeys(
        urljoin(url, link.get("href").strip()) for link in links
        if "alternate" in (link.get("rel") or "").lower().split()
        and (link.get("type") or "").strip().lower() in FEED_TYPES)
    feeds = [feed for feed in feeds if is_web_url(feed)][:ADVERTISED]
    if not feeds:
        return "not a feed but an HTML page, and it advertises no feed " \
            "(<link rel=\"alternate\" type=\"application/rss+xml\">)"
    return f"not a feed but an HTML page; the feeds it advertises: {', '.join(feeds)} " \
        "(use one as the source's url)"


def _entry(raw: Any, base: str, language: str | None, zone: tzinfo) -> FeedEntry | None:
    url = _link(raw, base)
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


def _link(raw: Any, base: str) -> str | None:
    """The item's first http(s) link: its `<link>`, else an alternate link, resolved against
    the feed's URL. feedparser takes a `<guid>` for the link when there is none and
    isPermaLink is not "false": that counts only when it is a full http(s) URL (a bare
    `12345` is an id, not a page). Never `javascript:`, `mailto:` or the like: the link
    becomes the article's URL."""
    guid = raw.get("id") if raw.get("guidislink") else None
    alternates = [link.get("href") for link in raw.get("links", [])
                  if link.get("rel", "alternate") == "alternate"]
    for link in filter(None, (raw.get("link"), *alternates)):
        url = link.strip() if link == guid else urljoin(base, link.strip())
        if is_web_url(url):
            return url
    return None


def _json_feed(body: bytes, url: str, language_hint: str | None) -> ParsedFeed:
    """A JSON Feed (1.0 or 1.1): each item's `url`, else `external_url`, else an `id` that
    is a full http(s) URL; its title, content and `date_published`."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotAFeed(f"not a feed: unreadable JSON ({exc})") from None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list) or JSON_FEED_VERSION not in str(document.get("version")):
        raise NotAFeed("not a feed: JSON without a JSON Feed version and items")
    language = _lang(_str(document.get("language")))
    zone = zone_for_language(language_hint or language)
    items = [item for item in items if isinstance(item, dict)]
    return _parsed([(item, _json_entry(item, url, language, zone)) for item in items], None)


def _json_entry(item: dict[str, Any], base: str, language: str | None,
                zone: tzinfo) -> FeedEntry | None:
    links = [urljoin(base, _str(item.get(key)).strip()) for key in ("url", "external_url")
             if _str(item.get(key)).strip()]
    url = next((u for u in (*links, _str(item.get("id")).strip()) if is_web_url(u)), None)
    if url is None:
        return None
    text = _str(item.get("content_html")) or _str(item.get("content_text"))
    return FeedEntry(
        url=url, title=plain_text(_str(item.get("title"))),
        summary=plain_text(_str(item.get("summary"))), content=plain_text(text),
        published=parse_date(_str(item.get("date_published")) or None, zone)
        or parse_date(_str(item.get("date_modified")) or None, zone),
        language=_lang(_str(item.get("language"))) or language)


def _str(value: Any) -> str:
    """A JSON value that should be a string: anything else (a number, null) is none."""
    return value if isinstance(value, str) else ""


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
