"""The reading room's evidence and operations pages — an article, the query workbench,
sources, the alerts outbox — in process (werkzeug's Client), over a database filled by a
real crawl of the fixture web, plus hostile content stored through the storage functions."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import and_, select, text
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import Client

from alerts.match import Document, Matcher
from alerts.outbox import AlertPolicy, queue_alerts
from alerts.query import parse_query
from crawler.config import Config
from crawler.config.loading import load_config
from crawler.daemon.web import ReadingRoom, filters
from crawler.daemon.web.pages import alerts as alerts_page
from crawler.daemon.web.pages import query as query_page
from crawler.daemon.web.pages import sources as sources_page
from storage import repository as repo
from storage.db import open_database
from storage.models import Alert, Article, Sighting
from tests.conftest import cli_for, fresh_pg, web_config
from tests.webserver import FixtureWeb

SECRET = "feed-key-0123456789-secret"
ALIASES = {"mss": ["国家安全部", "国安部", "国家安全机关", "MSS", "Ministry of State Security",
                   "state security"]}
ESPIONAGE = "@mss AND (student* OR 留学生) AND (spy* OR espionage OR 间谍 OR 策反)"
HOSTILE_TITLE = "<script>alert(1)</script> \u202eevil spy student"
HOSTILE_URL = "javascript:alert(1)"
WORDS = [a + b for a in "bcdfghjklmnpqrstvwxz" for b in "bcdfghjklmnpqrstvwxz"]  # no hits


@dataclass
class Room:
    client: Client
    db: sessionmaker[Session]
    config: Config
    pending: int = 0  # an alert made pending again, with attempts and an error
    hostile: int = 0  # the hostile article

    def get(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response.text

    def article(self, ending: str) -> Article:
        with self.db() as session:
            return session.scalars(select(Article).where(
                Article.canonical_url.endswith(ending))).one()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def room(request: pytest.FixtureRequest, _web_server: FixtureWeb,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """One crawl per backend for the whole module (the pages only read): the fixture web
    (a statement, its reprints and copies, the coverage and its syndicated copies), its
    alerts sent, then one made pending again with an error; a source failing with a secret
    in its error, one never polled; and hostile content stored as the crawler stores it."""
    folder = tmp_path_factory.mktemp("evidence")
    if request.param == "sqlite":
        yield crawled(f"sqlite:///{folder / 'mediawatch.db'}", _web_server, folder)
    else:
        urls = fresh_pg(request.getfixturevalue("pg_admin"))
        yield crawled(next(urls), _web_server, folder)
        next(urls, None)  # drops the database


def crawled(url: str, web: FixtureWeb, folder: Path) -> Room:
    cli = cli_for(folder, url)
    cli.env["FEED_KEY"] = SECRET
    config = web_config(
        web,
        {"name": "statements", "kind": "feed", "url": "/feeds/statements.xml",
         "tags": ["official"], "official": True},
        {"name": "coverage", "kind": "feed", "url": "/feeds/coverage.atom", "tags": ["press"]},
        {"name": "syndication", "kind": "feed", "url": "/feeds/syndication.xml"},
        {"name": "reprints", "kind": "feed", "url": "/feeds/reprints.xml"},
        {"name": "broken-feed", "kind": "feed", "url": "/feeds/empty.xml?key=${FEED_KEY}"},
        backfill="36500d", per_domain=8)  # the fixture web is dated November 2026
    config["aliases"] = ALIASES
    config["topics"] = [{"name": "espionage-warnings", "query": ESPIONAGE,
                         "channels": ["local"]},
                        {"name": "student-asylum", "query": "(student* OR 留学生) AND asylum",
                         "channels": ["local"]}]
    config["channels"] = {"local": {"type": "jsonl", "path": str(folder / "alerts.jsonl")}}
    cli.write_config(config)
    result = cli("crawl")
    assert result.code == 0, result.err
    sent = cli("alerts", "send")
    assert sent.code == 0, sent.err
    config["sources"].append({"name": "not-yet", "kind": "feed",
                              "url": web.url("/feeds/empty.xml")})
    cli.write_config(config)
    loaded = load_config(cli.config, env={"FEED_KEY": SECRET})
    db = open_database(url)
    room = Room(Client(ReadingRoom(db, lambda: loaded)), db, loaded)
    with db.begin() as session:  # a poll failing, as the engine records one
        repo.record_failure(session, "broken-feed", "HTTP 500 from "
                            f"{web.url('/feeds/empty.xml')}?key={SECRET}")
        alert = session.scalars(select(Alert).order_by(Alert.id)).first()
        assert alert is not None and alert.status == "sent", "the crawl queued alerts"
        alert.status, alert.attempts, alert.sent_at = "pending", 2, None
        alert.last_error = f"HTTP 503 from https://hooks.example/{SECRET}"
        alert.next_attempt_at = datetime.now(timezone.utc) + timedelta(minutes=5)
        room.pending = alert.id
    room.hostile = hostile(room)
    with db.begin() as session:  # the statement edited: its stored spans' offsets shift
        statement = session.scalars(select(Article).where(
            Article.canonical_url.endswith("statements/warning-students.html"))).one()
        edit = replace(_as_new(statement), text="（更新）" + statement.text)
        repo.add_version(session, statement, edit, datetime.now(timezone.utc))
    return room


def _as_new(article: Article) -> repo.NewArticle:
    return repo.NewArticle(url=article.url, canonical_url=article.canonical_url,
                           seen_url=article.url, title=article.title, text=article.text,
                           summary=article.summary, language=article.language,
                           published_at=article.published_at, date_is_estimated=False,
                           text_hash=article.text_hash)


def marks(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r"<mark[^>]*>(?:<bdi>)?(.*?)(?:</bdi>)?</mark>", html)]


def section(html: str, css_class: str) -> str:
    """The element with this class up to its closing tag (first level, good enough here)."""
    start = html.index(f'class="{css_class}')
    tag = html.rfind("<", 0, start)
    name = html[tag + 1:start].split()[0]
    return html[tag:html.index(f"</{name}>", start)]


# ---------------------------------------------------------------- article

def test_an_article_shows_its_marked_text_why_it_matched_its_copies_and_sightings(
        room: Room) -> None:
    statement = room.article("statements/warning-students.html")
    html = room.get(f"/articles/{statement.id}")
    text = section(html, "text")
    assert {"国家安全部", "留学生"} <= set(marks(text))  # found again after the edit
    assert "（更新）" in text and "version 2" in section(html, "versions")
    explained = section(html, "explain card\" data-topic=\"espionage-warnings")
    assert "term 国家安全部" in explained and "✓" in explained
    assert 'href="/topics/espionage-warnings"' in html
    assert f'class="original out" href="{statement.canonical_url}"' in html
    assert f'href="/stories/{statement.story_id}"' in html

    with room.db() as session:
        copies = session.scalars(select(Article).where(
            Article.duplicate_of == statement.id)).all()
    assert copies, "the fixture's reprints fold onto the statement"
    listed = section(html, "copies")
    for copy in copies:
        assert f'href="/articles/{copy.id}"' in listed
    copy_page = room.get(f"/articles/{copies[0].id}")
    assert "A copy" in copy_page and f'href="/articles/{statement.id}"' in copy_page

    # the coverage and its syndicated reprint are one article with a sighting at each
    # place; find it by its sighting of the coverage's URL
    with room.db() as session:
        carrier = session.scalars(select(Sighting.article_id).distinct().where(
            Sighting.url.endswith("coverage/2026/11/students-subverted.html"))).one()
    seen = section(room.get(f"/articles/{carrier}"), "sightings")
    assert "syndication" in seen and "coverage" in seen and "<time" in seen
    assert seen.count('<tr class="sighting">') >= 2  # each place it was seen


def test_unknown_articles_are_404(room: Room) -> None:
    assert room.client.get("/articles/987654").status_code == 404
    assert "no article with id 987654" in room.client.get("/articles/987654").text
    assert room.client.get("/articles/abc").status_code == 404


# ---------------------------------------------------------------- query workbench

def test_the_workbench_finds_hits_with_marks_and_counts_using_an_alias(
        room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    # the whole (small) window in one search however busy the machine: the budget that
    # stops a search early has its own test (searches further from where it stopped)
    monkeypatch.setattr(query_page, "SCAN_SECONDS", 10)
    empty = room.get("/query")
    assert 'id="query"' in empty and 'name="q"' in empty and "For example" in empty
    html = room.get("/query?" + urlencode({"q": "@mss AND (student* OR 留学生)"}))
    hits = re.findall(r'<div class="hit card".*?</p>\s*</div>', html, re.S)
    assert hits and all("<mark>" in hit for hit in hits)
    assert any("Ministry of State Security" in m or "国家安全部" in m or "state security" in
               m.lower() for m in marks(html))
    assert '<svg class="bars"' in section(html, "per-day")
    per_source = html[html.index('class="per-source"'):]
    per_source = dict(re.findall(r'>([a-z-]+)</a> <span class="count">(\d+)<',
                                 per_source[:per_source.index("</ul>")]))
    # the coverage's story is counted on the source its original (the coverage page, 14:00)
    # was read from: the coverage feed, or the syndication feed when it is read first
    assert "statements" in per_source and "reprints" not in per_source
    assert len(per_source.keys() & {"coverage", "syndication"}) == 1
    total = int(re.search(r'<p class="total"><strong>(\d+)</strong>', html).group(1))
    assert total == len(hits) == sum(map(int, per_source.values()))
    statement = room.article("statements/warning-students.html")
    assert f'href="/articles/{statement.id}"' in html
    only = room.get("/query?" + urlencode({"q": "@mss AND (student* OR 留学生)",
                                           "source": "coverage"}))
    assert f'href="/articles/{statement.id}"' not in only


def test_a_query_that_does_not_parse_shows_a_caret(room: Room) -> None:
    html = room.get("/query?q=student+AND+(")
    error = section(html, "query-error")
    assert "column" in error
    caret = unescape(re.search(r'<pre class="caret">(.*?)</pre>', error, re.S).group(1))
    line, pointer = caret.split("\n")
    assert line == "student AND (" and pointer == " " * 13 + "^"
    unknown = room.get("/query?q=%40nothing+AND+student")
    assert "unknown alias @nothing" in section(unknown, "query-error")


def test_the_workbench_searches_further_from_where_it_stopped(
        room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search stops at a page of hits (or SCAN_LIMIT articles, or SCAN_SECONDS) and
    says so; its `search further` link (every parameter kept) goes on from the article it
    stopped at, never showing a hit twice, until the window's end."""
    every = re.findall(r'class="article" href="(/articles/\d+)"', room.get("/query?q=student*"))
    assert len(every) >= 3
    monkeypatch.setattr(filters, "PAGE_SIZE", 1)
    monkeypatch.setattr(query_page, "PAGE_SIZE", 1)
    url, seen, pages = "/query?q=student*&source=&language=", [], 0
    while url and pages < 50:
        html = room.get(url)
        shown = re.findall(r'class="article" href="(/articles/\d+)"', html)
        assert len(shown) <= 1
        seen += shown
        pages += 1
        further = re.search(r'class="further" rel="next" href="([^"]+)"', html)
        if further:
            assert "a page of 1 hits" in section(html, "capped")
            assert "The counts per day and per source cover the articles searched" in html
            assert "q=student%2A" in further.group(1) and "since=30d" in further.group(1)
            url = "/query" + unescape(further.group(1))
            assert re.search(r"before=\d+", url)
        else:
            assert "Searched to the start of the window" in html
            url = ""
    assert seen == every  # the same hits, newest first, each once
    assert "older than the last page" in room.get(
        "/query?" + urlencode({"q": "student*", "before": every[0].split("/")[-1]}))
    monkeypatch.setattr(query_page, "PAGE_SIZE", 50)
    monkeypatch.setattr(query_page, "SCAN_SECONDS", 0)  # out of time at once: one row each
    monkeypatch.setattr(query_page, "MIN_ROWS", 1)
    url, seen, pages = "/query?q=student*", [], 0
    while url and pages < 500:
        html = room.get(url)
        seen += re.findall(r'class="article" href="(/articles/\d+)"', html)
        pages += 1
        further = re.search(r'class="further" rel="next" href="([^"]+)"', html)
        if further:
            assert "(stopped after 0 ms of work)" in section(html, "capped")
        url = "/query" + unescape(further.group(1)) if further else ""
    assert seen == every and pages >= len(every)  # a row a stretch, none skipped
    monkeypatch.undo()
    monkeypatch.setattr(query_page, "SCAN_LIMIT", 2)
    capped = room.get("/query?q=student*")
    assert "searched the newest 2 articles of the window (at most 2 a search)" in capped
    assert 'class="further" rel="next"' in capped
    assert room.get("/query?q=student*&before=99999999999")  # an unknown id: from the top


def test_a_long_or_query_answers_promptly_without_a_prefilter(room: Room) -> None:
    many = " OR ".join(WORDS[:300]) + " OR student*"
    assert len(many) < query_page.MAX_QUERY
    started = time.monotonic()
    html = room.get("/query?" + urlencode({"q": many}))
    assert time.monotonic() - started < 3
    assert 'class="hit card"' in html and "Looked up first" not in html  # too many words
    assert query_page.required(parse_query(many)) == []


def test_a_query_the_database_refuses_is_a_message_not_a_500(
        room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_page, "MAX_GROUP_WORDS", 10_000)  # every word in SQL
    monkeypatch.setattr(query_page, "MAX_QUERY", 100_000)
    many = " OR ".join(f"nothingword{n}" for n in range(499))
    response = room.client.get("/query?" + urlencode({"q": many}))
    assert response.status_code == 200
    sqlite = room.db.kw["bind"].dialect.name == "sqlite"
    if sqlite:  # "Expression tree is too large"
        assert "query too large or too slow: narrow it" in section(response.text,
                                                                   "query-error")
    monkeypatch.undo()
    too_long = room.get("/query?" + urlencode({"q": "spy OR " * 300}))
    assert "query too long: 2,100 characters, at most 2,000" in section(too_long,
                                                                       "query-error")


def test_the_database_stops_a_slow_prefilter_at_the_deadline(
        room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each row's LIKE made slow (a sleep, a long count): the statement would take seconds
    and is stopped by the database at SCAN_SECONDS."""
    sqlite = room.db.kw["bind"].dialect.name == "sqlite"
    slow = (text("(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                 "WHERE x < 3000000) SELECT count(*) FROM c) > 0") if sqlite
            else text("pg_sleep(0.3) IS NOT NULL"))
    contains = query_page._contains
    monkeypatch.setattr(query_page, "_contains",
                        lambda column, word, pg: and_(slow, contains(column, word, pg)))
    started = time.monotonic()
    html = room.get("/query?" + urlencode({"q": "student* AND spy"}))
    assert time.monotonic() - started < 2.5
    assert "query too large or too slow: narrow it" in section(html, "query-error")
    assert room.get("/query?q=spy")  # the session is usable again


def test_the_prefilter_keeps_words_folding_changes(room: Room) -> None:
    """`strasse` matches a stored `Straße` (folding writes ß as ss): SQL's LIKE would
    not, so such a word is not looked up in SQL."""
    with room.db.begin() as session:
        url = "https://coverage.example/de/strasse"
        item = repo.NewArticle(url, url, url, "Die Straße ist gesperrt",
                               "Die STRASSE am Bahnhof und die Straße am Markt.", "", "de",
                               datetime.now(timezone.utc), False, "hash-strasse")
        article, _ = repo.add_article(session, item, "coverage")
        article_id = article.id
    for q in ("strasse", "Straße AND gesperrt", '"die strasse"'):
        html = room.get("/query?" + urlencode({"q": q}))
        assert f'href="/articles/{article_id}"' in html, q
        assert any("Straße" in m for m in marks(html)), q
    assert query_page.required(parse_query("strasse AND gesperrt")) == [("gesperrt",)]


# ---------------------------------------------------------------- sources

def test_sources_show_health_masked_errors_and_a_never_polled_source(room: Room) -> None:
    html = room.get("/sources")
    rows = dict(re.findall(r'<tr data-source="([^"]+)">(.*?)</tr>', html, re.S))
    assert list(rows) == [s.name for s in room.config.sources]
    assert 'class="state state-failing"' in rows["broken-feed"]
    assert SECRET not in html and "***" in rows["broken-feed"]
    assert "500" in rows["broken-feed"]
    assert "never polled" in rows["not-yet"] and "at the daemon" in rows["not-yet"]
    assert 'class="state state-ok"' in rows["coverage"]
    assert '<svg class="bars"' in rows["coverage"]
    failing = room.get("/sources?state=failing")
    assert re.findall(r'<tr data-source="([^"]+)"', failing) == ["syndication", "broken-feed"]
    assert "&lt;script&gt;alert(3)" in failing  # (the hostile error, below)


def test_today_masks_a_failing_sources_error_as_sources_does(room: Room) -> None:
    html = room.get("/?since=7d")
    assert SECRET not in html
    attention = section(html, "attention")
    assert 'data-source="broken-feed"' in attention and "state-failing" in attention
    assert "HTTP 500 from" in attention and "***" in attention


# ---------------------------------------------------------------- alerts

def test_alerts_list_pending_and_sent_with_attempts(
        room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    html = room.get("/alerts")
    rows = dict(re.findall(r'<tr data-alert-id="(\d+)">(.*?)</tr>', html, re.S))
    pending = rows[str(room.pending)]
    assert "state-pending" in pending and '<td class="attempts">2</td>' in pending
    assert "HTTP 503 from https://hooks.example/***" in unescape(pending)
    assert SECRET not in html
    assert "/stories/" in pending and "/articles/" in pending
    assert any("state-sent" in row and "sent <time" in row for row in rows.values())
    assert list(map(int, rows)) == sorted(map(int, rows), reverse=True)  # newest first
    only_sent = re.findall(r'data-alert-id="(\d+)"', room.get("/alerts?status=sent"))
    assert only_sent and str(room.pending) not in only_sent
    only_pending = re.findall(r'data-alert-id="(\d+)"', room.get("/alerts?status=pending"))
    assert str(room.pending) in only_pending
    assert re.findall(r'data-alert-id="(\d+)"', room.get(
        "/alerts?topic=student-asylum&since=7d")) == [
        k for k, row in rows.items() if ">student-asylum<" in row]
    assert "status: &#39;nope&#39;" in room.get("/alerts?status=nope")

    monkeypatch.setattr(filters, "PAGE_SIZE", 1)
    monkeypatch.setattr(alerts_page, "PAGE_SIZE", 1)
    page_one = re.findall(r'data-alert-id="(\d+)"', room.get("/alerts"))
    page_two = re.findall(r'data-alert-id="(\d+)"', room.get("/alerts?page=2"))
    assert len(page_one) == 1 and len(page_two) == 1 and int(page_one[0]) > int(page_two[0])
    # the pager keeps every parameter of the page, urlencoded
    sent = room.get("/alerts?status=sent&since=7d")
    assert 'rel="next" href="?since=7d&amp;page=2&amp;status=sent"' in sent
    second = room.get("/alerts?status=sent&since=7d&page=2")
    assert 'rel="prev" href="?since=7d&amp;status=sent"' in second


def test_the_sources_pager_keeps_the_health_asked(
        room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters, "PAGE_SIZE", 1)
    monkeypatch.setattr(sources_page, "PAGE_SIZE", 1)
    html = room.get("/sources?state=ok")
    assert len(re.findall(r'<tr data-source=', html)) == 1
    assert 'rel="next" href="?page=2&amp;state=ok"' in html
    assert 'rel="prev" href="?state=ok"' in room.get("/sources?state=ok&page=2")


# ---------------------------------------------------------------- hostile content

def hostile(room: Room) -> int:
    """A hostile article stored as the crawler stores one, matched, alerted on; and a source
    whose last error is markup."""
    now = datetime.now(timezone.utc)
    item = repo.NewArticle(url=HOSTILE_URL, canonical_url=HOSTILE_URL, seen_url=HOSTILE_URL,
                           title=HOSTILE_TITLE, text="a spy met a student <img src=x "
                           "onerror=alert(2)> \u202etxet", summary="", language="en",
                           published_at=now, date_is_estimated=False, text_hash="hostile")
    with room.db.begin() as session:
        article, _ = repo.add_article(session, item, "coverage")
        document = Document(article.title, article.text, article.canonical_url, "coverage",
                            (), "en")
        found = Matcher({"espionage-warnings": parse_query("spy AND student")}).match(document)
        hits = {m.topic: m.as_json() for m in found}
        repo.add_matches(session, article, hits)
        queue_alerts(session, article, hits,
                     {"espionage-warnings": AlertPolicy(("local",), "instant",
                                                        timedelta(days=1))},
                     now, timedelta(days=1))
        repo.record_failure(session, "syndication", "<script>alert(3)</script> \u202e bad")
        return article.id


def inert(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html
    assert 'href="javascript:' not in html
    for override in re.finditer("\u202e", html):  # every override inside an isolate
        at = override.start()
        assert html.rfind("<bdi>", 0, at) > html.rfind("</bdi>", 0, at), html[at - 80:at]


def test_hostile_titles_urls_and_bidi_are_inert_on_every_page(room: Room) -> None:
    article_id = room.hostile
    pages = {"article": f"/articles/{article_id}", "query": "/query?q=spy+AND+student",
             "sources": "/sources", "alerts": "/alerts"}
    for name, path in pages.items():
        html = room.get(path)
        inert(html)
        assert "&lt;script&gt;alert(" in html, name
    article = room.get(pages["article"])
    assert 'class="unsafe-link"' in article and "<mark>spy</mark>" in article


def test_the_workbench_prefilters_in_sql_only_on_words_every_match_contains() -> None:
    def groups(text: str) -> list[tuple[str, ...]]:
        return query_page.required(parse_query(text, ALIASES))

    assert groups("spy AND student*") == [("student",), ("spy",)]  # longest first
    assert groups('"state security" AND NOT film') == [("security",)]
    assert groups("spy OR title:asylum") == [("asylum", "spy")]
    assert groups("spy OR 间谍") == []  # a CJK term may be stored in Traditional script
    assert groups("NOT spy") == [] and groups("url:spy OR source:x") == []
    assert groups("(spy AND film) NEAR/5 festival") == [("festival",), ("film",), ("spy",)]
