"""The shared real-world corpus (feeds and article pages captured by other projects' test
suites, see its README) through our own feed parser, charset decoding and extraction,
checked against the results the corpus carries wherever our semantics agree; each
disagreement is listed below with its reason. The corpus is never copied here: it is found
at $MEDIAWATCH_CORPUS, else `../shared/corpus` beside the repository, else
/work/shared/corpus, and these tests skip where it is nowhere."""
from __future__ import annotations

import csv
import gzip
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from basis.dates import parse_date
from basis.urls import canonical_url
from crawler.stages.extract import decode_html, extract_article
from spiders.feed import NotAFeed, ParsedFeed, parse_feed, plain_text


def _corpus() -> Path | None:
    here = Path(__file__).resolve().parent.parent
    for place in (os.environ.get("MEDIAWATCH_CORPUS"), here.parent / "shared" / "corpus",
                  "/work/shared/corpus"):
        if place and (Path(place) / "feeds" / "manifest.csv").is_file():
            return Path(place)
    return None


CORPUS = _corpus()
pytestmark = pytest.mark.skipif(CORPUS is None, reason="the shared corpus is not on this "
                                "machine (set MEDIAWATCH_CORPUS to its folder)")


def _manifest(part: str) -> list[dict[str, str]]:
    if CORPUS is None:
        return []
    with open(CORPUS / part / "manifest.csv", newline="", encoding="utf-8") as rows:
        return list(csv.DictReader(rows))


FEEDS = _manifest("feeds")
PAGES = _manifest("html")

# ---------------------------------------------------------------- feeds

NOT_FEEDS = {  # rejected as NotAFeed
    "node-feedparser/notafeed.html", "rss-parser/unrecognized.rss",
    "feed-rs/xml/xml_sample_1.xml", "feed-rs/xml/xml_sample_2.xml",
    "atoma/rss/broken-no-channel.xml",
    # feedjira's "FirstEntry…" files are one entry's markup cut out of a feed
    "feedjira/AmazonWebServicesBlogFirstEntryContent.xml",
    "feedjira/HREFConsideredHarmfulFirstEntry.xml",
    "feedjira/PaulDixExplainsNothingFirstEntryContent.xml",
    "feedjira/TechCrunchFirstEntry.xml", "feedjira/TechCrunchFirstEntryDescription.xml",
    "feedjira/TenderLovemakingFirstEntry.xml",
}
FEED_EXCLUDED = {
    "atoma/atom/broken-xkcd.xml": "atoma rejects a flaw feedparser reads past; its 4 items "
                                  "have links and are kept (a readable feed loses nothing)",
    "atoma/atom/broken-missing-id.xml": "a titled Atom feed without <id> and without entries "
                                        "is a readable empty feed to us",
}


def _feed_body(name: str) -> bytes:
    body = (CORPUS / "feeds" / name).read_bytes()  # type: ignore[operator]
    # as Scrapy's HttpCompressionMiddleware hands it over (Content-Encoding: gzip)
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def _parse(row: dict[str, str]) -> ParsedFeed:
    headers = json.loads(row["http_headers"]) if row["http_headers"] else \
        {"content-type": "application/xml"}
    return parse_feed(_feed_body(row["file"]), f"{BASE}{row['file']}", headers)


BASE = "http://corpus.example/"
ITEM = re.compile(rb"<(?:\w+:)?(?:item|entry)[\s/>]")


@pytest.mark.parametrize("row", FEEDS, ids=[r["file"] for r in FEEDS])
def test_feed(row: dict[str, str]) -> None:
    name = row["file"]
    if name in FEED_EXCLUDED:
        pytest.skip(FEED_EXCLUDED[name])
    if name in NOT_FEEDS:
        with pytest.raises(NotAFeed, match="not an RSS or Atom feed|an HTML page"):
            _parse(row)
    elif "/broken-" in name or re.search("error|reject", row["test_condition"]):
        # the source project rejects it; we read what is readable, never quietly
        assert _parse(row).warning
    else:
        _check_feed(row, _parse(row))


def _check_feed(row: dict[str, str], feed: ParsedFeed) -> None:
    """Every item is an entry or counted in the warning (an item with no http(s) link),
    and the entries carry the titles, links and dates the source project expects."""
    items = int(row["expected_entries"] or 0) or _item_count(row["file"])
    skipped = re.search(r"(\d+) of \d+ items skipped", feed.warning or "")
    assert len(feed.entries) + (int(skipped[1]) if skipped else 0) == items
    if not row["expected_file"]:
        return
    expected = [e for e in _expected_entries(row["expected_file"]) if e["urls"]]
    assert len(feed.entries) == len(expected)
    for entry, wanted in zip(feed.entries, expected, strict=True):
        assert any(_same_url(entry.url, url) for url in wanted["urls"])
        if "\ufffd" in (wanted["title"] or ""):  # the source project mis-decoded it
            assert "\ufffd" not in entry.title
        else:
            assert entry.title == plain_text(wanted["title"] or "")
        if wanted["date"] and (date := parse_date(wanted["date"])) is not None:
            assert entry.published == date


def _item_count(name: str) -> int:
    body = _feed_body(name)
    return len(json.loads(body)["items"]) if name.endswith(".json") else len(ITEM.findall(body))


def _same_url(ours: str, theirs: str) -> bool:
    """Theirs as feed-rs keeps it: host case and fragment as written, relative to xml:base
    when relative (we resolve it)."""
    if urlsplit(theirs).scheme:
        return canonical_url(ours) == canonical_url(theirs)
    return ours.endswith(theirs.lstrip("./"))


def _expected_entries(name: str) -> list[dict[str, Any]]:
    """Entries as feed-rs (`*.serde.json`) or rss-parser (`expected/*.json`) expect them,
    with the URLs an item can be read from: its links, or an id that is an http(s) URL
    (a permalink guid; feed-rs keeps it as the id). Others have no usable link."""
    raw = (CORPUS / "feeds" / name).read_bytes()  # type: ignore[operator]
    data = json.loads(raw.decode("utf-8", errors="replace"))
    if name.endswith(".serde.json"):
        entries = [(e.get("title") or {}, [link["href"] for link in e.get("links", [])],
                    e.get("id") or "", e.get("published") or e.get("updated"))
                   for e in data.get("entries", [])]
        return [{"title": title.get("content"), "date": date, "urls": _urls(links, guid)}
                for title, links, guid, date in entries]
    return [{"title": i.get("title"), "date": i.get("isoDate") or i.get("pubDate"),
             "urls": _urls([i.get("link") or ""], i.get("guid") or "")}
            for i in data.get("feed", data).get("items", [])]


def _urls(links: list[str], guid: str) -> list[str]:
    """http(s) and relative links (resolved against the feed's URL), and the id when it is
    an http(s) URL."""
    return [u for u in links if u and (_web(u) or not urlsplit(u).scheme)] + \
        ([guid] if _web(guid) else [])


def _web(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("http", "https")


# ---------------------------------------------------------------- article pages

MOJIBAKE = re.compile(r"Ã[\x80-\xbf]|â€|\ufffd")  # UTF-8 read as cp1252, or undecodable
PAGE_EXCLUDED = {  # (file, check): why our semantics differ
    ("goose3/content/test_businessWeek1.html", "text"): "goose's prefix is a standfirst "
                                                        "trafilatura leaves out",
    ("goose3/content/test_businessWeek2.html", "text"): "the same: a standfirst left out",
    ("goose3/content/test_businessWeek3.html", "text"): "the same: a standfirst left out",
    ("goose3/content/test_wiwo.html", "text"): "the same: a standfirst left out",
    ("goose3/content/test_yahoo.html", "text"): "goose starts at the AP dateline, "
                                                "trafilatura at a later paragraph",
    ("goose3/content/test_issue24.html", "text"): "goose-specific: which of two text nodes "
                                                  "wins its scoring",
    ("newspaper/lifebuzz.com1.html", "text"): "newspaper's text keeps share and newsletter "
                                              "boilerplate we drop",
    ("newspaper/upworthy.com2.html", "text"): "a video transcript: trafilatura takes the "
                                              "site's fact-check blurb (a known miss)",
}
MIN_GOLD_WORDS = 50  # newspaper's shorter outputs are stubs (a caption, a byline), not text


@pytest.mark.parametrize("row", PAGES, ids=[r["html_file"] for r in PAGES])
def test_page(row: dict[str, str]) -> None:
    """Decoded by its own declaration, extracted with no mojibake, in the expected language,
    with the expected title and date, and the expected text at its start (goose3 prefixes)
    or most of the expected words in it (newspaper's full texts)."""
    name, root = row["html_file"], CORPUS / "html"  # type: ignore[operator]
    found = extract_article(decode_html((root / name).read_bytes()), row["url"] or BASE)
    assert not MOJIBAKE.search(found.title + found.text)
    if language := row["lang"].split(" ")[0]:
        assert found.language == language
    expected = json.loads((root / row["gold_meta_file"]).read_text(encoding="utf-8")) \
        .get("expected", {}) if row["gold_meta_file"] else {}
    if title := _flat(row["title"] or expected.get("title") or ""):
        # with or without the site's name around it ("… | TechCrunch"): a matter of taste
        assert found.title and (title in _flat(found.title) or _flat(found.title) in title)
    date = expected.get("publish_datetime_utc") or expected.get("publish_date")
    if date and (name, "date") not in PAGE_EXCLUDED:
        assert found.published_at == parse_date(date)
    if row["gold_text_file"] and (name, "text") not in PAGE_EXCLUDED:
        gold = (root / row["gold_text_file"]).read_text(encoding="utf-8")
        if row["gold_type"].startswith("prefix"):
            # at the start, after at most a kicker, caption or headline trafilatura keeps
            assert 0 <= _flat(found.text).find(_flat(gold)[:40]) <= 600
        elif len(words := re.findall(r"\w+", gold.lower())) >= MIN_GOLD_WORDS:
            ours = set(re.findall(r"\w+", found.text.lower()))
            assert sum(word in ours for word in words) >= 0.8 * len(words)


def _flat(text: str) -> str:
    return " ".join(text.split())
