"""Sitemaps: urlsets, sitemap indexes and Google News sitemaps, plain or gzipped, read as a
stream so a 50,000-URL sitemap costs little more memory than its bytes."""
from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin

from lxml import etree

from basis.dates import parse_date, zone_for_language
from basis.errors import FetchError
from basis.xml import XML_SAFETY
from spiders.items import FeedEntry


class NotASitemap(FetchError):
    """The body could not be read as a sitemap."""


class _TooLarge(OSError):
    """A gzipped sitemap inflated past crawl.max_bytes (a decompression bomb, or just big)."""


@dataclass
class ParsedSitemap:
    children: list[str] = field(default_factory=list)  # sitemaps an index points to
    entries: list[FeedEntry] = field(default_factory=list)
    skipped: int = 0  # URLs beyond the cap, or older than `since`


def parse_sitemap(body: bytes, max_urls: int, since: datetime | None = None,
                  max_bytes: int = 50_000_000, base: str | None = None,
                  language: str | None = None) -> ParsedSitemap:
    """The child sitemaps and the article URLs of a sitemap (at most `max_urls`; those
    dated before `since` skipped; relative ones resolved against `base`; zone-less dates
    read in the zone of `language` or of the entry's news:language). Entities are never
    expanded or fetched."""
    parsed = ParsedSitemap()
    try:
        for element in _elements(_stream(body, max_bytes)):
            name = etree.QName(element).localname
            if name == "sitemap" and (loc := _text(element, "loc")):
                parsed.children.append(urljoin(base or "", loc))
            elif name == "url" and (entry := _entry(element, base, language)) is not None:
                too_old = since is not None and entry.published is not None \
                    and entry.published < since
                if too_old or len(parsed.entries) >= max_urls:
                    parsed.skipped += 1
                else:
                    parsed.entries.append(entry)
    except _TooLarge as exc:
        raise NotASitemap(str(exc)) from None
    except (etree.XMLSyntaxError, OSError, EOFError, zlib.error) as exc:
        if not parsed.children and not parsed.entries:
            raise NotASitemap(f"not a sitemap: {str(exc).splitlines()[0]}") from None
    if not parsed.children and not parsed.entries and not parsed.skipped:
        raise NotASitemap("not a sitemap: no <url> or <sitemap> entries")
    return parsed


def _stream(body: bytes, max_bytes: int) -> io.BufferedIOBase:
    """The XML bytes: gunzipped when gzipped (a .xml.gz file), never past `max_bytes`."""
    if body[:2] == b"\x1f\x8b":
        return _Capped(gzip.GzipFile(fileobj=io.BytesIO(body)), max_bytes)
    return io.BytesIO(body)


class _Capped(io.BufferedIOBase):
    def __init__(self, raw: io.BufferedIOBase, limit: int) -> None:
        self.raw, self.left = raw, limit

    def read(self, size: int | None = -1) -> bytes:
        chunk = self.raw.read(min(size, 65536) if size and size > 0 else 65536)
        self.left -= len(chunk)
        if self.left < 0:
            raise _TooLarge("sitemap larger than crawl.max_bytes once decompressed")
        return chunk


def _elements(stream: io.BufferedIOBase) -> Iterator[etree._Element]:
    """Each <url> and <sitemap> element, freed once read."""
    for _, element in etree.iterparse(stream, events=("end",), remove_comments=True,
                                      **XML_SAFETY):
        if etree.QName(element).localname in ("url", "sitemap"):
            yield element
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]


def _entry(url: etree._Element, base: str | None, language: str | None) -> FeedEntry | None:
    loc = urljoin(base or "", _text(url, "loc"))
    if not loc:
        return None
    news = next((e for e in url if etree.QName(e).localname == "news"), None)
    news_language = None
    if news is not None:
        publication = next((e for e in news if etree.QName(e).localname == "publication"), None)
        news_language = _text(publication, "language") if publication is not None else None
    zone = zone_for_language(language or news_language)
    published = parse_date(_text(news, "publication_date") if news is not None else None,
                           zone) or parse_date(_text(url, "lastmod"), zone)
    return FeedEntry(url=loc, title=_text(news, "title") if news is not None else "",
                     published=published,
                     language=news_language.split("-")[0].lower() if news_language else None)


def _text(parent: etree._Element | None, name: str) -> str:
    if parent is None:
        return ""
    for child in parent:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return (child.text or "").strip()
    return ""
