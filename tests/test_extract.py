"""Charsets and extraction on the fixture pages (pure functions, no network)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from basis.languages import language_of
from crawler.stages.extract import decode_html, extract_article

CHARSET = Path(__file__).parent / "fixtures" / "web" / "charset"
EXPECTED = json.loads((CHARSET / "expected.json").read_text(encoding="utf-8"))


def header_of(page: Path) -> str | None:
    sidecar = page.with_name(page.name + ".headers")
    if not sidecar.exists():
        return "text/html"
    return sidecar.read_text().split(":", 1)[1].strip()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_page_decodes_with_or_without_declaration(name: str) -> None:
    page = CHARSET / name
    html = decode_html(page.read_bytes(), header_of(page))
    assert "\ufffd" not in html
    assert EXPECTED[name]["title"] in html and EXPECTED[name]["phrase"] in html


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_extracted_text_keeps_the_chinese(name: str) -> None:
    page = CHARSET / name
    found = extract_article(decode_html(page.read_bytes(), header_of(page)), f"http://x.org/{name}")
    assert found.title == EXPECTED[name]["title"]
    assert EXPECTED[name]["phrase"] in found.text
    assert found.language == "zh"


def test_wrong_declared_charset_falls_back_to_detection() -> None:
    body = ("<html><body><p>" + "国家安全部提醒广大留学生警惕境外间谍情报机关的拉拢策反。" * 10
            + "</p></body></html>").encode("gb18030")
    assert "留学生" in decode_html(body, "text/html; charset=utf-8")


def test_gbk_declared_page_with_gb18030_only_characters() -> None:
    body = "<meta charset=gbk><p>𠀀 国家安全</p>".encode("gb18030")
    assert "𠀀 国家安全" in decode_html(body, None)


@pytest.mark.parametrize("declared", ["iso-8859-1", "iso-8859-15", "windows-1252"])
def test_utf8_page_with_a_stale_single_byte_declaration_is_read_as_utf8(declared: str) -> None:
    page = f"<meta charset={declared}><p>A 30 kilómetros de Málaga — «sin daños»</p>"
    assert "30 kilómetros de Málaga — «sin daños»" in decode_html(page.encode("utf-8"))
    header = f"text/html; charset={declared}"
    assert "kilómetros" in decode_html(page.encode("utf-8"), header)


@pytest.mark.parametrize("declared", ["gbk", "gb2312", "big5"])
def test_utf8_chinese_page_with_a_stale_gbk_or_big5_declaration_is_read_as_utf8(
        declared: str) -> None:
    page = f"<meta charset={declared}><title>国家安全部提醒留学生</title><p>中文 新闻</p>"
    html = decode_html(page.encode("utf-8"))
    assert "国家安全部提醒留学生" in html and "中文 新闻" in html
    assert "国家安全部" in decode_html(page.encode("utf-8"), f"text/html; charset={declared}")


def test_latin1_page_declared_as_such_stays_latin1() -> None:
    body = "<meta charset=iso-8859-1><p>A 30 kilómetros de Málaga</p>".encode("latin-1")
    assert "30 kilómetros de Málaga" in decode_html(body)
    assert "30 kilómetros de Málaga" in decode_html(body, "text/html; charset=utf-8")


def test_metadata_date_is_utc_and_canonical_is_read() -> None:
    html = ("<html lang='en-GB'><head><title>T</title>"
            "<meta property='article:published_time' content='2026-11-27T09:00:00+08:00'>"
            "<link rel='canonical' href='/story'></head><body><article><h1>Headline</h1><p>"
            + "Officials warned students about recruitment by foreign agencies. " * 20
            + "</p></article></body></html>")
    found = extract_article(html, "https://news.example/story?utm_source=x")
    assert found.published_at == datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc)
    assert found.canonical == "/story"
    assert found.language == "en"


def test_page_without_a_main_text_keeps_its_title_and_date() -> None:
    html = ("<html><head><title>Ministry statement on students abroad</title>"
            "<meta property='article:published_time' content='2026-11-27T09:00:00+08:00'>"
            "</head><body><div id='app'></div><script src='/app.js'></script></body></html>")
    found = extract_article(html, "https://news.example/statement")
    assert found.title == "Ministry statement on students abroad"
    assert found.published_at == datetime(2026, 11, 27, 1, 0, tzinfo=timezone.utc)


def test_language_detection_without_declaration() -> None:
    assert language_of("国家安全部提醒留学生警惕间谍") == "zh"
    assert language_of("The ministry warned students studying abroad about spies.") == "en"
    assert language_of("") is None


STORY = "<p>" + "Officials warned students about recruitment by foreign agencies. " * 20 + "</p>"
MISDATED = "https://news.example/2026/11/28/story.html"  # the URL's day is not the page's


@pytest.mark.parametrize("head, body", [
    ("<meta property='article:published_time' content='2026-12-05T20:38:27+00:00'>", ""),
    ("<meta name='pubdate' content='2026-12-05T20:38:27Z'>", ""),
    ("", "<time itemprop='datePublished' datetime='2026-12-05T20:38:27Z'>5 Dec</time>"),
    ('<script type="application/ld+json">{"@graph": [{"@type": "WebPage"}, {"@type": '
     '"NewsArticle", "datePublished": "2026-12-05T20:38:27+00:00"}]}</script>', ""),
    ('<script type="application/ld+json">{"datePublished": 1796503107000}</script>', ""),
    ("", "<p>Posted <time datetime='2026-12-05T20:38:27Z'>on Saturday</time></p>"),
    ("<header><time datetime='2026-12-06'>Today</time></header>",  # a masthead's, then the
     "<time datetime='2026-12-05T20:38:27Z'>on Saturday</time>"),  # article's own
    ("<meta name='timestamp' content='2026-12-06T09:00:00Z'><meta name='date' "  # generated,
     "content='2026-12-05'><meta property='article:published_time' "  # a day alone, then
     "content='2026-12-05T20:38:27+00:00'>", ""),  # what says published, with its time
    ('<script type="application/ld+json">{"hasPart": {"datePublished": "2026-11-01"}, '
     '"mainEntity": {"datePublished": "2026-12-05T20:38:27Z"}}</script>', ""),  # with a time
], ids=["article-meta", "date-meta", "itemprop", "json-ld", "json-ld-unix-ms", "time",
        "time-in-article", "published-first", "json-ld-timed"])
def test_a_date_the_page_states_wins_over_the_url_date_with_its_time(head: str,
                                                                     body: str) -> None:
    html = f"<html lang='en'><head><title>T</title>{head}</head><body><article><h1>H</h1>" \
           f"{body}{STORY}</article></body></html>"
    assert extract_article(html, MISDATED).published_at == \
        datetime(2026, 12, 5, 20, 38, 27, tzinfo=timezone.utc)


def test_a_zone_less_stated_time_is_read_in_the_pages_zone_and_the_url_date_is_the_fallback(
        ) -> None:
    chinese = ("<html lang='zh-CN'><head><title>提醒</title><meta property='article:published_time'"
               " content='2026-12-06 04:38:27'></head><body><article><p>"
               + "国家安全部提醒广大留学生警惕境外间谍情报机关的拉拢策反。" * 10 + "</p></article></body></html>")
    assert extract_article(chinese, MISDATED).published_at == \
        datetime(2026, 12, 5, 20, 38, 27, tzinfo=timezone.utc)  # +08:00
    plain = f"<html lang='en'><head><title>T</title></head><body><article>{STORY}</article></body></html>"
    assert extract_article(plain, MISDATED).published_at == datetime(2026, 11, 28, tzinfo=timezone.utc)
