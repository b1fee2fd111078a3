"""The ingest step driven with items as the spider yields them, without Scrapy: what one
poll of a feed does to the database, the crawl report and the outbox."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from basis.clock import utcnow
from crawler.config import parse_config
from crawler.engine.ingest import Ingest, Rules
from crawler.engine.report import CrawlReport
from crawler.engine.sources import sync_config
from spiders.items import ArticleSeen, FeedEntry, KnownLink, Page, PollDone, SourcePolled
from storage import repository as repo
from storage.db import open_database
from storage.models import Alert, Article

PAGES = Path(__file__).parent / "fixtures" / "web" / "statements"
URL = "https://mss.example/statements/warning-students.html"
CONFIG = """
crawl: {backfill: 36500d}
sources:
  - {name: statements, kind: feed, url: 'https://mss.example/feed.xml', language: zh}
topics:
  - {name: students, query: '留学生 OR student*', channels: [desk]}
channels:
  desk: {type: jsonl, path: alerts.jsonl}
"""


def ingest_for(db_url: str) -> tuple[Ingest, CrawlReport]:
    config = parse_config(CONFIG, env={})
    db = open_database(db_url)
    sync_config(config, db)
    report = CrawlReport.for_sources(["statements"])
    return Ingest(db, report, Rules.of(config)), report


def test_a_polls_items_are_stored_matched_and_alerted(db_url: str) -> None:
    ingest, report = ingest_for(db_url)
    page = Page(URL, (PAGES / "warning-students.html").read_bytes(), "text/html", 200)
    started = utcnow()
    for item in (SourcePolled("statements", 200, etag='"v1"', entries=2),
                 ArticleSeen("statements", FeedEntry(URL, title="提醒"), page),
                 KnownLink("statements", URL + "?utm_source=rss"),  # the same, tracked
                 PollDone("statements", started)):
        ingest(item)

    tally = report.sources["statements"]
    assert (tally.status, tally.new, tally.known, tally.matches, tally.alerts, tally.errors) == \
        ("ok", 1, 1, 1, 1, 0)
    with ingest.db() as session:
        article = session.scalars(select(Article)).one()
        assert article.language == "zh" and "留学生" in article.text
        assert repo.source_by_name(session, "statements").etag == '"v1"'
        alert = session.scalars(select(Alert)).one()
        assert (alert.topic, alert.channel, alert.status) == ("students", "desk", "pending")
        assert repo.sightings_count(article) == 1  # one URL, seen twice


def test_an_item_that_cannot_be_stored_is_counted_never_silent(db_url: str) -> None:
    ingest, report = ingest_for(db_url)
    ingest(ArticleSeen("statements", FeedEntry(URL), Page(URL, b"\xff\xfe<html>", None, 200)))
    ingest(ArticleSeen("unconfigured", FeedEntry(URL + "?other")))  # no such source row

    assert report.unstored == 1
    assert report.sources["unconfigured"].errors == 1
    assert report.sources["statements"].new == 1  # the one before it is stored all the same
