"""Every kind of source through the real CLI against the fixture web: sitemaps (index, gzipped
child, Google News), listings (selector, pagination cap, robots), watched pages (versions),
Retry-After, and `sources check`."""
from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.stages.dedupe import material_change
from spiders.feed import NotAFeed, parse_feed
from spiders.sitemap import NotASitemap, parse_sitemap
from tests.conftest import Cli, web_config
from tests.test_crawl import STATEMENTS
from tests.webserver import FixtureWeb

SITEMAP = {"name": "sitemap", "kind": "sitemap", "url": "/sitemaps/index.xml"}
LISTING = {"name": "newsroom", "kind": "listing", "url": "/listing/page-1.html",
           "links": "ul.headlines a.headline", "next_page": "a[rel=next]", "max_pages": 2}
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def paths(articles: list[dict]) -> dict[str, dict]:
    return {a["canonical_url"].split("/", 3)[3]: a for a in articles}


def source_row(result, name: str) -> dict:
    return next(s for s in result.json()["sources"] if s["source"] == name)


def test_sitemap_index_with_gzipped_news_child(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, SITEMAP, backfill="3650d"))
    result = cli("crawl", "--json")
    assert result.code == 0, result.err
    stored = paths(cli("articles", "list", "--json").json())
    assert set(stored) == {"coverage/2026/11/students-subverted.html",
                           "statements/warning-students.html", "statements/data-case.html"}
    # a URL dated before the backfill window is not followed on the first poll
    assert web.hits("/broken/item-1.html") == []
    row = source_row(result, "sitemap")
    assert row["items"] == 3 and row["skipped"] == 1 and "older than the backfill" in row["message"]
    assert stored["statements/warning-students.html"]["language"] == "zh"

    before = len(web.log)
    assert cli("crawl", "--json").code == 0
    # (robots.txt is read once per crawl process)
    assert [h.path for h in web.log[before:] if h.path != "/robots.txt"] == \
        ["/sitemaps/index.xml"], "an unchanged sitemap index must cost one request"


def test_listing_follows_only_selected_links_up_to_the_page_cap(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, LISTING))
    result = cli("crawl", "--json")
    assert result.code == 0, result.err
    assert set(paths(cli("articles", "list", "--json").json())) == {
        "statements/warning-students.html", "statements/data-case.html",  # relative link too
        "coverage/2026/11/asylum-figures.html"}  # from page 2
    assert web.hits("/listing/page-3.html") == []  # beyond max_pages
    for ignored in ("/index.html", "/statements/press-conference.html",
                    "/coverage/2026/11/spy-film.html"):  # navigation and sidebar links
        assert web.hits(ignored) == []
    # robots.txt disallows /private/: never requested, and the skip is in the summary
    assert web.hits("/private/secret.html") == []
    row = source_row(result, "newsroom")
    assert row["skipped"] == 1 and "robots.txt" in row["message"]


@pytest.fixture
def watched(web: FixtureWeb) -> Iterator[Path]:
    path = web.root / "_watched.html"
    yield path
    path.unlink(missing_ok=True)


def notice(views: int, updated: str, extra: str = "") -> str:
    return f"""<html><head><title>关于加强留学人员安全教育的通知</title></head><body><article>
<h1>关于加强留学人员安全教育的通知</h1>
<p>更新时间：{updated} · 阅读 {views} 次</p>
<p>各有关单位：为切实做好出国留学人员安全教育工作，提高留学人员防范境外间谍情报机关拉拢策反的意识和能力，
现就有关事项通知如下。各单位要在行前培训中专门讲解国家安全法律法规，介绍常见的拉拢策反手法和典型案例。</p>
<p>留学人员在境外遇到可疑情况，应及时向驻外使领馆报告，也可拨打12339国家安全机关举报受理电话反映情况。</p>
{extra}</article></body></html>"""


def test_watched_page_keeps_a_new_version_only_when_its_text_changes(
        cli: Cli, web: FixtureWeb, watched: Path) -> None:
    config = web_config(web, {"name": "notice", "kind": "page", "url": "/_watched.html"})
    config["topics"] = [{"name": "students", "query": "留学人员 AND 策反"}]
    cli.write_config(config)
    watched.write_text(notice(100, "2026年11月27日 09:00"), encoding="utf-8")
    assert cli("crawl", "--no-alerts").code == 0
    first = cli("articles", "list", "--json").json()
    assert len(first) == 1 and first[0]["topics"] == ["students"]

    watched.write_text(notice(2481, "2026年11月28日 17:45"), encoding="utf-8")  # counters, date
    unchanged = cli("crawl", "--no-alerts", "--json")
    assert source_row(unchanged, "notice")["new"] == 0
    assert len(cli("articles", "list", "--json").json()) == 1

    watched.write_text(notice(2500, "2026年11月28日 18:00", "<p>补充通知：即日起，各单位须于学生出国前"
                              "组织签署国家安全承诺书，并建立留学人员定期联络机制。</p>"), encoding="utf-8")
    changed = cli("crawl", "--no-alerts", "--json")
    assert source_row(changed, "notice")["new"] == 1
    versions = cli("articles", "list", "--json").json()
    assert len(versions) == 2
    newest = versions[0]
    assert newest["canonical_url"].endswith("/_watched.html#version-2")
    assert newest["story_id"] == first[0]["story_id"] and newest["duplicate_of"] is None
    assert newest["topics"] == ["students"]  # matched (and alerted) like a new article


def test_retry_after_is_respected_per_source(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, {"name": "busy", "kind": "feed", "url": "/throttled/feed.xml"},
                                {"name": "statements", "kind": "feed",
                                 "url": "/feeds/statements.xml", "follow": False}))
    first = cli("crawl", "--json")
    assert first.code == 1
    busy = source_row(first, "busy")
    assert busy["http_status"] == 429 and "asked to wait until" in busy["message"]
    assert len(web.hits("/throttled/feed.xml")) == 1, "a 429 must not be retried at once"
    assert source_row(first, "statements")["new"] == 3

    second = cli("crawl", "--json")
    assert second.code == 0, second.err
    assert source_row(second, "busy")["status"] == "deferred"
    assert len(web.hits("/throttled/feed.xml")) == 1  # not asked again before the hour is up


def test_sources_check_shows_what_a_source_would_yield_and_stores_nothing(
        cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, LISTING))
    checked = cli("sources", "check", "newsroom", "--json")
    assert checked.code == 0, checked.err
    result = checked.json()
    assert result["status"] == "ok" and result["http_status"] == 200
    assert {e["url"].split("/", 3)[3] for e in result["entries"]} == {
        "statements/warning-students.html", "statements/data-case.html",
        "private/secret.html", "coverage/2026/11/asylum-figures.html"}
    assert not any(e["known"] for e in result["entries"])
    assert cli("articles", "list", "--json").json() == []
    assert web.hits("/statements/warning-students.html") == []  # links are shown, not fetched
    table = cli("sources", "check", "newsroom")
    assert "nothing stored" in table.out and "new" in table.out
    missing = cli("sources", "check", "nope")
    assert missing.code == 2 and "no source named 'nope'" in missing.err


def test_sources_check_all_checks_every_source_in_one_line_each(cli: Cli, web: FixtureWeb) -> None:
    gone = {"name": "gone", "kind": "feed", "url": "/feeds/no-such-feed.xml"}
    cli.write_config(web_config(web, LISTING, STATEMENTS, gone))
    checked = cli("sources", "check", "--all", "--json")
    assert checked.code == 1 and "1 of 3 sources failed: gone" in checked.err
    results = {r["source"]: r for r in checked.json()}
    assert list(results) == ["newsroom", "statements", "gone"]  # config order
    assert (results["newsroom"]["status"], len(results["newsroom"]["entries"])) == ("ok", 4)
    assert results["statements"]["status"] == "ok" and results["statements"]["entries"]
    assert (results["gone"]["status"], results["gone"]["http_status"]) == ("failed", 404)
    assert cli("articles", "list", "--json").json() == []

    table = cli("sources", "check", "--all").out.splitlines()
    for name, status in (("newsroom", "ok"), ("statements", "ok"), ("gone", "failed")):
        (line,) = [line for line in table if f" {name} " in line]
        assert f" {status} " in line
    assert cli("sources", "check").code == 2
    assert cli("sources", "check", "newsroom", "--all").code == 2


# ---------------------------------------------------------------- pure parts

def test_sitemap_parsing_is_capped_streamed_and_never_expands_entities(tmp_path: Path) -> None:
    urls = "".join(f"<url><loc>https://news.example/a/{i}</loc></url>" for i in range(50_000))
    big = gzip.compress(f'<?xml version="1.0"?><urlset {NS}>{urls}</urlset>'.encode())
    parsed = parse_sitemap(big, max_urls=1000)
    assert len(parsed.entries) == 1000 and parsed.skipped == 49_000
    with pytest.raises(NotASitemap, match="max_bytes"):
        parse_sitemap(big, max_urls=10, max_bytes=100_000)  # a gzip bomb stops at the cap

    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-SITEMAP-CONTENT")
    hostile = (f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file://{secret}">'
               '<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
               f'<urlset {NS}><url><loc>https://news.example/&x;&b;</loc></url></urlset>')
    entries = parse_sitemap(hostile.encode(), max_urls=10).entries
    assert all("SECRET" not in e.url and "aaaa" not in e.url for e in entries)


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><catalog><book id="b1"><title>XML Guide</title></book></catalog>',
    b'<?xml version="1.0"?><rss version="2.0"></rss>',
], ids=["other-xml", "rss-without-channel"])
def test_xml_without_a_channel_or_entries_is_not_a_feed(body: bytes) -> None:
    with pytest.raises(NotAFeed, match="no channel and no entries"):
        parse_feed(body, "http://news.example/feed.xml", {"content-type": "application/xml"})


def test_a_channel_without_items_is_an_empty_feed() -> None:
    body = (Path(__file__).parent / "fixtures/web/feeds/empty.xml").read_bytes()
    feed = parse_feed(body, "http://news.example/feed.xml", {"content-type": "application/xml"})
    assert feed.entries == [] and feed.warning is None


def test_material_change_ignores_digits_case_and_spacing() -> None:
    text = "The ministry warned students abroad. Updated 27 Nov 2026, 1,024 views."
    assert not material_change(text, "The Ministry  warned students abroad. Updated 28 Nov 2026,"
                                     " 9,999 views.")
    assert material_change(text, text + " It also announced a new hotline and asked every "
                                        "university to brief departing students.")


def test_blank_lines_before_the_xml_declaration_are_no_warning() -> None:
    """As 21 real feeds of the shared corpus start; a warning would stay on the source
    at every poll."""
    body = b'\n\n<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>' \
           b'<title>a</title><link>http://news.example/a</link></item></channel></rss>'
    for headers in ({"content-type": "application/xml"}, {}):  # nor is a missing type
        feed = parse_feed(body, "http://news.example/feed.xml", headers)
        assert [e.url for e in feed.entries] == ["http://news.example/a"], headers
        assert feed.warning is None, headers
