"""The one spider: polls each source with a conditional GET, parses it by kind (feed,
sitemap, listing, watched page), and fetches the article pages it links to unless they are
already known."""
from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import wraps
from math import inf
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.exceptions import (
    CannotResolveHostError,
    DontCloseSpider,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TCPTimedOutError
from twisted.internet.error import TimeoutError as TwistedTimeout
from twisted.python.failure import Failure

from basis.dates import parse_date
from basis.errors import FetchError
from basis.urls import canonical_url
from spiders.feed import NotAFeed, parse_feed
from spiders.items import (
    ArticleSeen,
    FeedEntry,
    KnownLink,
    MoreEntries,
    Page,
    PageFailed,
    PageSnapshot,
    PollDone,
    Recheck,
    Rechecked,
    SourceDeferred,
    SourceFailed,
    SourcePolled,
    SourceSpec,
)
from spiders.listing import listing_entries
from spiders.sitemap import NotASitemap, ParsedSitemap, parse_sitemap

log = logging.getLogger(__name__)
HTML_TYPES = (b"text/html", b"application/xhtml+xml")
MAX_URLS = 1000  # article links followed per source and poll (sitemaps, listings, feeds)
MAX_SITEMAPS = 50  # child sitemaps read per poll of a sitemap index
POLL_PRIORITY = 1  # a poll's first request goes before the article pages queued by earlier
# polls: a source is polled on time even while a big first crawl fills the queue


class HostHeld(FetchError, IgnoreRequest):
    """A request not sent: its host asked a member of the deployment to wait (Retry-After)
    until `until`, further than a request waits (see crawler.engine.hostgate)."""

    def __init__(self, host: str, until: datetime) -> None:
        super().__init__(f"{host} asked to be left alone until {until:%H:%M:%S} UTC "
                         "(Retry-After)")
        self.until = until


@dataclass
class _Poll:
    """One poll of a source: how many of its requests are not handled yet."""

    source: str
    started_at: datetime
    open: int = 1
    done: Deferred | None = None  # fired with the source name when the poll ends


def poll_step(method: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """Wraps each callback and errback: requests it yields belong to its poll; a bug in it
    fails the source instead of the crawl; after a poll's last step, `PollDone` follows."""

    @wraps(method)
    def step(self: SourceSpider, outcome: Response | Failure, *args: Any,
             **kwargs: Any) -> Iterator[Any]:
        request = outcome.request
        poll = self.polls[request.meta["poll"]]
        try:
            for out in method(self, outcome, *args, **kwargs):
                if isinstance(out, scrapy.Request):
                    out.meta["poll"], out.meta["source"] = request.meta["poll"], poll.source
                    poll.open += 1
                yield redacted(out, self.redact)
        except Exception as exc:  # noqa: BLE001 — isolate the poll, report on its source
            log.exception("%s: error while reading %s", poll.source, request.url)
            yield SourceFailed(poll.source, "InternalError", self.redact(
                f"could not read {request.url}: {type(exc).__name__}: {exc}"))
        poll.open -= 1
        if poll.open == 0:
            del self.polls[request.meta["poll"]]
            yield PollDone(poll.source, poll.started_at)
            if poll.done is not None and not poll.done.called:  # (not given up meanwhile)
                poll.done.callback(poll.source)

    return step


class SourceSpider(scrapy.Spider):
    name = "mediawatch"

    def __init__(self, sources: Sequence[SourceSpec],
                 seen: Callable[[str], bool] = lambda url: False, daemon: bool = False,
                 redact: Callable[[str], str] = lambda text: text,
                 rechecks: Sequence[Recheck] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rechecks = rechecks  # stored statements due to be fetched again (a one-off crawl)
        self.daemon = daemon  # stay open, poll only when asked (see crawler.daemon.service)
        self.redact = redact  # masks secrets (a token in a source's URL) in what it reports
        self.sources = {spec.name: spec for spec in sources}
        self.seen = seen
        self.in_flight: dict[str, list[tuple[str, str]]] = {}
        self.polls: dict[int, _Poll] = {}
        self.poll_ids = itertools.count(1)
        self.parsers: dict[str, Callable[[SourceSpec, Response], Iterator[Any]]] = {
            "feed": self.parse_feed, "sitemap": self.parse_sitemap,
            "listing": self.parse_listing, "page": self.parse_watched_page}

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> SourceSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        if spider.daemon:
            crawler.signals.connect(spider.stay_open, signal=signals.spider_idle)
        return spider

    def stay_open(self) -> None:
        raise DontCloseSpider

    async def start(self) -> AsyncIterator[Any]:
        if self.daemon:
            return
        now = datetime.now(timezone.utc)
        for spec in self.sources.values():
            if spec.not_before and spec.not_before > now:
                yield SourceDeferred(spec.name, spec.not_before)
            else:
                yield self.poll(spec)
        for recheck in self.rechecks:
            yield self.recheck(recheck)

    def poll(self, spec: SourceSpec, done: Deferred | None = None) -> scrapy.Request:
        """The conditional GET that starts a poll; `done` fires when the poll ends."""
        headers = conditional(spec.etag, spec.last_modified)
        poll_id = next(self.poll_ids)
        self.polls[poll_id] = _Poll(spec.name, datetime.now(timezone.utc), done=done)
        return scrapy.Request(spec.url, callback=self.parse_source, errback=self.source_failed,
                              headers=headers, dont_filter=True, priority=POLL_PRIORITY,
                              meta={"source": spec.name, "poll": poll_id,
                                    "handle_httpstatus_list": [304]})

    def recheck(self, spec: Recheck) -> scrapy.Request:
        """The conditional GET of a stored statement: unchanged, edited or gone?"""
        return scrapy.Request(spec.url, callback=self.parse_recheck, errback=self.recheck_failed,
                              headers=conditional(spec.etag, spec.last_modified),
                              priority=POLL_PRIORITY,  # one request: never behind the pages
                              dont_filter=True, meta={"source": spec.source, "recheck": spec,
                                                      "handle_httpstatus_list": [304, 404, 410]})

    def parse_recheck(self, response: Response) -> Iterator[Rechecked]:
        spec: Recheck = response.meta["recheck"]
        page = read_page(response) if response.status == 200 else None
        yield Rechecked(spec.source, spec.article_id, spec.url, response.status, response.url,
                        page)

    def recheck_failed(self, failure: Failure) -> Iterator[Rechecked]:
        spec: Recheck = failure.request.meta["recheck"]
        _, message, status = describe_failure(failure)
        yield Rechecked(spec.source, spec.article_id, spec.url, status, error=message)

    @poll_step
    def parse_source(self, response: Response) -> Iterator[Any]:
        spec = self.sources[response.meta["source"]]
        validators = {"etag": _header(response, b"ETag"),
                      "last_modified": _header(response, b"Last-Modified")}
        if response.status == 304:
            yield SourcePolled(spec.name, 304, **validators)
            return
        try:
            items = list(self.parsers[spec.kind](spec, response))
        except (NotAFeed, NotASitemap, ValueError) as exc:
            yield SourceFailed(spec.name, type(exc).__name__, str(exc), response.status)
            return
        polled = next(i for i in items if isinstance(i, SourcePolled))
        yield replace(polled, http_status=response.status, **validators)
        yield from (i for i in items if not isinstance(i, SourcePolled))

    def parse_feed(self, spec: SourceSpec, response: Response) -> Iterator[Any]:
        """A feed's entries, newest first, up to `MAX_URLS` new links a poll: the others
        wait for the next polls (counted in `waited`)."""
        feed = parse_feed(response.body, response.url, _headers(response), spec.language,
                          self.settings.getint("DOWNLOAD_MAXSIZE"))
        out: list[Any] = []
        new = waited = 0
        listed_in = read_page(response)
        for entry in newest_first(feed.entries):
            if new >= MAX_URLS and self.is_new(entry):
                waited += 1
                continue
            followed = list(self.follow(spec, entry, listed_in))
            new += any(isinstance(i, (scrapy.Request, ArticleSeen)) for i in followed)
            out.extend(followed)
        yield SourcePolled(spec.name, 200, entries=len(feed.entries), warning=feed.warning,
                           skipped=feed.skipped, waited=waited)
        yield from out

    def parse_sitemap(self, spec: SourceSpec, response: Response) -> Iterator[Any]:
        """A urlset's articles, or an index's child sitemaps (each read once per poll)."""
        parsed = self.read_sitemap(response, spec)
        children = parsed.children[:MAX_SITEMAPS]
        warning = f"{len(parsed.children) - len(children)} child sitemaps beyond the " \
            f"{MAX_SITEMAPS} read per poll" if len(parsed.children) > MAX_SITEMAPS else None
        yield SourcePolled(spec.name, 200, entries=len(parsed.entries), warning=warning,
                           skipped=parsed.skipped)
        yield from self.follow_all(spec, parsed.entries, response)
        for child in children:
            yield response.follow(child, callback=self.parse_child_sitemap,
                                  errback=self.source_failed, dont_filter=True)

    def read_sitemap(self, response: Response, spec: SourceSpec) -> ParsedSitemap:
        return parse_sitemap(response.body, MAX_URLS, spec.since, base=response.url,
                             max_bytes=self.settings.getint("DOWNLOAD_MAXSIZE"),
                             language=spec.language)

    @poll_step
    def parse_child_sitemap(self, response: Response) -> Iterator[Any]:
        spec = self.sources[response.meta["source"]]
        try:
            parsed = self.read_sitemap(response, spec)
        except NotASitemap as exc:
            yield SourceFailed(spec.name, "NotASitemap", f"{response.url}: {exc}",
                               response.status)
            return
        yield MoreEntries(spec.name, len(parsed.entries), parsed.skipped)
        yield from self.follow_all(spec, parsed.entries, response)

    def parse_listing(self, spec: SourceSpec, response: Response, page: int = 1
                      ) -> Iterator[Any]:
        """The links the `links` selector picks (nothing else on the page), and the next
        page's up to `max_pages`."""
        entries = listing_entries(response, spec.links or "a")
        yield SourcePolled(spec.name, 200, entries=len(entries)) if page == 1 \
            else MoreEntries(spec.name, len(entries))
        yield from self.follow_all(spec, entries, response)
        following = response.css(spec.next_page).attrib.get("href") if spec.next_page else None
        if following and page < spec.max_pages:
            yield response.follow(following, callback=self.parse_listing_page,
                                  errback=self.source_failed, dont_filter=True,
                                  meta={"page": page + 1})

    @poll_step
    def parse_listing_page(self, response: Response) -> Iterator[Any]:
        spec = self.sources[response.meta["source"]]
        yield from self.parse_listing(spec, response, response.meta["page"])

    def parse_watched_page(self, spec: SourceSpec, response: Response) -> Iterator[Any]:
        """A page watched for changes: the snapshot goes to storage, which keeps a new
        version when the text changed materially."""
        yield SourcePolled(spec.name, 200, entries=1)
        yield PageSnapshot(spec.name, read_page(response))

    def follow_all(self, spec: SourceSpec, entries: Iterable[FeedEntry], response: Response
                   ) -> Iterator[Any]:
        listed_in = read_page(response)
        for entry in entries:
            yield from self.follow(spec, entry, listed_in)

    def is_new(self, entry: FeedEntry) -> bool:
        """Whether following the entry would fetch or store an article."""
        key = canonical_url(entry.url)
        return key not in self.in_flight and not self.seen(key)

    def follow(self, spec: SourceSpec, entry: FeedEntry, listed_in: Page) -> Iterator[Any]:
        """Fetch the entry's page, or store the entry itself (`follow: false`) with the
        response it was listed in (`listed_in`), whose bytes are then its evidence."""
        key = canonical_url(entry.url)
        if self.seen(key):
            yield KnownLink(spec.name, entry.url, None if entry.outlet else entry.published)
        elif key in self.in_flight:
            self.in_flight[key].append((spec.name, entry.url))
        elif not spec.follow:
            yield ArticleSeen(spec.name, entry, listed_in=listed_in)
        else:
            self.in_flight[key] = []
            yield scrapy.Request(entry.url, callback=self.parse_page, errback=self.page_failed,
                                 cb_kwargs={"entry": entry, "listed_in": listed_in},
                                 dont_filter=True)

    @poll_step
    def parse_page(self, response: Response, entry: FeedEntry, listed_in: Page
                   ) -> Iterator[ArticleSeen]:
        page = read_page(response)
        is_html = (page.content_type or "text/html").encode().lower().startswith(HTML_TYPES)
        yield self._seen(response.meta["source"], entry, page=page if is_html else None,
                         page_error=None if is_html else f"not an HTML page: {page.content_type}",
                         listed_in=None if is_html else listed_in)

    @poll_step
    def page_failed(self, failure: Failure) -> Iterator[ArticleSeen | PageFailed]:
        """A page that is gone (4xx) is stored from its feed entry; any other failure is
        reported and the page is tried again on the next poll."""
        request = failure.request
        entry: FeedEntry = request.cb_kwargs["entry"]
        error_class, message, status = describe_failure(failure)
        if status is not None and 400 <= status < 500:
            yield self._seen(request.meta["source"], entry, page_error=message,
                             listed_in=request.cb_kwargs["listed_in"])
            return
        for source, url in [(request.meta["source"], entry.url),
                            *self.in_flight.pop(canonical_url(entry.url), [])]:
            yield PageFailed(source, url, message,
                             skipped=error_class in ("RobotsDisallowed", "RefusedDestination"))

    def _seen(self, source: str, entry: FeedEntry, **page: Any) -> ArticleSeen:
        extra = self.in_flight.pop(canonical_url(entry.url), [])
        return ArticleSeen(source, entry, also_seen=tuple(extra), **page)

    @poll_step
    def source_failed(self, failure: Failure) -> Iterator[SourceFailed | SourceDeferred]:
        if isinstance(failure.value, HostHeld):  # as a source whose own server said so
            yield SourceDeferred(failure.request.meta["source"], failure.value.until)
            return
        error_class, message, status = describe_failure(failure)
        yield SourceFailed(failure.request.meta["source"], error_class, message, status,
                           retry_after(failure))


def conditional(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """The headers of a conditional GET."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def newest_first(entries: list[FeedEntry]) -> list[FeedEntry]:
    """Dated entries newest first, then the undated ones, each in the feed's order."""
    return sorted(entries, key=lambda e: e.published.timestamp() if e.published else -inf,
                  reverse=True)  # (a stable sort, reversed or not)


def redacted(item: Any, redact: Callable[[str], str]) -> Any:
    """An item with its error or warning text masked: a failure names the URL it failed
    on, and a source's URL may carry a token."""
    for name in ("message", "warning", "page_error"):
        if isinstance(text := getattr(item, name, None), str):
            item = replace(item, **{name: redact(text)})
    return item


def retry_after(failure: Failure) -> datetime | None:
    """When a server that failed the request asked to be called again (Retry-After)."""
    exc = failure.value
    return asked_to_wait(exc.response) if isinstance(exc, HttpError) else None


def asked_to_wait(response: Response) -> datetime | None:
    """When a server answering 429 or 503 asked to be called again (Retry-After)."""
    if response.status not in (429, 503):
        return None
    value = _header(response, b"Retry-After")
    if value and value.strip().isdigit():
        return datetime.now(timezone.utc) + timedelta(seconds=int(value))
    return parse_date(value) if value else None


def describe_failure(failure: Failure) -> tuple[str, str, int | None]:
    """(error class, one readable line, HTTP status) for a failed download."""
    exc = failure.value
    if isinstance(exc, HttpError):
        status = exc.response.status
        return "HTTPError", f"HTTP {status} from {exc.response.url}", status
    host = urlsplit(failure.request.url).netloc if failure.request else "?"
    if isinstance(exc, (DNSLookupError, CannotResolveHostError)):
        return "DNSLookupError", str(exc) or f"DNS lookup of {host} failed", None
    if isinstance(exc, (TwistedTimeout, TCPTimedOutError, TimeoutError, DownloadTimeoutError)):
        limit = failure.request.meta.get("download_timeout") if failure.request else None
        cut_off = f" (cut off after {limit:g}s)" if limit else ""
        return "Timeout", f"no complete response from {host} in time{cut_off}", None
    if isinstance(exc, (ConnectionRefusedError, DownloadConnectionRefusedError)):
        return "ConnectionRefused", f"connection refused by {host}", None
    if isinstance(exc, DownloadCancelledError) and "max size" in str(exc):
        return "TooLarge", f"response from {host} is larger than crawl.max_bytes", None
    if isinstance(exc, IgnoreRequest) and "during decompression" in str(exc):
        return "TooLarge", (f"response from {host} is larger than crawl.max_bytes "
                            "after decompression"), None
    if isinstance(exc, DownloadCancelledError):
        return "Cancelled", f"download from {host} cancelled: {exc}", None
    if isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc):
        return "RobotsDisallowed", f"{failure.request.url} is disallowed by robots.txt", None
    if isinstance(exc, IgnoreRequest):
        return type(exc).__name__, str(exc) or "request skipped", None
    text = str(exc).strip().splitlines()
    return type(exc).__name__, text[0] if text else type(exc).__name__, None


def read_page(response: Response) -> Page:
    """A response as read, fetch time now (its body and headers are kept as evidence)."""
    return Page(response.url, response.body, _header(response, b"Content-Type"),
                response.status, tuple((name.decode("latin-1"), value.decode("latin-1"))
                                       for name, values in response.headers.items()
                                       for value in values),
                datetime.now(timezone.utc))


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _headers(response: Response) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v[0].decode("latin-1")
            for k, v in response.headers.items() if v}
