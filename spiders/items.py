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


@dataclass(frozen=True)
class Page:
    """A fetched article page, still undecoded."""

    url: str
    body: bytes
    content_type: str | None
    status: int


@dataclass(frozen=True)
class FeedEntry:
    """What a feed says about one item."""

    url: str
    title: str = ""
    summary: str = ""
    content: str = ""
    published: datetime | None = None
    language: str | None = None


@dataclass(frozen=True)
class SourcePolled:
    """A source answered (200 or 304)."""

    source: str
    http_status: int
    etag: str | None = None
    last_modified: str | None = None
    entries: int = 0
    warning: str | None = None


@dataclass(frozen=True)
class SourceFailed:
    """A source could not be fetched or parsed."""

    source: str
    error_class: str
    message: str
    http_status: int | None = None


@dataclass(frozen=True)
class ArticleSeen:
    """A new item: its feed entry, and its page when it was followed and fetched."""

    source: str
    entry: FeedEntry
    page: Page | None = None
    page_error: str | None = None
    also_seen: tuple[tuple[str, str], ...] = field(default=())  # (source, url) in this run


@dataclass(frozen=True)
class PageFailed:
    """An article page failed for a reason that may pass; it is tried again next poll."""

    source: str
    url: str
    message: str


@dataclass(frozen=True)
class KnownLink:
    """A link to an article already stored: a sighting, not a fetch."""

    source: str
    url: str
