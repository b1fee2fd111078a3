"""The one spider: polls each source with a conditional GET, parses it by kind, and fetches
the article pages it links to unless they are already known."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TCPTimedOutError
from twisted.internet.error import TimeoutError as TwistedTimeout
from twisted.python.failure import Failure

from crawler.normalize import canonical_url
from spiders.feed import NotAFeed, parse_feed
from spiders.items import (
    ArticleSeen,
    FeedEntry,
    KnownLink,
    Page,
    PageFailed,
    SourceFailed,
    SourcePolled,
    SourceSpec,
)

HTML_TYPES = (b"text/html", b"application/xhtml+xml")


class SourceSpider(scrapy.Spider):
    name = "mediawatch"

    def __init__(self, sources: Sequence[SourceSpec],
                 seen: Callable[[str], bool] = lambda url: False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources = {spec.name: spec for spec in sources}
        self.seen = seen
        self.in_flight: dict[str, list[tuple[str, str]]] = {}

    async def start(self) -> AsyncIterator[Any]:
        for spec in self.sources.values():
            if spec.kind == "feed":
                yield self.poll(spec)
            else:
                yield SourceFailed(spec.name, "UnsupportedKind",
                                   f"source kind {spec.kind!r} is not crawled by this version")

    def poll(self, spec: SourceSpec) -> scrapy.Request:
        headers = {}
        if spec.etag:
            headers["If-None-Match"] = spec.etag
        if spec.last_modified:
            headers["If-Modified-Since"] = spec.last_modified
        return scrapy.Request(spec.url, callback=self.parse_source, errback=self.source_failed,
                              headers=headers, dont_filter=True,
                              meta={"source": spec.name, "handle_httpstatus_list": [304]})

    def parse_source(self, response: Response) -> Iterator[Any]:
        spec = self.sources[response.meta["source"]]
        validators = {"etag": _header(response, b"ETag"),
                      "last_modified": _header(response, b"Last-Modified")}
        if response.status == 304:
            yield SourcePolled(spec.name, 304, **validators)
            return
        try:
            feed = parse_feed(response.body, response.url, _headers(response))
        except NotAFeed as exc:
            yield SourceFailed(spec.name, "NotAFeed", str(exc), response.status)
            return
        yield SourcePolled(spec.name, response.status, entries=len(feed.entries),
                           warning=feed.warning, **validators)
        for entry in feed.entries:
            yield from self.follow(spec, entry)

    def follow(self, spec: SourceSpec, entry: FeedEntry) -> Iterator[Any]:
        key = canonical_url(entry.url)
        if self.seen(key):
            yield KnownLink(spec.name, entry.url)
        elif key in self.in_flight:
            self.in_flight[key].append((spec.name, entry.url))
        elif not spec.follow:
            yield ArticleSeen(spec.name, entry)
        else:
            self.in_flight[key] = []
            yield scrapy.Request(entry.url, callback=self.parse_page, errback=self.page_failed,
                                 cb_kwargs={"entry": entry}, meta={"source": spec.name})

    def parse_page(self, response: Response, entry: FeedEntry) -> Iterator[ArticleSeen]:
        content_type = _header(response, b"Content-Type")
        page = Page(response.url, response.body, content_type, response.status)
        is_html = (content_type or "text/html").encode().lower().startswith(HTML_TYPES)
        yield self._seen(response.meta["source"], entry, page=page if is_html else None,
                         page_error=None if is_html else f"not an HTML page: {content_type}")

    def page_failed(self, failure: Failure) -> Iterator[ArticleSeen | PageFailed]:
        """A page that is gone (4xx) is stored from its feed entry; any other failure is
        reported and the page is tried again on the next poll."""
        request = failure.request
        entry: FeedEntry = request.cb_kwargs["entry"]
        _, message, status = describe_failure(failure)
        if status is not None and 400 <= status < 500:
            yield self._seen(request.meta["source"], entry, page_error=message)
            return
        for source, url in [(request.meta["source"], entry.url),
                            *self.in_flight.pop(canonical_url(entry.url), [])]:
            yield PageFailed(source, url, message)

    def _seen(self, source: str, entry: FeedEntry, **page: Any) -> ArticleSeen:
        extra = self.in_flight.pop(canonical_url(entry.url), [])
        return ArticleSeen(source, entry, also_seen=tuple(extra), **page)

    def source_failed(self, failure: Failure) -> Iterator[SourceFailed]:
        error_class, message, status = describe_failure(failure)
        yield SourceFailed(failure.request.meta["source"], error_class, message, status)


def describe_failure(failure: Failure) -> tuple[str, str, int | None]:
    """(error class, one readable line, HTTP status) for a failed download."""
    exc = failure.value
    if isinstance(exc, HttpError):
        status = exc.response.status
        return "HTTPError", f"HTTP {status} from {exc.response.url}", status
    host = urlsplit(failure.request.url).netloc if failure.request else "?"
    if isinstance(exc, (DNSLookupError, CannotResolveHostError)):
        return "DNSLookupError", (f"DNS lookup found no public address for {host} "
                                  "(private ones need crawl.allow_private)"), None
    if isinstance(exc, (TwistedTimeout, TCPTimedOutError, TimeoutError, DownloadTimeoutError)):
        return "Timeout", f"no complete response from {host} in time", None
    if isinstance(exc, (ConnectionRefusedError, DownloadConnectionRefusedError)):
        return "ConnectionRefused", f"connection refused by {host}", None
    if isinstance(exc, DownloadCancelledError):
        return "Cancelled", f"download from {host} cancelled: {exc}", None
    if isinstance(exc, IgnoreRequest):
        return type(exc).__name__, str(exc) or "request skipped", None
    text = str(exc).strip().splitlines()
    return type(exc).__name__, text[0] if text else type(exc).__name__, None


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _headers(response: Response) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v[0].decode("latin-1")
            for k, v in response.headers.items() if v}
