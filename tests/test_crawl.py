"""End to end: the `mediawatch` CLI crawls the local fixture web into a real database."""
from __future__ import annotations

import json
from pathlib import Path

from storage.db import open_database
from storage.models import Article
from tests.conftest import Cli, web_config
from tests.webserver import FixtureWeb

EXPECTED_CHARSET = json.loads((Path(__file__).parent / "fixtures/web/charset/expected.json")
                              .read_text(encoding="utf-8"))
ARTICLE_FIELDS = {"id", "url", "canonical_url", "title", "source", "published_at", "language",
                  "story_id", "duplicate_of", "sightings", "topics"}
SOURCE_FIELDS = {"name", "kind", "url", "last_polled_at", "last_success_at",
                 "consecutive_failures", "last_error"}

STATEMENTS = {"name": "statements", "kind": "feed", "url": "/feeds/statements.xml",
              "language": "zh", "tags": ["official"]}
COVERAGE = {"name": "coverage", "kind": "feed", "url": "/feeds/coverage.atom"}
SYNDICATION = {"name": "syndication", "kind": "feed", "url": "/feeds/syndication.xml"}


def by_path(articles: list[dict]) -> dict[str, dict]:
    return {a["canonical_url"].split("/", 3)[3]: a for a in articles}


def test_crawl_stores_each_article_once_with_text_language_and_utc_date(
        cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, STATEMENTS, COVERAGE, SYNDICATION))
    result = cli("crawl")
    assert result.code == 0, result.err
    assert "crawl summary" in result.out

    articles = cli("articles", "list", "--json").json()
    assert all(ARTICLE_FIELDS <= set(a) for a in articles)
    stored = by_path(articles)
    assert set(stored) == {"statements/warning-students.html", "statements/data-case.html",
                           "statements/press-conference.html",
                           "coverage/2026/11/students-subverted.html",
                           "coverage/2026/11/asylum-figures.html", "coverage/2026/11/spy-film.html"}
    coverage = stored["coverage/2026/11/students-subverted.html"]
    # one article, seen at three URLs: its own, the tracking-parameter link, the syndicated copy
    assert coverage["sightings"] == 3
    assert coverage["language"] == "en"
    assert coverage["published_at"].endswith("+00:00")
    statement = stored["statements/warning-students.html"]
    assert statement["language"] == "zh" and statement["published_at"].endswith("+00:00")

    detail = cli("articles", "show", str(statement["id"]), "--json").json()
    assert {"text", "summary", "highlights"} <= set(detail)
    assert "留学生" in detail["text"] and "\ufffd" not in detail["text"]
    seen = {s["url"].split("/", 3)[3] for s in
            cli("articles", "show", str(coverage["id"]), "--json").json()["seen_at"]}
    assert seen == {"coverage/2026/11/students-subverted.html",
                    "syndicated/students-subverted-copy.html"}

    page_hits = web.hits("/coverage/2026/11/students-subverted.html")
    assert len(page_hits) == 1, "the same article was fetched twice in one crawl"


def test_second_crawl_is_conditional_and_fetches_no_stored_page(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, STATEMENTS, COVERAGE))
    assert cli("crawl").code == 0
    first = len(cli("articles", "list", "--json").json())
    web.log.clear()

    result = cli("crawl", "--json")
    assert result.code == 0, result.err
    summary = {s["source"]: s for s in result.json()["sources"]}
    assert summary["statements"]["status"] == "unchanged"
    assert summary["statements"]["http_status"] == 304
    feed_hit = web.hits("/feeds/statements.xml")[0]
    assert feed_hit.headers.get("if-none-match") and feed_hit.headers.get("if-modified-since")
    pages = [h.path for h in web.log if not h.path.startswith(("/feeds/", "/robots.txt"))]
    assert pages == []
    assert len(cli("articles", "list", "--json").json()) == first


def test_known_links_in_a_changed_feed_are_not_fetched_again(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, COVERAGE))
    assert cli("crawl").code == 0
    # the same links reached through another feed: sightings, not fetches
    cli.write_config(web_config(web, COVERAGE, SYNDICATION))
    web.log.clear()
    result = cli("crawl", "syndication", "--json")
    assert result.code == 0, result.err
    fetched = [h.path for h in web.log if h.path.startswith("/coverage/")]
    assert fetched == []
    assert result.json()["sources"][0]["known"] == 2


def test_failing_sources_do_not_stop_a_healthy_one(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(
        web, STATEMENTS,
        {"name": "gone", "kind": "feed", "url": "/status/404"},
        {"name": "broken-server", "kind": "feed", "url": "/status/500"},
        {"name": "refused", "kind": "feed", "url": "http://127.0.0.1:9/feed.xml"},
        {"name": "no-dns", "kind": "feed", "url": "http://no-such-host.invalid/feed.xml"},
        {"name": "slow", "kind": "feed", "url": "/slow/4/feeds/empty.xml"},
        {"name": "not-a-feed", "kind": "feed", "url": "/notafeed.txt"},
        timeout=1))
    result = cli("crawl")
    assert result.code == 1
    assert result.err.strip().splitlines()[-1].startswith("error: 6 of 7 sources failed")
    assert "Traceback" not in result.err

    sources = {s["name"]: s for s in cli("sources", "list", "--json").json()}
    assert all(SOURCE_FIELDS <= set(s) for s in sources.values())
    assert sources["statements"]["consecutive_failures"] == 0
    assert sources["statements"]["last_success_at"] is not None
    errors = {name: s["last_error"] for name, s in sources.items() if name != "statements"}
    assert "HTTP 404" in errors["gone"]
    assert "HTTP 500" in errors["broken-server"]
    assert "refused" in errors["refused"]
    assert "DNS" in errors["no-dns"]
    assert "in time" in errors["slow"]
    assert "not an RSS or Atom feed" in errors["not-a-feed"]
    assert all(sources[n]["consecutive_failures"] == 1 for n in errors)
    assert len(cli("articles", "list", "--json").json()) == 3

    assert cli("crawl", "gone").code == 1
    gone = {s["name"]: s for s in cli("sources", "list", "--json").json()}["gone"]
    assert gone["consecutive_failures"] == 2


def test_broken_feed_yields_its_items_and_warns(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, {"name": "broken", "kind": "feed", "url": "/feeds/broken.xml"}))
    result = cli("crawl", "--json")
    assert result.code == 0, result.err
    report = result.json()["sources"][0]
    assert report["status"] == "warning" and report["new"] == 2
    source = cli("sources", "list", "--json").json()[0]
    assert source["health"] == "warning" and "malformed" in source["last_warning"]


def test_feed_items_without_a_web_link_are_skipped_with_a_warning(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, {"name": "loose", "kind": "feed", "follow": False,
                                      "url": "/feeds/linkless.xml"}))
    result = cli("crawl", "--json")
    assert result.code == 0, result.err
    report = result.json()["sources"][0]
    assert report["status"] == "warning" and report["new"] == 2 and report["skipped"] == 2
    assert "2 of 4 items skipped: no http(s) link" in report["message"]
    urls = {a["url"] for a in cli("articles", "list", "--json").json()}
    assert urls == {web.url("/broken/item-1.html"), "http://news.example/loose-ends/night-market.html"}
    source = cli("sources", "list", "--json").json()[0]
    assert source["health"] == "warning" and "2 of 4 items skipped" in source["last_warning"]


def test_charsets_survive_the_whole_crawl(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, {"name": "charsets", "kind": "feed", "url": "/feeds/charset.xml"}))
    assert cli("crawl").code == 0
    articles = by_path(cli("articles", "list", "--json").json())
    assert len(articles) == len(EXPECTED_CHARSET)
    with open_database(cli.db)() as session:
        for name, expected in EXPECTED_CHARSET.items():
            article = articles[f"charset/{name}"]
            text = session.get(Article, article["id"]).text
            assert article["title"] == expected["title"], name
            assert expected["phrase"] in text and "\ufffd" not in text, name


def test_feed_without_follow_stores_the_feed_text(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, dict(STATEMENTS, follow=False)))
    assert cli("crawl").code == 0
    assert [h.path for h in web.log if h.path.startswith("/statements/")] == []
    articles = cli("articles", "list", "--json").json()
    assert len(articles) == 3 and all(a["title"] for a in articles)


def test_robots_disallowed_page_is_never_requested(cli: Cli, web: FixtureWeb) -> None:
    (web.root / "feeds" / "_private_link.xml").write_text(
        '<rss version="2.0"><channel><title>p</title><item><title>secret</title>'
        '<link>/private/secret.html</link></item></channel></rss>')
    cli.write_config(web_config(web, {"name": "p", "kind": "feed", "url": "/feeds/_private_link.xml"}))
    result = cli("crawl", "--json")
    assert result.code == 0, result.err  # a link robots.txt disallows is skipped, no failure
    summary = result.json()["sources"][0]
    assert (summary["status"], summary["new"], summary["skipped"], summary["errors"]) == \
        ("ok", 0, 1, 0)
    assert summary["message"] == \
        f"1 skipped: {web.url('/private/secret.html')} is disallowed by robots.txt"
    assert web.hits("/robots.txt") and web.hits("/private/secret.html") == []


def test_a_page_that_failed_is_retried_on_the_next_poll(cli: Cli, web: FixtureWeb) -> None:
    """A poll that could not store everything keeps no validators: the next one reads the
    feed again (not a 304) and retries the failed page, and no stored page is refetched."""
    cli.write_config(web_config(web, {"name": "flaky", "kind": "feed",
                                      "url": "/feeds/flaky.xml"}))
    first = cli("crawl", "--json")
    assert first.json()["sources"][0]["errors"] == 1
    assert len(cli("articles", "list", "--json").json()) == 1
    failed_fetches = len(web.hits("/status/500"))
    assert failed_fetches >= 1

    second = cli("crawl", "--json").json()["sources"][0]
    assert second["http_status"] == 200 and second["errors"] == 1
    assert len(web.hits("/status/500")) == 2 * failed_fetches
    assert len(web.hits("/coverage/2026/11/asylum-figures.html")) == 1
