"""Pure extraction: bytes of an article page → decoded HTML → text, title, date, language,
canonical link."""
from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any

import charset_normalizer
import lxml.etree
import lxml.html
import trafilatura
from htmldate.core import DATE_ATTRIBUTES
from w3lib.encoding import (
    html_body_declared_encoding,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)

from basis.dates import parse_date, zone_for_language
from basis.languages import language_of

_DATE_PARAMS = {"extensive_search": True, "original_date": True, "deferred_url_extractor": True,
                "outputformat": "%Y-%m-%dT%H:%M:%S%z"}
_TIME_XPATHS = ("//time[@pubdate]/@datetime", "//article//time/@datetime")
GENERATED = frozenset({"timestamp", "gentime", "meta"})  # when the page was made, not the article
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str
    published_at: datetime | None
    language: str | None
    canonical: str | None


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode a page by BOM, then HTTP header, then `<meta>`, then detection. GBK and GB2312
    decode as GB18030 and Big5 as Big5-HKSCS (their supersets); a declared charset that
    does not decode cleanly is not trusted. A page that is valid non-ASCII UTF-8 is read as
    UTF-8 whatever pre-Unicode charset it declares: the declaration is stale. A single-byte
    one (latin-1, cp1252) decodes any bytes ("kilÃ³metros"), and GB18030 decodes short
    UTF-8 Chinese as other Chinese ("新闻" → "鏂伴椈"); real GBK, Big5 or
    latin-1 text is almost never valid UTF-8."""
    bom, _ = read_bom(body)
    declared = [bom, http_content_type_encoding(content_type or ""),
                html_body_declared_encoding(body)]
    utf8 = None if body.isascii() else _strict(body, "utf-8")
    for name in filter(None, declared):
        text = utf8 if utf8 is not None and _legacy(name) else _strict(body, name)
        if text is not None:
            return text
    return _strict(body, detect_encoding(body)) or body.decode("utf-8", errors="replace")


def _legacy(name: str) -> bool:
    """A charset from before Unicode (not UTF-8, -16 or -32)."""
    try:
        return not codecs.lookup(resolve_encoding(name) or name).name.startswith("utf")
    except LookupError:
        return False


def detect_encoding(body: bytes) -> str:
    if _strict(body, "utf-8") is not None:
        return "utf-8"
    best = charset_normalizer.from_bytes(body).best()
    return resolve_encoding(best.encoding) if best else "utf-8"


def _strict(body: bytes, name: str) -> str | None:
    codec = resolve_encoding(name) or name
    try:
        return body.decode(codec).removeprefix("\ufeff")
    except (LookupError, UnicodeDecodeError):
        return None


def extract_article(html: str, url: str) -> Extracted:
    """Main text and metadata of an article page (trafilatura), plus the page's own
    declaration of its canonical URL and language."""
    html = _XML_DECLARATION.sub("", html, count=1)
    tree = _parse(html)
    canonical = _first(tree, '//link[@rel="canonical"]/@href',
                       '//meta[@property="og:url"]/@content')
    lang = _first(tree, "/html/@lang", '//meta[@http-equiv="content-language"]/@content')
    doc = None if tree is None else trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False,
        date_extraction_params=_DATE_PARAMS)
    if doc is None and tree is not None:  # too thin for a main text: still its title and date
        doc = trafilatura.extract_metadata(html, default_url=url, date_config=_DATE_PARAMS)
    text = (doc.text or "") if doc else ""
    title = (doc.title or "") if doc else ""
    language = language_of(text or title, declared=lang)
    zone = zone_for_language(language)
    published = stated_date(tree, zone) or parse_date(doc.date if doc else None, zone)
    return Extracted(title=title.strip(), text=text.strip(), published_at=published,
                     language=language, canonical=canonical)


def stated_date(tree: lxml.html.HtmlElement | None, zone: tzinfo) -> datetime | None:
    """The publication time a page states, with its time of day (a zone-less one read in
    `zone`). First the metadata that says "published" (`article:published_time` and its
    kin, `itemprop="datePublished"`, JSON-LD `datePublished`, outermost first), then other
    date metadata htmldate knows and `<time datetime>` (marked `pubdate`, in the
    `<article>`, or the page's only one); within each, a value with a time of day first.
    It wins over trafilatura's date, which is the date in the URL path whenever there is
    one (`/2026/11/28/…` dated 00:00 though the page says 5 December, 20:38)."""
    if tree is None:
        return None
    dates = [(rank, not _has_time(value), date) for rank, value in _stated_values(tree)
             if (date := _date_of(value, zone)) is not None]
    return min(dates, key=lambda found: found[:2])[2] if dates else None


def _stated_values(tree: lxml.html.HtmlElement) -> Iterator[tuple[int, Any]]:
    """(rank, value) of each date the page states: 0 says published, 1 is any date."""
    for meta in tree.xpath("//meta[@content]"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "")
        key = key.strip().lower()
        if key in DATE_ATTRIBUTES and key not in GENERATED:
            yield (0 if "pub" in key else 1), meta.get("content")
    for element in tree.xpath('//*[@itemprop="datePublished"]'):
        yield 0, element.get("datetime") or element.get("content") or element.text_content()
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        try:
            yield from ((0, date) for date in _json_ld_dates(json.loads(script, strict=False)))
        except ValueError:
            continue
    for xpath in _TIME_XPATHS:
        yield from ((1, value) for value in tree.xpath(xpath)[:1])
    if len(times := tree.xpath("//time/@datetime")) == 1:  # not a masthead's "today" too
        yield 1, times[0]


def _json_ld_dates(document: Any) -> Iterator[Any]:
    """Every `datePublished` in a JSON-LD document (its `@graph`, lists, nested objects),
    outermost first: the page's own before a part's."""
    level = [document]
    while level:
        dates = [node["datePublished"] for node in level
                 if isinstance(node, dict) and "datePublished" in node]
        yield from dates
        level = [child for node in level
                 for child in (node.values() if isinstance(node, dict) else
                               node if isinstance(node, list) else ())]


def _has_time(value: Any) -> bool:
    return not isinstance(value, str) or re.search(r"\d:\d\d", value) is not None


def _date_of(value: Any, zone: tzinfo) -> datetime | None:
    """A stated date: a string, or a Unix time in seconds or milliseconds (JSON-LD)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_date(value, zone) if isinstance(value, str) else None


def _parse(html: str) -> lxml.html.HtmlElement | None:
    try:
        return lxml.html.fromstring(html) if html.strip() else None
    except (ValueError, lxml.etree.ParserError):
        return None


def _first(tree: lxml.html.HtmlElement | None, *xpaths: str) -> str | None:
    for xpath in xpaths:
        values = tree.xpath(xpath) if tree is not None else []
        if values and str(values[0]).strip():
            return str(values[0]).strip()
    return None
