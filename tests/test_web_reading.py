"""The reading pages — Today, Topic, Story — over a database filled by really crawling the
fixture web (the ministry's statement, English coverage of it, and reprints: a Traditional
copy, a content-farm copy, a wire copy), plus hostile and many stories stored through the
real storage functions. In process, through the WSGI app, on SQLite and PostgreSQL."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html
from sqlalchemy import text
from werkzeug.test import Client

from crawler.config.model import Config
from crawler.daemon.web import ReadingRoom
from crawler.daemon.web.filters import PAGE_SIZE
from crawler.daemon.web.pages.stories import is_traditional
from storage import repository as repo
from storage.db import open_database
from tests.conftest import Cli, cli_for, fresh_pg, web_config
from tests.test_crawl import COVERAGE, STATEMENTS, by_path
from tests.test_dedupe import REPRINTS
from tests.webserver import FixtureWeb

TOKEN = "a-long-enough-test-token"
TOPICS = [{"name": "students", "query": "留学生 OR student*"},
          {"name": "asylum", "query": "asylum OR @refuge", "languages": ["en"]}]
BROKEN = {"name": "gone", "kind": "feed", "url": "/feeds/no-such-feed.xml"}
HOSTILE_TITLE = "<script>alert(1)</script> students \u202eevil\u202c"
HOSTILE_URL = "javascript:alert(2)"


class Room:
    def __init__(self, cli: Cli, config: dict[str, Any]) -> None:
        cli.write_config(config)
        self.cli, self.document = cli, config
        self.db = open_database(cli.db)
        self.config = Config.model_validate({**config, "web": {"token": TOKEN}})
        self.client = Client(ReadingRoom(self.db, lambda: self.config))
        assert self.client.post("/signin", data={"token": TOKEN}).status_code == 303

    def get(self, path: str, status: int = 200) -> Any:
        response = self.client.get(path)
        assert response.status_code == status, (path, response.status_code)
        return lxml_html.fromstring(response.text)

    def articles(self) -> dict[str, dict[str, Any]]:
        return by_path(self.cli("articles", "list", "--all", "--json").json())


def crawl_fixture_web(cli: Cli, web: FixtureWeb) -> dict[str, Any]:
    """Crawl the fixture web: first the statement and its coverage (they make one story),
    then the reprints (three copies), with a source whose feed is gone (failing)."""
    config = web_config(web, STATEMENTS, COVERAGE, BROKEN)
    config["topics"], config["aliases"] = TOPICS, {"refuge": ["refugee", "庇护"]}
    cli.write_config(config)
    cli("crawl", "--no-alerts")  # the gone feed fails: the exit code says so
    config["sources"].append(web_config(web, REPRINTS)["sources"][0])
    cli.write_config(config)
    assert "1 of 4 sources failed: gone" in cli("crawl", "--no-alerts").err
    return config


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crawled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            _web_server: FixtureWeb) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The fixture web crawled once per backend (a crawl takes seconds): each test gets a
    copy of that database — a file copy on SQLite, a clone on PostgreSQL."""
    folder = tmp_path_factory.mktemp("crawled")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'crawled.db'}"
        config = crawl_fixture_web(cli_for(folder, url), _web_server)
        yield "sqlite", url, config
        return
    pg_admin = request.getfixturevalue("pg_admin")
    for url in fresh_pg(pg_admin):
        config = crawl_fixture_web(cli_for(folder, url), _web_server)
        name = url.rsplit("/", 1)[1]
        with pg_admin.connect() as conn:  # a template has no other connection
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"),
                         {"name": name})
        yield "postgresql", url, config


@pytest.fixture
def room(crawled: tuple[str, str, dict[str, Any]], tmp_path: Path,
         request: pytest.FixtureRequest) -> Iterator[Room]:
    kind, template, config = crawled
    if kind == "sqlite":
        for suffix in ("", "-wal"):  # the crawl's last writes may still be in the WAL
            original = Path(template.removeprefix("sqlite:///") + suffix)
            if original.exists():
                shutil.copy(original, tmp_path / f"copy.db{suffix}")
        url = f"sqlite:///{tmp_path / 'copy.db'}"
        (tmp_path / "config.yaml").write_text("{}")
        yield Room(cli_for(tmp_path, url), config)
        return
    for url in fresh_pg(request.getfixturevalue("pg_admin"), template.rsplit("/", 1)[1]):
        room = Room(cli_for(tmp_path, url), config)
        yield room
        room.db.kw["bind"].dispose()


def story_of(room: Room, path: str) -> int:
    return room.articles()[path]["story_id"]


def store(room: Room, title: str, url: str, topic: str = "students",
          seen: datetime | None = None, source: str = "coverage") -> int:
    """An article of its own story, matched to `topic`, first seen at `seen`. → story id"""
    with room.db.begin() as session:
        item = repo.NewArticle(url, url, url, title, f"{title} text about students", "", "en",
                               None, False, f"hash-{url}")
        article, _ = repo.add_article(session, item, source)
        repo.add_matches(session, article, {topic: {"snippet": f"{title} text",
                                                    "spans": [["title", 0, 8, "students"]]}})
        if seen is not None:
            article.first_seen_at = seen
            article.story.first_seen_at = article.story.last_seen_at = seen
        session.flush()
        return article.story_id


def texts(nodes: list[Any]) -> list[str]:
    return [" ".join(n.text_content().split()) for n in nodes]


# ---------------------------------------------------------------- today

def test_today_lists_new_stories_per_topic_and_the_sources_needing_attention(room: Room) -> None:
    statement = story_of(room, "statements/warning-students.html")
    page = room.get("/")
    sections = page.cssselect("section.topic")
    assert [s.get("data-topic") for s in sections] == ["students", "asylum"]  # config order
    students = sections[0]
    assert students.cssselect('h2 a[href="/topics/students"]')
    link = students.cssselect(f'a.story[href="/stories/{statement}"]')
    assert link and link[0].text_content().startswith("国家安全部")
    card = link[0].getparent()
    meta = " ".join(card.cssselect(".meta")[0].text_content().split())
    assert meta.startswith("statements (zh) · 1 follow-up in en · 2 languages: en, zh"), meta
    asylum = sections[1]  # the asylum report, and the coverage of the statement says asylum
    assert sorted(a.get("href") for a in asylum.cssselect("a.story")) == sorted(
        f"/stories/{story_of(room, path)}" for path in
        ("coverage/2026/11/asylum-figures.html", "statements/warning-students.html"))
    attention = page.cssselect("section.attention")[0]
    assert attention.cssselect('a[href="/sources"]')
    assert texts(attention.cssselect("li .state")) == ["failing"]
    assert attention.cssselect('li[data-source="gone"]')
    with room.db.begin() as session:  # the watchdog said one has gone silent
        repo.source_by_name(session, "coverage").reported_health = "silent"
    states = {li.get("data-source"): li.cssselect(".state")[0].text for li in
              room.get("/").cssselect("section.attention li")}
    assert states == {"gone": "failing", "coverage": "silent"}


def test_a_silent_source_is_silent_in_the_cli_on_sources_and_on_today(room: Room) -> None:
    with room.db.begin() as session:  # the watchdog told the operator it has gone quiet
        repo.source_by_name(session, "coverage").reported_health = "silent"
    listed = {s["name"]: s["health"] for s in room.cli("sources", "list", "--json").json()}
    assert listed["coverage"] == "silent" and listed["gone"] == "failing"
    assert listed["statements"] == "ok"
    row = room.get("/sources").cssselect('tr[data-source="coverage"] .state')[0]
    assert row.text == "silent" and "state-silent" in row.get("class")
    shown = room.get("/sources?state=silent").cssselect("tr[data-source]")
    assert [r.get("data-source") for r in shown] == ["coverage"]
    today = room.get("/").cssselect('section.attention li[data-source="coverage"] .state')
    assert texts(today) == ["silent"]
    table = room.cli("sources", "list").out
    assert "silent" in table


def test_the_seen_cookie_hides_what_was_already_seen_and_since_wins(room: Room) -> None:
    response = room.client.get("/")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("mediawatch_seen=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "New in the last 24 hours" in response.text  # the first visit
    assert lxml_html.fromstring(response.text).cssselect("a.story")
    again = room.get("/")  # everything was first seen before the last visit
    assert not again.cssselect("a.story")
    assert "New since your last visit" in again.text_content()
    fresh = store(room, "A new report on students", "https://coverage.example/new")
    assert [a.get("href") for a in room.get("/").cssselect("a.story")] == [f"/stories/{fresh}"]
    everything = room.get("/?since=7d").cssselect('section[data-topic="students"] a.story')
    assert len(everything) == 4  # the crawl's three stories and the new one
    # an older cookie (another reader's machine a week ago) shows everything again
    room.client.set_cookie("mediawatch_seen",
                           (datetime.now(timezone.utc) - timedelta(days=2)).isoformat())
    assert len(room.get("/").cssselect('section[data-topic="students"] a.story')) == 4
    room.client.set_cookie("mediawatch_seen", "not a time")  # a bad cookie: the last 24 h
    assert "New in the last 24 hours" in room.get("/").text_content()


def test_today_filters_by_topic_source_and_language(room: Room) -> None:
    only = room.get("/?topic=asylum&since=7d")
    assert [s.get("data-topic") for s in only.cssselect("section.topic")] == ["asylum"]
    zh = room.get("/?language=zh&since=7d").cssselect('section[data-topic="students"] a.story')
    assert [a.text_content()[:5] for a in zh] == ["国家安全部"]
    assert not room.get("/?source=statements&topic=asylum&since=7d").cssselect("a.story")
    bad = room.get("/?since=soon")
    assert bad.cssselect(".problem") and "since" in bad.cssselect(".problem")[0].text


def test_today_pages_keep_the_window_of_the_first_page(room: Room) -> None:
    now = datetime.now(timezone.utc)
    for n in range(PAGE_SIZE + 3):
        store(room, f"Students report {n}", f"https://coverage.example/r/{n}",
              seen=now - timedelta(minutes=n))
    first = room.get("/?topic=students")
    assert len(first.cssselect("a.story")) == PAGE_SIZE
    older = first.cssselect('a[rel="next"]')[0].get("href")
    assert "page=2" in older and "after=" in older  # the window of this reading
    second = room.get("/" + older)
    titles = texts(second.cssselect("a.story"))
    # after the crawl's three stories and 47 of these: the last six
    assert titles == [f"Students report {n}" for n in range(47, 53)]
    assert second.cssselect('a[rel="prev"]') and not second.cssselect('a[rel="next"]')
    # every topic's page 2: "more in students" starts that topic at its first page
    more = room.get("/?page=2&since=7d").cssselect('section[data-topic="students"] .more a')
    assert more, "page 2 of every topic still has more students"
    assert "topic=students" in more[0].get("href") and "page=" not in more[0].get("href")
    assert "since=7d" in more[0].get("href")


# ---------------------------------------------------------------- topic

def test_a_topic_shows_its_query_chart_and_stories_with_marked_snippets(room: Room) -> None:
    statement = story_of(room, "statements/warning-students.html")
    page = room.get("/topics/students")
    assert page.cssselect("h1")[0].text == "students"
    assert page.cssselect("pre.query")[0].text == "留学生 OR student*"
    bars = page.cssselect("svg.bars rect")
    assert len(bars) == 30
    today = datetime.now(timezone.utc).date().isoformat()
    assert bars[-1].cssselect("title")[0].text == f"{today}: 4"  # statement, coverage, film, asylum
    card = page.cssselect(f'a.story[href="/stories/{statement}"]')[0].getparent()
    snippet = card.cssselect(".snippet")[0]
    assert "留学生" in texts(snippet.cssselect("mark"))  # in the script the outlet wrote
    assert "Outlets: statements, coverage" in texts(card.cssselect(".outlets"))[0]
    assert page.cssselect('a[href="/topics/students.atom"]')
    aliases = room.get("/topics/asylum")
    assert texts(aliases.cssselect("dl.aliases dd")) == ["refugee OR 庇护"]
    assert room.get("/topics/students?language=zh").cssselect("svg.bars rect")[-1] \
        .cssselect("title")[0].text == f"{today}: 1"


def test_the_topic_page_and_its_feeds_share_the_address(room: Room) -> None:
    feed = room.client.get("/topics/students.atom")
    assert feed.status_code == 200 and feed.headers["Content-Type"].startswith(
        "application/atom+xml")
    assert room.client.get("/topics/students.json").json["topic"] == "students"
    assert room.client.get("/topics/students").headers["Content-Type"].startswith("text/html")
    missing = room.get("/topics/no-such-topic", status=404)
    assert "no topic 'no-such-topic'" in missing.text_content()
    assert room.client.get("/topics/no-such-topic.atom").status_code == 404


def test_topic_stories_page_newest_first(room: Room) -> None:
    now = datetime.now(timezone.utc)
    for n in range(PAGE_SIZE + 2):
        store(room, f"Students report {n}", f"https://coverage.example/r/{n}",
              seen=now - timedelta(days=1, minutes=n))
    first = room.get("/topics/students")
    assert len(first.cssselect("a.story")) == PAGE_SIZE
    assert texts(first.cssselect("a.story"))[3] == "Students report 0"  # after the crawl's 3
    second = room.get("/topics/students?page=2")
    assert texts(second.cssselect("a.story")) == [f"Students report {n}" for n in
                                                  range(PAGE_SIZE - 3, PAGE_SIZE + 2)]


# ---------------------------------------------------------------- story

def test_a_story_shows_its_lead_follow_ups_copies_and_sightings(room: Room) -> None:
    stored = room.articles()
    statement = stored["statements/warning-students.html"]
    coverage = stored["coverage/2026/11/students-subverted.html"]
    page = room.get(f"/stories/{statement['story_id']}")
    assert page.cssselect("h1")[0].text_content() == statement["title"]
    reports = page.cssselect("article.report")
    assert [r.get("data-article-id") for r in reports] == [str(statement["id"]),
                                                           str(coverage["id"])]
    assert "lead" in reports[0].get("class").split() and "lead" not in reports[1].get("class")
    assert reports[0].cssselect(f'a.article[href="/articles/{statement["id"]}"]')
    assert texts(reports[0].cssselect(".language")) == ["zh"]
    assert texts(reports[1].cssselect(".outlet")) == ["coverage"]
    assert texts(reports[0].cssselect("details.copies > summary")) == [
        "+2 copies: 1 Traditional, 1 syndicated"]
    kinds = {li.get("data-article-id"): li.cssselect(".copy-kind")[0].text
             for li in reports[0].cssselect("details.copies li")}
    assert kinds == {str(stored["reprints/warning-students-hk.html"]["id"]): "Traditional",
                     str(stored["reprints/warning-students-farm.html"]["id"]): "syndicated"}
    assert texts(reports[1].cssselect("details.copies > summary")) == [
        "+1 copy: 1 syndicated"]
    seen = {(li.text_content().split(" · ")[0], li.cssselect("a.out")[0].get("href")
             .split("/", 3)[3]) for li in reports[0].cssselect("details.sightings li")}
    assert seen == {("statements", "statements/warning-students.html"),
                    ("reprints", "reprints/warning-students-hk.html"),
                    ("reprints", "reprints/warning-students-farm.html")}
    joined = texts(reports[1].cssselect(".joined"))[0]
    assert f"Joined report {statement['id']}" in joined and "concept mss" in joined
    # to the report's own page: it may be on another page of the story, or a copy
    assert [a.get("href") for a in reports[1].cssselect(".joined a")] == [
        f"/articles/{statement['id']}"]
    assert not reports[0].cssselect(".joined")
    assert texts(page.cssselect(".topics a")) == ["asylum", "students"]


def test_follow_ups_come_in_time_order_after_the_lead(room: Room) -> None:
    statement = room.articles()["statements/warning-students.html"]
    when = datetime(2026, 11, 29, tzinfo=timezone.utc)
    with room.db.begin() as session:
        for n, hours in enumerate((5, 1, 3)):
            url = f"https://coverage.example/follow/{n}"
            item = repo.NewArticle(url, url, url, f"Follow-up {n}", f"students {n}", "", "en",
                                   when + timedelta(hours=hours), False, f"f-{n}")
            repo.add_article(session, item, "coverage",
                             lambda: repo.Placement(story_id=statement["story_id"]))
    titles = texts(room.get(f"/stories/{statement['story_id']}").cssselect(
        "article.report a.article"))
    assert titles[0] == statement["title"] and titles[2:] == [
        "Follow-up 1", "Follow-up 2", "Follow-up 0"]


def test_triage_changes_the_state_with_csrf_and_filters_unreviewed(room: Room) -> None:
    story = story_of(room, "statements/warning-students.html")
    page = room.get(f"/stories/{story}")
    assert page.cssselect(".triage-state")[0].text == "unreviewed"
    form = page.cssselect("form.triage")[0]
    assert form.get("method") == "post" and form.get("action") == f"/stories/{story}/triage"
    assert {b.get("value") for b in form.cssselect('button[name="state"]')} == {
        "reviewed", "dismissed", "unreviewed"}
    csrf = form.cssselect('input[name="csrf"]')[0].get("value")
    assert room.client.post(f"/stories/{story}/triage",
                            data={"state": "reviewed"}).status_code == 403
    assert room.get(f"/stories/{story}").cssselect(".triage-state")[0].text == "unreviewed"
    done = room.client.post(f"/stories/{story}/triage", data={"state": "reviewed", "csrf": csrf})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/stories/{story}")
    assert room.get(f"/stories/{story}").cssselect(".triage-state")[0].text == "reviewed"
    assert story not in [int(a.get("href").rsplit("/", 1)[1]) for a in
                         room.get("/topics/students?triage=unreviewed").cssselect("a.story")]
    assert room.get("/?since=7d&triage=unreviewed").cssselect("a.story")  # the others
    assert not room.get("/?since=7d&triage=unreviewed").cssselect(
        f'a.story[href="/stories/{story}"]')
    assert room.client.post(f"/stories/{story}/triage",
                            data={"state": "dismissed", "csrf": csrf}).status_code == 303
    assert room.get(f"/stories/{story}").cssselect(".triage-state")[0].text == "dismissed"
    assert room.client.post(f"/stories/{story}/triage",
                            data={"state": "bogus", "csrf": csrf}).status_code == 400
    assert room.client.post("/stories/999999/triage",
                            data={"state": "reviewed", "csrf": csrf}).status_code == 404


def test_unknown_ids_are_a_404_page(room: Room) -> None:
    page = room.get("/stories/999999", status=404)
    assert page.cssselect("h1")[0].text.startswith("404") and "no story 999999" in \
        page.text_content()
    room.get("/stories/x", status=404)


def test_hostile_titles_and_urls_are_inert_on_every_reading_page(room: Room) -> None:
    story = store(room, HOSTILE_TITLE, HOSTILE_URL)
    with room.db.begin() as session:
        repo.record_failure(session, "gone", "<img src=x onerror=alert(3)>")
    for path in ("/?since=7d", "/topics/students", f"/stories/{story}"):
        response = room.client.get(path)
        assert response.status_code == 200
        assert "<script>alert(1)" not in response.text and "<img src=x" not in response.text
        assert 'href="javascript:' not in response.text
        page = lxml_html.fromstring(response.text)
        assert not page.cssselect("main script") and not page.cssselect("[onerror]")
        holder = [b for b in page.cssselect("bdi") if "\u202e" in (b.text_content() or "")]
        assert holder and all(b.text_content().startswith("<script>") for b in holder), path
    story_page = room.get(f"/stories/{story}")
    assert story_page.cssselect(".unsafe-link")  # the javascript: URL shown, not linked


def test_script_detection_tells_traditional_from_simplified() -> None:
    assert is_traditional("國家安全部提醒：警惕境外間諜情報機關對留學生拉攏策反")
    assert not is_traditional("国家安全部提醒：警惕境外间谍情报机关对留学生拉拢策反")
    assert not is_traditional("Students warned about recruitment abroad")
