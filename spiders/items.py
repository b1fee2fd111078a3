"""What spiders are given (`SourceSpec`) and what they yield: plain values, no storage."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class SourceSpec:
    """One source to poll, with the validators of its last successful fetch."""

    name: str
    kind: str
    url: str
    follow: bool = True
    language: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    links: str | None = None  # listing: CSS selector of article links
    next_page: str | None = None  # listing: CSS selector of the next page's link
    max_pages: int = 1
    since: datetime | None = None  # first poll: entries dated before this are not followed
    not_before: datetime | None = None  # the server asked us to wait (Retry-After)
    verify_tls: bool = True  # false: the TLS certificate of its host is not checked


@dataclass(frozen=True)
class Page:
    """A fetched response (an article page, or the feed an entry came from), its body as
    read: HTTP-decoded (chunks, gzip), not charset-decoded."""

    url: str
    body: bytes
    content_type: str | None
    status: int
    headers: tuple[tuple[str, str], ...] = ()  # as received, in order
    fetched_at: datetime | None = None

    def header(self, name: str) -> str | None:
        """A response header's first value (names are case-insensitive)."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    @property
    def etag(self) -> str | None:  # the validators, for a conditional GET when re-checked
        return self.header("ETag")

    @property
    def last_modified(self) -> str | None:
        return self.header("Last-Modified")


@dataclass(frozen=True)
class FeedEntry:
    """What a feed says about one item."""

    url: str
    title: str = ""
    summary: str = ""
    content: str = ""
    published: datetime | None = None
    language: str | None = None
    outlet: str | None = None  # `<source>` (its URL, else its name): a news search's item


@dataclass(frozen=True)
class SourcePolled:
    """A source answered (200 or 304)."""

    source: str
    http_status: int
    etag: str | None = None
    last_modified: str | None = None
    entries: int = 0
    warning: str | None = None
    skipped: int = 0  # entries not followed: beyond the cap, or older than the backfill
    waited: int = 0  # new feed entries beyond the per-poll cap: followed on a later poll


@dataclass(frozen=True)
class MoreEntries:
    """Entries found beyond the source's own document (child sitemaps, listing pages)."""

    source: str
    entries: int
    skipped: int = 0


@dataclass(frozen=True)
class SourceFailed:
    """A source could not be fetched or parsed."""

    source: str
    error_class: str
    message: str
    http_status: int | None = None
    retry_after: datetime | None = None  # when the server said to come back (429/503)


@dataclass(frozen=True)
class SourceDeferred:
    """A source not polled this time: its server asked us to wait until `until`."""

    source: str
    until: datetime


@dataclass(frozen=True)
class PageSnapshot:
    """A watched page (kind `page`) as fetched now: stored when its text changed."""

    source: str
    page: Page


@dataclass(frozen=True)
class ArticleSeen:
    """A new item: its feed entry, and its page when it was followed and fetched."""

    source: str
    entry: FeedEntry
    page: Page | None = None
    page_error: str | None = None
    listed_in: Page | None = None  # stored from its entry: the feed (or sitemap…) it was in
    also_seen: tuple[tuple[str, str], ...] = field(default=())  # (source, url) in this run


@dataclass(frozen=True)
class PageFailed:
    """An article page failed for a reason that may pass; it is tried again next poll."""

    source: str
    url: str
    message: str
    skipped: bool = False  # robots.txt or the fetch guard said no: skipped, not retried


@dataclass(frozen=True)
class PollDone:
    """The last item of one poll of a source: everything it fetched has been handled."""

    source: str
    started_at: datetime


@dataclass(frozen=True)
class Recheck:
    """A stored article (an official statement) to fetch again, with its page's validators."""

    source: str
    article_id: int
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Rechecked:
    """A stored article fetched again: unchanged (304), its page now (200), gone (404,
    410), or failed (`error`); `landed_at` is where redirects ended."""

    source: str
    article_id: int
    url: str
    status: int | None
    landed_at: str | None = None
    page: Page | None = None
    error: str | None = None


@dataclass(frozen=True)
class KnownLink:
    """A link to an article already stored: a sighting, not a fetch."""

    source: str
    url: str
    published: datetime | None = None  # the date the listing gives the page, if its own
