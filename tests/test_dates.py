"""Dates: feed, sitemap and page date strings → aware UTC; a missing, unreadable or far-future
date falls back to first-seen time and is flagged."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from basis.dates import CHINA, parse_date, zone_for_language
from spiders.feed import parse_feed
from tests.conftest import Cli, web_config
from tests.webserver import FixtureWeb

UTC = timezone.utc
ZH = zone_for_language("zh")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


CASES = [
    # RFC 822 / 1123 / 2822 and their real-world variants
    ("Fri, 27 Nov 2026 09:00:00 +0800", UTC, utc(2026, 11, 27, 1)),
    ("Fri, 27 Nov 2026 09:00:00 +08:00", UTC, utc(2026, 11, 27, 1)),
    ("Fri, 27 Nov 2026 09:00:00 -0500", UTC, utc(2026, 11, 27, 14)),
    ("27 Nov 2026 09:00:00 GMT", UTC, utc(2026, 11, 27, 9)),  # no weekday
    ("Mon, 27 Nov 2026 09:00:00 GMT", UTC, utc(2026, 11, 27, 9)),  # wrong weekday
    ("fri, 27 nov 2026 09:00:00 gmt", UTC, utc(2026, 11, 27, 9)),  # lowercase
    ("Fri, 27 Nov 26 09:00:00 GMT", UTC, utc(2026, 11, 27, 9)),  # 2-digit year
    ("Fri, 27 Nov 2026 09:00 GMT", UTC, utc(2026, 11, 27, 9)),  # no seconds
    ("Fri, 27 Nov 2026 9:5 +0800", UTC, utc(2026, 11, 27, 1, 5)),
    ("Fri, 27 Nov 2026 09:00:00 UT", UTC, utc(2026, 11, 27, 9)),
    ("Fri, 27 Nov 2026 09:00:00 UTC", UTC, utc(2026, 11, 27, 9)),
    ("Fri, 27 Nov 2026 09:00:00 Z", UTC, utc(2026, 11, 27, 9)),
    ("Fri, 27 Nov 2026 09:00:00 -0000", CHINA, utc(2026, 11, 27, 9)),
    ("Fri, 27 Nov 2026 09:00:00 EST", UTC, utc(2026, 11, 27, 14)),
    ("Fri, 27 Nov 2026 09:00:00 EDT", UTC, utc(2026, 11, 27, 13)),
    ("Fri, 27 Nov 2026 09:00:00 CST", UTC, utc(2026, 11, 27, 15)),
    ("Fri, 27 Nov 2026 09:00:00 CDT", UTC, utc(2026, 11, 27, 14)),
    ("Fri, 27 Nov 2026 09:00:00 MST", UTC, utc(2026, 11, 27, 16)),
    ("Fri, 27 Nov 2026 09:00:00 MDT", UTC, utc(2026, 11, 27, 15)),
    ("Fri, 27 Nov 2026 09:00:00 PST", UTC, utc(2026, 11, 27, 17)),
    ("Fri, 27 Nov 2026 09:00:00 PDT", UTC, utc(2026, 11, 27, 16)),
    ("Fri, 27 Nov 2026 09:00:00 CET", UTC, utc(2026, 11, 27, 8)),
    ("Fri, 27 Nov 2026 09:00:00 GMT+8", UTC, utc(2026, 11, 27, 1)),
    ("Fri, 27 Nov 2026 09:00:00 +0800 (CST)", UTC, utc(2026, 11, 27, 1)),
    ("Friday, 27-Nov-26 10:30:00 GMT", UTC, utc(2026, 11, 27, 10, 30)),  # RFC 850
    ("Fri Nov 27 09:00:00 2026", UTC, utc(2026, 11, 27, 9)),  # asctime
    ("Fri Nov 27 09:00:00 CST 2026", ZH, utc(2026, 11, 27, 1)),  # Java, Chinese server
    ("Fri Nov 27 09:00:00 CST 2026", UTC, utc(2026, 11, 27, 15)),  # Java, US server
    ("Nov 27, 2026 3:05 PM", UTC, utc(2026, 11, 27, 15, 5)),
    ("27 Nov 2026", UTC, utc(2026, 11, 27)),  # no time
    ("Fri, 27 Nov 2026 09:00:00", UTC, utc(2026, 11, 27, 9)),  # no zone: default zone
    ("Fri, 27 Nov 2026 09:00:00", ZH, utc(2026, 11, 27, 1)),
    # ISO 8601 / W3C datetime
    ("2026-11-27", UTC, utc(2026, 11, 27)),
    ("2026-11-27", ZH, utc(2026, 11, 26, 16)),
    ("2026-11-27T09:00", UTC, utc(2026, 11, 27, 9)),
    ("2026-11-27T09:00", ZH, utc(2026, 11, 27, 1)),
    ("2026-11-27T09:00:00Z", ZH, utc(2026, 11, 27, 9)),
    ("2026-11-27T09:00:00+08:00", UTC, utc(2026, 11, 27, 1)),
    ("2026-11-27T09:00:00+0800", UTC, utc(2026, 11, 27, 1)),
    ("2026-11-27T09:00:00.250Z", UTC, utc(2026, 11, 27, 9, 0, 0, 250000)),
    ("2026-11-27T09:00:00.123456789-05:00", UTC, utc(2026, 11, 27, 14, 0, 0, 123456)),
    ("2026-11-27 09:00:00", ZH, utc(2026, 11, 27, 1)),
    ("2026-11-27 09:00:00 GMT", ZH, utc(2026, 11, 27, 9)),
    ("2026-11-27 09:00 +0800", UTC, utc(2026, 11, 27, 1)),
    ("  2026-11-27T09:00:00Z\n", UTC, utc(2026, 11, 27, 9)),
    # Chinese and other numeric forms
    ("2026年11月27日 09:00", ZH, utc(2026, 11, 27, 1)),
    ("2026年11月27日 09:00", UTC, utc(2026, 11, 27, 9)),
    ("2026年11月27日09:00:30", ZH, utc(2026, 11, 27, 1, 0, 30)),
    ("2026年11月27日", ZH, utc(2026, 11, 26, 16)),
    ("2026年11月27日 上午9:00", ZH, utc(2026, 11, 27, 1)),
    ("2026年11月27日 下午3:05", ZH, utc(2026, 11, 27, 7, 5)),
    ("2026年11月27日 晚上11:30", ZH, utc(2026, 11, 27, 15, 30)),
    ("2026年11月27日 9时5分", ZH, utc(2026, 11, 27, 1, 5)),
    ("２０２６年１１月２７日", ZH, utc(2026, 11, 26, 16)),
    ("２０２６年１１月２７日 ０９：００", ZH, utc(2026, 11, 27, 1)),
    ("2026/11/27 09:00", ZH, utc(2026, 11, 27, 1)),
    ("2026/11/27 09:00+08:00", UTC, utc(2026, 11, 27, 1)),
    ("2026.11.27", ZH, utc(2026, 11, 26, 16)),
    ("北京时间2026年11月27日 09:00", UTC, utc(2026, 11, 27, 1)),
    ("北京时间 2026-11-27 09:00", UTC, utc(2026, 11, 27, 1)),
    ("2026-11-27 09:00（北京时间）", UTC, utc(2026, 11, 27, 1)),
    ("发布时间：2026-11-27 09:00", ZH, utc(2026, 11, 27, 1)),
]

JUNK = [None, "", "   ", "garbage", "not a date", "昨天下午", "2026", "12345", "1 2 3", "+0800",
        "GMT", "Fri, 32 Nov 2026 09:00:00 +0800", "Fri, 27 Nov 2026 25:00:00 GMT",
        "2026-02-30", "2026年13月40日", "2026-11-27 09:00 +9999", "9999-12-31T23:59:59-05:00",
        "11/27/2026", "27/11/2026"]


@pytest.mark.parametrize(("value", "zone", "expected"), CASES,
                         ids=[f"{v}@{z}" for v, z, _ in CASES])
def test_parse_date_reads_each_form_to_utc(value: str, zone: timezone,
                                           expected: datetime) -> None:
    parsed = parse_date(value, zone)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", JUNK)
def test_parse_date_gives_none_for_junk(value: str | None) -> None:
    assert parse_date(value) is None
    assert parse_date(value, ZH) is None


@given(st.text(max_size=60))
def test_parse_date_never_raises(value: str) -> None:
    parsed = parse_date(value, ZH)
    assert parsed is None or parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(("language", "offset"), [
    ("zh", 8), ("zh-cn", 8), ("zh-CN", 8), ("zh_TW", 8), ("ZH-Hans", 8),
    ("en", 0), ("en-us", 0), ("zha", 0), ("", 0), (None, 0)])
def test_zone_for_language(language: str | None, offset: int) -> None:
    assert zone_for_language(language).utcoffset(None) == timedelta(hours=offset)


def _feed(language: str, date: str) -> bytes:
    return (f'<rss version="2.0"><channel><title>t</title><language>{language}</language>'
            f'<item><title>a</title><link>http://example.org/a</link><pubDate>{date}</pubDate>'
            "</item></channel></rss>").encode()


@pytest.mark.parametrize(("feed_language", "hint", "date", "expected"), [
    ("en", None, "Fri, 27 Nov 2026 09:00:00 +0800", utc(2026, 11, 27, 1)),  # feedparser agrees
    ("zh-cn", None, "2026年11月27日 09:00", utc(2026, 11, 27, 1)),  # feedparser: 1 Nov
    ("zh-cn", None, "Fri, 27 Nov 2026 09:00:00", utc(2026, 11, 27, 1)),
    ("en", None, "Fri, 27 Nov 2026 09:00:00", utc(2026, 11, 27, 9)),
    ("en", "zh", "2026-11-27 09:00:00", utc(2026, 11, 27, 1)),  # the source hint wins
    ("zh-cn", "en", "2026-11-27 09:00:00", utc(2026, 11, 27, 9)),
    ("en", None, "whenever", None),
])
def test_feed_entry_dates(feed_language: str, hint: str | None, date: str,
                          expected: datetime | None) -> None:
    feed = parse_feed(_feed(feed_language, date), "http://example.org/feed.xml", {},
                      language_hint=hint)
    assert feed.entries[0].published == expected


def test_crawled_feed_dates_are_stored_in_utc_and_flagged_when_estimated(
        cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, {"name": "dates", "kind": "feed", "url": "/feeds/dates.xml",
                                      "follow": False}))
    result = cli("crawl", "--json")
    assert result.code == 0, result.err
    assert result.json()["sources"][0]["new"] == 8

    stored = {a["url"].rsplit("/", 1)[1]: a for a in cli("articles", "list", "--json").json()}
    assert {name: (a["published_at"], a["date_is_estimated"]) for name, a in stored.items()
            if not a["date_is_estimated"]} == {
        "chinese.html": ("2026-11-27T01:00:00+00:00", False),
        "rfc850.html": ("2026-11-27T10:30:00+00:00", False),
        "zoneless.html": ("2026-11-27T03:15:00+00:00", False),
        "java-cst.html": ("2026-11-27T04:00:00+00:00", False),
        "fullwidth.html": ("2026-11-26T07:05:00+00:00", False),
    }
    for name in ("missing.html", "garbage.html", "future.html"):
        article = stored[name]
        assert article["date_is_estimated"] is True, name
        # first-seen time stands in (never the feed's 2099)
        published = datetime.fromisoformat(article["published_at"])
        first_seen = datetime.fromisoformat(article["first_seen_at"])
        assert published.utcoffset() == timedelta(0), name
        assert abs(published - first_seen) < timedelta(minutes=1), name
