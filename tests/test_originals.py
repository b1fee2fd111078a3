"""Which copy of a story is its original, whatever the order the polls bring them in: an
official source's version, else the earliest publication (issue 15, item 6); the outlet's
own article, never a news search's pointer to it (item 7)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from crawler.config import parse_config
from crawler.engine.ingest import Ingest, Rules
from crawler.engine.report import CrawlReport
from crawler.engine.sources import sync_config
from crawler.stages.normalize import text_fingerprint
from spiders.items import ArticleSeen, FeedEntry, KnownLink, Page
from storage import repository as repo
from storage.db import open_database
from storage.models import Alert, Article, Story, StoryLink
from tests.conftest import Cli, web_config
from tests.test_crawl import COVERAGE, STATEMENTS, by_path
from tests.test_dedupe import REPRINTS
from tests.webserver import FixtureWeb

WEB = Path(__file__).parent / "fixtures" / "web"
WARNINGS = {"name": "warnings", "query": "国家安全部 AND 留学生", "channels": ["desk"]}


def alerted(cli: Cli) -> list[dict]:
    path = cli.config.parent / "alerts.jsonl"
    lines = path.read_text("utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def test_the_official_statement_takes_over_from_a_reprint_polled_before_it(
        cli: Cli, web: FixtureWeb) -> None:
    config = web_config(web, REPRINTS, backfill="36500d")
    config |= {"topics": [WARNINGS], "channels": {"desk": {"type": "jsonl",
                                                           "path": "alerts.jsonl"}}}
    cli.write_config(config)
    assert cli("crawl", "--no-alerts").code == 0  # the Traditional reprint: the original so far

    config["sources"].append(web_config(web, dict(STATEMENTS, official=True))["sources"][0])
    cli.write_config(config)
    crawl = cli("crawl", "--json")
    assert crawl.code == 0, crawl.err
    statements = next(s for s in crawl.json()["sources"] if s["source"] == "statements")
    assert (statements["new"], statements["alerts"]) == (3, 0)

    originals = by_path(cli("articles", "list", "--json").json())
    assert not [path for path in originals if path.startswith("reprints/warning")]
    statement = originals["statements/warning-students.html"]
    assert statement["topics"] == ["warnings"]
    copies = by_path(cli("articles", "list", "--all", "--json").json())
    assert {p: a["duplicate_of"] for p, a in copies.items() if p.startswith("reprints/warn")} \
        == {"reprints/warning-students-hk.html": statement["id"],
            "reprints/warning-students-farm.html": statement["id"]}
    assert all(copies[p]["topics"] == [] for p in copies if p.startswith("reprints/"))
    shown = cli("articles", "show", str(statement["id"]), "--json").json()
    assert {(s["source"], s["url"].split("/", 3)[3]) for s in shown["seen_at"]} == {
        ("statements", "statements/warning-students.html"),
        ("reprints", "reprints/warning-students-hk.html"),
        ("reprints", "reprints/warning-students-farm.html")}
    story = cli("stories", "show", str(statement["story_id"]), "--json").json()
    assert story["headline"] == statement["title"] == "国家安全部提醒：警惕境外间谍情报机关对留学生拉拢策反"

    (alert,) = alerted(cli)  # the reprint's alert waited: it names the official statement
    (item,) = alert["items"]
    assert (item["title"], item["source"]) == (statement["title"], "statements")
    listed = cli("alerts", "list", "--json").json()
    assert [a["story_id"] for a in listed] == [statement["story_id"]]


CONFIG = """
crawl: {backfill: 36500d}
sources:
  - {name: reprints, kind: feed, url: 'https://hk.example/feed.xml'}
  - {name: statements, kind: feed, url: 'https://mss.example/feed.xml', official: true}
topics:
  - {name: warnings, query: '国家安全部 AND 留学生', channels: [desk]}
channels:
  desk: {type: jsonl, path: alerts.jsonl}
"""


def ingest_of(config_text: str, db_url: str) -> tuple[Ingest, CrawlReport]:
    """The ingest step of a crawl of the config's sources, and its report."""
    config = parse_config(config_text, env={})
    db = open_database(db_url)
    sync_config(config, db)
    report = CrawlReport.for_sources([source.name for source in config.sources])
    return Ingest(db, report, Rules.of(config)), report


def seen(source: str, path: str, hour: int, host: str | None = None) -> ArticleSeen:
    """A fixture page as a poll of `source` brings it (from `host`, else the source's own),
    published on 27 Nov at `hour` UTC."""
    url = f"https://{host or source}.example/{path}"
    return ArticleSeen(source, FeedEntry(url, published=datetime(2026, 11, 27, hour,
                                                                   tzinfo=timezone.utc)),
                       Page(url, (WEB / path).read_bytes(), "text/html", 200))


def test_an_official_version_outranks_an_earlier_copy_and_alerts_no_one_again(
        db_url: str) -> None:
    ingest, report = ingest_of(CONFIG, db_url)
    db = ingest.db

    ingest(seen("reprints", "reprints/warning-students-farm.html", 10))
    ingest(seen("reprints", "reprints/warning-students-hk.html", 7))  # earlier: takes over
    with db.begin() as session:
        (hk,) = session.scalars(select(Article).where(Article.duplicate_of.is_(None))).all()
        assert hk.url.endswith("-hk.html") and len(hk.copies) == 1
        session.execute(update(Alert).values(status="sent"))  # the story is alerted
    ingest(seen("statements", "statements/warning-students.html", 9))  # later, but official

    tally = report.sources["statements"]
    assert (tally.new, tally.matches, tally.alerts) == (1, 1, 0)
    with db() as session:
        statement = session.scalars(select(Article).where(Article.url.contains("statements/")
                                                          )).one()
        assert statement.duplicate_of is None and statement.story_id == hk.story_id
        assert {a.url.rsplit("/", 1)[1] for a in statement.copies} == {
            "warning-students-hk.html", "warning-students-farm.html"}
        assert session.get(Story, hk.story_id).headline == statement.title
        assert [m.topic for m in statement.matches] == ["warnings"]
        assert session.scalars(select(Alert.article_id)).all() == [hk.id]  # sent, not again


SYNDICATED = """
crawl: {backfill: 36500d}
sources:
  - {name: partner, kind: feed, url: 'https://partner.example/feed.xml'}
  - {name: reprints, kind: feed, url: 'https://wire.example/feed.xml'}
topics:
  - {name: subversion, query: '"state security" AND student*', channels: [desk]}
channels:
  desk: {type: jsonl, path: alerts.jsonl}
"""


@pytest.mark.parametrize("read", ["page", "listing"])
def test_a_page_read_after_a_copy_that_named_it_canonical_dates_its_story(
        db_url: str, read: str) -> None:
    """A partner's feed lists its copy of the coverage (20:00; the copy's page names the
    coverage page canonical) before the coverage page itself (14:00). The copy, read first,
    is stored under the coverage's URL, and a wire reprint (19:00) takes the story's
    original place from it. The coverage page, read last (or only listed: a link already
    stored is not fetched again), is no new article: the article it is takes the page's URL
    and date, and the original's place back with its alert. (Before: the coverage page was
    a mere sighting, and the wire reprint stayed the original, or not, by which feed was
    read first.)"""
    ingest, report = ingest_of(SYNDICATED, db_url)
    db = ingest.db
    ingest(seen("partner", "syndicated/students-subverted-copy.html", 20))
    ingest(seen("reprints", "reprints/students-subverted-wire.html", 19))
    with db() as session:
        (wire,) = session.scalars(select(Article).where(Article.duplicate_of.is_(None))).all()
        assert wire.url.endswith("-wire.html")  # earlier than the copy: the original so far

    page = seen("partner", "coverage/2026/11/students-subverted.html", 14)
    ingest(page if read == "page" else KnownLink("partner", page.entry.url,
                                                 page.entry.published))
    assert (report.sources["partner"].new, report.sources["partner"].known) == (1, 1)
    with db() as session:
        (original,) = session.scalars(select(Article).where(Article.duplicate_of.is_(None)))
        assert original.url == "https://partner.example/coverage/2026/11/students-subverted.html"
        assert original.published_at == datetime(2026, 11, 27, 14, tzinfo=timezone.utc)
        assert [a.id for a in original.copies] == [wire.id]
        assert [m.topic for m in original.matches] == ["subversion"]
        assert session.scalars(select(Alert.article_id)).all() == [original.id]
        assert session.get(Story, original.story_id).headline == original.title
        assert repo.sightings_count(original) == 3  # the copy, the reprint, the page


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_outlets_feed_polled_after_a_partners_copy_dates_the_story(
        cli: Cli, web: FixtureWeb) -> None:
    """The partner's feed lists only its copy; the outlet's feed, polled later, lists the
    page the copy names canonical: a link already stored, not fetched, whose date makes the
    outlet's article the story's original (the spider hands the listing's date over)."""
    feed = (web.root / "feeds" / "syndication.xml").read_text("utf-8")
    first_item = feed.index("<item>")
    (web.root / "feeds" / "_partner.xml").write_text(  # its second item only: the copy
        feed[:first_item] + feed[feed.index("<item>", first_item + 1):], "utf-8")
    partner = {"name": "partner", "kind": "feed", "url": "/feeds/_partner.xml"}
    for sources in ([partner, REPRINTS], [partner, REPRINTS, COVERAGE]):
        cli.write_config(web_config(web, *sources, backfill="36500d"))
        assert cli("crawl", "--no-alerts").code == 0
    assert not web.hits("/coverage/2026/11/students-subverted.html")  # known: not fetched

    originals = by_path(cli("articles", "list", "--json").json())
    original = originals["coverage/2026/11/students-subverted.html"]
    assert (original["source"], original["published_at"]) == ("partner",
                                                              "2026-11-27T14:00:00+00:00")
    assert not [path for path in originals if path.startswith("reprints/students")]


def test_an_exact_reprint_stored_first_gives_way_to_the_official_text(db_url: str) -> None:
    db = open_database(db_url)
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("reprints", "feed", "https://r.example/f"),
                                    repo.SourceDef("statements", "feed", "https://s.example/f",
                                                   official=True)])
    text = (WEB / "statements/warning-students.html").read_text("utf-8")
    for source in ("reprints", "statements"):
        url = f"https://{source}.example/warning.html"
        with db.begin() as session:
            repo.add_article(session, repo.NewArticle(
                url, url, url, "提醒", text, "", "zh", datetime(2026, 11, 27, tzinfo=timezone.utc),
                False, text_fingerprint(text)), source)
    with db() as session:
        (original,) = session.scalars(select(Article).where(Article.duplicate_of.is_(None)))
        assert original.source.name == "statements" and len(original.copies) == 1
        assert repo.sightings_count(original) == 2


def test_a_report_joined_through_a_copy_names_that_copys_original(db_url: str) -> None:
    """The story-link index may still hold a report that has since lost its original's
    place (see the redating above): the new report's link names the original instead."""
    db = open_database(db_url)
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("wire", "feed", "https://w.example/f")])

    def store(hour: int, placement: repo.Placement) -> tuple[int, int | None]:
        url, text = f"https://w.example/{hour}.html", f"report {hour}"
        with db.begin() as session:
            article, _ = repo.add_article(session, repo.NewArticle(
                url, url, url, text, text, "", "en",
                datetime(2026, 11, 27, hour, tzinfo=timezone.utc), False,
                text_fingerprint(text)), "wire", lambda: placement)
            return article.id, article.story_id

    first, story = store(0, repo.Placement())
    copy, _ = store(1, repo.Placement(duplicate_of=first))
    joined, _ = store(2, repo.Placement(story_id=story, linked_to=copy,
                                        evidence=("figure:3555",), score=0.9))
    with db() as session:
        link = session.get(StoryLink, joined)
        assert (link.linked_article_id, link.evidence) == (first, ["figure:3555"])


SEARCH = {"name": "search", "kind": "feed", "url": "/feeds/search.xml", "follow": False}
SUBVERTED = "Chinese Communist Party prevents students studying abroad from being subverted, " \
    "experts say"


@pytest.mark.parametrize("first", ["search", "coverage"])
def test_a_news_search_item_is_a_sighting_of_the_outlets_article(
        cli: Cli, web: FixtureWeb, first: str) -> None:
    config = web_config(web, SEARCH, COVERAGE, backfill="36500d")
    config |= {"topics": [{"name": "subverted", "query": "student* AND subvert*",
                           "channels": ["desk"]}],
               "channels": {"desk": {"type": "jsonl", "path": "alerts.jsonl"}}}
    cli.write_config(config)
    for source in (first, *({"search", "coverage"} - {first})):
        assert cli("crawl", source, "--no-alerts").code == 0

    originals = by_path(cli("articles", "list", "--json").json())
    outlet = originals["coverage/2026/11/students-subverted.html"]
    assert (outlet["title"], outlet["topics"]) == (SUBVERTED, ["subverted"])
    searched = [a for path, a in originals.items() if path.startswith("redirect-to")]
    assert [a["title"] for a in searched] == [  # another outlet's: not this site's article
        "Spy thriller ‘The Quiet Exchange’ opens Harbour City Film Festival"]
    shown = cli("articles", "show", str(outlet["id"]), "--json").json()
    assert {s["source"] for s in shown["seen_at"]} == {"coverage", "search"}
    story = cli("stories", "show", str(outlet["story_id"]), "--json").json()
    assert (story["headline"], story["article_count"], story["source_count"]) == \
        (SUBVERTED, 1, 2)

    assert cli("alerts", "send").code == 0
    (alert,) = alerted(cli)  # the story alerts once, crediting the outlet
    assert [i["url"] for i in alert["items"]] == [outlet["url"]]



def test_a_hostile_news_search_source_is_stored_clipped(db_url: str) -> None:
    """`<source>` is web text of any length: PostgreSQL refused the article over it."""
    config = parse_config(CONFIG, env={})
    db = open_database(db_url)
    sync_config(config, db)
    ingest = Ingest(db, CrawlReport.for_sources(["reprints"]), Rules.of(config))
    entry = FeedEntry("https://search.example/r/1", title="国家安全部提醒", outlet="x" * 5000)
    ingest(ArticleSeen("reprints", entry, None))
    with db() as session:
        (article,) = session.scalars(select(Article)).all()
        assert article.outlet == "x" * 200
