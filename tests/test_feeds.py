"""Feeds that lose or invent nothing: RSS guids by the rules of isPermaLink, gzipped feed
files, JSON Feed, an HTML page at a feed's URL."""
from __future__ import annotations

import gzip
import json
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from scrapy import Request
from scrapy.http import XmlResponse
from scrapy.utils.test import get_crawler

from basis.clock import utcnow
from crawler.cli.views import report_json
from crawler.config import parse_config
from crawler.engine.ingest import Ingest, Rules
from crawler.engine.report import CrawlReport
from crawler.engine.sources import sync_config
from spiders.feed import NotAFeed, parse_feed
from spiders.items import PollDone, SourcePolled, SourceSpec
from spiders.source import SourceSpider
from storage import repository as repo
from storage.db import open_database
from tests.conftest import Cli, web_config
from tests.webserver import FixtureWeb

FEED_URL = "http://feeds.example/news/rss.xml"


def rss(*items: str) -> bytes:
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            + "".join(f"<item>{item}</item>" for item in items) + "</channel></rss>").encode()


def source_row(result, name: str) -> dict:
    return next(s for s in result.json()["sources"] if s["source"] == name)


def test_a_guid_is_the_link_only_as_a_full_permalink_url() -> None:
    feed = parse_feed(rss(
        "<title>bare</title><guid>12345</guid>",  # an id, not a page on the feed's host
        '<title>not a permalink</title><guid isPermaLink="false">http://news.example/b</guid>',
        "<title>permalink</title><guid>http://news.example/c</guid>",
        "<title>relative link</title><guid>999</guid><link>d.html</link>",
    ), FEED_URL, {})
    assert [e.url for e in feed.entries] == ["http://news.example/c",
                                             "http://feeds.example/news/d.html"]
    assert feed.skipped == 2 and "2 of 4 items skipped" in (feed.warning or "")


def test_a_gzipped_feed_inflates_only_up_to_max_bytes() -> None:
    body = gzip.compress(rss("<title>a</title><link>http://news.example/a</link>"))
    assert [e.url for e in parse_feed(body, FEED_URL, {}).entries] == ["http://news.example/a"]
    bomb = gzip.compress(b"<rss>" + b" " * 2_000_000)
    with pytest.raises(NotAFeed, match="max_bytes"):
        parse_feed(bomb, FEED_URL, {}, max_bytes=1_000_000)


def test_a_feed_served_as_a_gz_file_is_crawled_and_invents_no_article(
        cli: Cli, web: FixtureWeb) -> None:
    (web.root / "feeds" / "numbered.xml.gz").write_bytes(gzip.compress(rss(
        "<title>Warning</title><link>/statements/warning-students.html</link><guid>1001</guid>",
        "<title>Only an id</title><guid>1002</guid>",
        "<title>Permalink</title><guid>http://news.example/permalink.html</guid>")))
    cli.write_config(web_config(web, {"name": "numbered", "kind": "feed", "follow": False,
                                      "url": "/feeds/numbered.xml.gz"}))
    result = cli("crawl", "--json", "--no-alerts")
    assert result.code == 0, result.err
    row = source_row(result, "numbered")
    assert (row["status"], row["items"], row["skipped"]) == ("warning", 2, 1)
    assert "'1002'" in row["message"]
    assert {a["url"] for a in cli("articles", "list", "--json").json()} == {
        web.url("/statements/warning-students.html"), "http://news.example/permalink.html"}


JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1", "title": "Statements", "language": "zh-CN",
    "items": [
        {"id": "1", "url": "/statements/warning-students.html", "title": "提醒",
         "content_html": "<p>国家安全部提醒<b>留学生</b></p>",
         "date_published": "2026-11-27T08:00:00"},  # zone-less: the feed's language's zone
        {"id": "2", "external_url": "https://other.example/report", "title": "Report",
         "content_text": "A report.", "date_published": "2026-11-27T01:00:00Z"},
        {"id": "3", "title": "No link at all"},
    ]}


def test_json_feed_items_are_read() -> None:
    feed = parse_feed(json.dumps(JSON_FEED).encode(), FEED_URL, {})
    first, second = feed.entries
    assert first.url == "http://feeds.example/statements/warning-students.html"
    assert (first.title, first.content, first.language) == ("提醒", "国家安全部提醒留学生", "zh")
    assert first.published == datetime(2026, 11, 27, 0, 0, tzinfo=timezone.utc)
    assert second.url == "https://other.example/report"
    assert second.published == datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc)
    assert feed.skipped == 1 and "'No link at all'" in (feed.warning or "")
    with pytest.raises(NotAFeed, match="JSON Feed"):
        parse_feed(b'{"items": []}', FEED_URL, {})


def test_html_at_a_feed_url_names_its_feeds_and_json_feed_is_crawled(
        cli: Cli, web: FixtureWeb) -> None:
    (web.root / "news.html").write_text(
        '<!DOCTYPE html><html><head><title>News</title>'
        '<link rel="alternate" type="application/rss+xml" href="/feeds/statements.xml">'
        '<link rel="alternate" type="application/atom+xml" href="feeds/coverage.atom">'
        '<link rel="stylesheet" href="/site.css"></head><body><p>Latest news</p></body></html>')
    (web.root / "feeds" / "statements.json").write_text(json.dumps(JSON_FEED))
    cli.write_config(web_config(
        web, {"name": "homepage", "kind": "feed", "url": "/news.html"},
        {"name": "json", "kind": "feed", "url": "/feeds/statements.json", "follow": False}))
    result = cli("crawl", "--json", "--no-alerts")
    homepage = source_row(result, "homepage")
    assert homepage["status"] == "failed"
    assert "HTML page" in homepage["message"]
    assert f'{web.url("/feeds/statements.xml")}, {web.url("/feeds/coverage.atom")}' \
        in homepage["message"]
    assert (source_row(result, "json")["items"], source_row(result, "json")["skipped"]) == (2, 1)
    assert {a["title"] for a in cli("articles", "list", "--json").json()} == {"提醒", "Report"}



def feed_poll(body: bytes, known: set[str]) -> list[object]:
    """One poll of a feed through the spider, with `known` URLs already stored."""
    spec = SourceSpec("many", "feed", "http://news.example/feed.xml")
    spider = SourceSpider.from_crawler(get_crawler(SourceSpider), [spec],
                                       seen=known.__contains__)
    request = spider.poll(spec)
    return list(spider.parse_source(XmlResponse(spec.url, body=body, request=request)))


def test_a_feed_poll_follows_at_most_1000_new_links_newest_first() -> None:
    dates = [datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(minutes=i)
             for i in range(1010)]
    items = [f"<link>http://news.example/{i}</link><pubDate>{format_datetime(d)}</pubDate>"
             for i, d in enumerate(dates)]
    random.Random(15).shuffle(items)  # newest first, whatever the feed's order
    body = rss(*items)
    first = feed_poll(body, set())
    fetched = {r.url for r in first if isinstance(r, Request)}
    assert fetched == {f"http://news.example/{i}" for i in range(10, 1010)}
    assert next(i for i in first if isinstance(i, SourcePolled)).waited == 10

    later = feed_poll(body, fetched)  # the ten that waited come next
    assert {r.url for r in later if isinstance(r, Request)} == \
        {f"http://news.example/{i}" for i in range(10)}
    assert next(i for i in later if isinstance(i, SourcePolled)).waited == 0


def test_links_that_waited_keep_the_feed_from_answering_304_and_are_counted(
        db_url: str) -> None:
    """The feed's validators are not kept when links waited: they would be lost on a 304."""
    config = parse_config("sources: [{name: many, kind: feed, url: 'http://news.example/f'}]",
                          env={})
    db = open_database(db_url)
    sync_config(config, db)
    report = CrawlReport.for_sources(["many"])
    ingest = Ingest(db, report, Rules.of(config))
    ingest(SourcePolled("many", 200, etag='"v1"', last_modified="Tue, 01 Dec 2026 10:00:00 GMT",
                        entries=1010, waited=10))
    ingest(PollDone("many", utcnow()))
    with db() as session:
        row = repo.source_by_name(session, "many")
        assert (row.etag, row.last_modified) == (None, None)
    assert report.totals()["waited"] == 10
    assert report_json(report)["sources"][0]["waited"] == 10
    assert "10 new links wait for the next poll" in (report.sources["many"].message or "")


def test_a_page_misdated_by_its_url_keeps_its_stated_time_and_alerts(
        cli: Cli, web: FixtureWeb) -> None:
    """The URL says eight days ago (behind the backfill window); the page says an hour ago."""
    stated = utcnow().replace(microsecond=0) - timedelta(hours=1)
    path = f"/coverage/{stated - timedelta(days=8):%Y/%m/%d}/warning.html"
    (web.root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (web.root / path.lstrip("/")).write_text(
        "<html lang='en'><head><title>Ministry warns students</title><meta property="
        f"'article:published_time' content='{stated.isoformat()}'></head><body><article>"
        "<h1>Ministry warns students</h1><p>" + "The ministry warned students abroad about "
        "recruitment by foreign agencies. " * 20 + "</p></article></body></html>")
    (web.root / "feeds" / "misdated.xml").write_bytes(rss(
        f"<title>Ministry warns students</title><link>{path}</link>"))  # no feed date
    config = web_config(web, {"name": "misdated", "kind": "feed", "url": "/feeds/misdated.xml"},
                        backfill="2d")
    config["topics"] = [{"name": "students", "query": "student*", "channels": ["desk"]}]
    config["channels"] = {"desk": {"type": "jsonl", "path": "alerts.jsonl"}}
    cli.write_config(config)
    result = cli("crawl", "--json", "--no-alerts")
    assert result.code == 0, result.err
    assert result.json()["totals"]["alerts"] == 1
    [article] = cli("articles", "list", "--json").json()
    assert article["published_at"] == stated.isoformat()


def test_an_html_page_names_only_its_first_web_feeds() -> None:
    links = "".join(f'<link rel="alternate" type="application/rss+xml" href="/f{n}.xml">'
                    for n in range(20))
    page = ('\ufeff<!-- a comment --><html><head><link rel="alternate" '
            f'type="application/rss+xml" href="javascript:alert(1)">{links}</head></html>')
    with pytest.raises(NotAFeed) as err:
        parse_feed(page.encode(), "https://news.example/feed", {})
    named = str(err.value).split("advertises: ")[1].split(" (")[0].split(", ")
    assert named == [f"https://news.example/f{n}.xml" for n in range(5)]
