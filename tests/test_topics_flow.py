"""Topics in the flow: a crawl stores matches with their evidence; `topics test` backtests
a stored or draft query and explains one article."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from sqlalchemy import update

from storage.db import open_database
from storage.models import Article
from tests.conftest import Cli, web_config
from tests.webserver import FixtureWeb

ESPIONAGE = ('@mss AND (student* OR 留学生) AND (spy* OR espionage OR 间谍 OR 策反)')
ALIASES = {"mss": ["国家安全部", "国安部", "国家安全机关", "MSS", "Ministry of State Security",
                   "state security"]}


def mission_config(web: FixtureWeb) -> dict:
    config = web_config(
        web,
        {"name": "statements", "kind": "feed", "url": "/feeds/statements.xml", "tags": ["official"]},
        {"name": "coverage", "kind": "feed", "url": "/feeds/coverage.atom", "tags": ["press"]},
        {"name": "charsets", "kind": "feed", "url": "/feeds/charset.xml"})
    config["aliases"] = ALIASES
    config["topics"] = [
        {"name": "espionage-warnings", "query": ESPIONAGE},
        {"name": "student-asylum", "query": "(student* OR 留学生) AND (asylum OR 庇护)",
         "languages": ["en"]},
        {"name": "official-only", "query": "留学生", "sources": ["official"]},
    ]
    return config


def paths(articles: list[dict]) -> set[str]:
    return {a["canonical_url"].split("/", 3)[3] for a in articles}


def test_crawl_matches_topics_and_keeps_the_evidence(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(mission_config(web))
    result = cli("crawl", "--json")
    assert result.code == 0, result.err
    assert result.json()["totals"]["matches"] >= 4

    espionage = paths(cli("articles", "list", "--topic", "espionage-warnings", "--json").json())
    assert {"statements/warning-students.html", "coverage/2026/11/students-subverted.html",
            "charset/gbk-header.html", "charset/big5-header.html"} <= espionage
    assert "coverage/2026/11/spy-film.html" not in espionage  # the spy-thriller trap
    assert paths(cli("articles", "list", "--topic", "student-asylum", "--json").json()) >= \
        {"coverage/2026/11/asylum-figures.html"}
    official = paths(cli("articles", "list", "--topic", "official-only", "--json").json())
    assert official and all(p.startswith("statements/") for p in official)

    traditional = next(a for a in cli("articles", "list", "--json").json()
                       if a["canonical_url"].endswith("big5-header.html"))
    evidence = cli("articles", "show", str(traditional["id"]), "--json").json()["highlights"]
    spans = evidence["espionage-warnings"]["spans"]
    assert "國家安全部" in {s[3] for s in spans}  # highlighted in the original script
    assert evidence["espionage-warnings"]["snippet"]
    shown = cli("articles", "show", str(traditional["id"])).out  # for people: no Python values
    assert f"topics: {', '.join(traditional['topics'])}\n" in shown
    assert re.search(r"published: \d{4}-\d\d-\d\d \d\d:\d\d UTC", shown)
    assert "None" not in shown and "[" not in shown and "copy of" not in shown


def test_backtest_a_stored_and_a_draft_query(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(mission_config(web))
    assert cli("crawl").code == 0
    stored = cli("topics", "test", "espionage-warnings", "--since", "3650d", "--json").json()
    assert stored["scanned"] > 0 and stored["hits"]
    assert sum(stored["per_source"].values()) == len(stored["hits"])
    assert all(hit["highlights"]["spans"] for hit in stored["hits"])

    draft = cli("topics", "test", "--query", "title:spy* -asylum", "--since", "3650d", "--json")
    assert draft.code == 0, draft.err
    assert [h["title"] for h in draft.json()["hits"]] and \
        all("spy" in h["title"].lower() for h in draft.json()["hits"])

    film = next(a for a in cli("articles", "list", "--json").json()
                if a["canonical_url"].endswith("spy-film.html"))
    explained = cli("topics", "test", "espionage-warnings", "--explain", str(film["id"]), "--json")
    clauses = explained.json()
    assert clauses[0]["label"] == "AND" and clauses[0]["matched"] is False
    assert any(c["label"] == "term spy*" and c["matched"] for c in clauses)


def dated_feed(web: FixtureWeb, *items: tuple[str, timedelta]) -> str:
    """A scratch feed of fixture pages, each published that long before now (→ its path)."""
    now = datetime.now(timezone.utc)
    entries = "".join(f"<item><title>{link}</title><link>{link}</link>"
                      f"<pubDate>{format_datetime(now - age, usegmt=True)}</pubDate></item>"
                      for link, age in items)
    (web.root / "feeds" / "_dated.xml").write_text(
        f'<rss version="2.0"><channel><title>dated</title>{entries}</channel></rss>')
    return "/feeds/_dated.xml"


def first_seen(cli: Cli, path: str, age: timedelta) -> None:
    """The article at `path` as if it had been stored `age` ago."""
    with open_database(cli.db).begin() as session:
        session.execute(update(Article).where(Article.canonical_url.endswith(path))
                        .values(first_seen_at=datetime.now(timezone.utc) - age))


def test_since_and_the_day_and_week_counts_go_by_first_seen_time(
        cli: Cli, web: FixtureWeb) -> None:
    """What the analyst saw arrive: a statement published 3 days ago and found now is
    today's; pages published an hour ago but stored 3 and 10 days ago are not."""
    feed = dated_feed(web, ("/statements/warning-students.html", timedelta(days=3)),
                      ("/coverage/2026/11/spy-film.html", timedelta(hours=1)),  # not a hit
                      ("/coverage/2026/11/students-subverted.html", timedelta(hours=1)),
                      ("/charset/gbk-header.html", timedelta(hours=1)))
    config = mission_config(web)
    config["sources"] = web_config(web, {"name": "dated", "kind": "feed", "url": feed,
                                         "tags": ["official"]})["sources"]
    cli.write_config(config)
    assert cli("crawl").code == 0
    assert len(cli("articles", "list", "--json").json()) == 4
    first_seen(cli, "students-subverted.html", timedelta(days=3))
    first_seen(cli, "gbk-header.html", timedelta(days=10))

    today = {"statements/warning-students.html", "coverage/2026/11/spy-film.html"}
    listed = cli("articles", "list", "--since", "1d", "--all", "--json").json()
    assert paths(listed) == today
    assert paths(cli("articles", "search", "@mss OR spy*", "--since", "1d", "--json").json()) \
        == today
    tested = cli("topics", "test", "espionage-warnings", "--since", "1d", "--json").json()
    assert {hit["id"] for hit in tested["hits"]} == {
        a["id"] for a in listed if a["canonical_url"].endswith("warning-students.html")}
    stories = cli("stories", "list", "--since", "1d", "--json").json()
    assert {s["id"] for s in stories} == {a["story_id"] for a in listed}
    week = cli("articles", "list", "--since", "7d", "--json").json()
    assert {s["id"] for s in cli("stories", "list", "--since", "7d", "--json").json()} == \
        {a["story_id"] for a in week}

    counts = {t["name"]: (t["hits_last_day"], t["hits_last_week"])
              for t in cli("topics", "list", "--json").json()}
    assert counts == {"espionage-warnings": (1, 2),  # found now and 3 days ago; not 10 days
                      "official-only": (1, 1),  # 留学生: the statement; the GBK page is older
                      "student-asylum": (0, 1)}  # the coverage cites asylum figures


def test_bad_queries_point_at_the_column(cli: Cli, web: FixtureWeb) -> None:
    config = mission_config(web)
    config["topics"][0]["query"] = "@mss AND (student* OR"
    cli.write_config(config)
    result = cli("config", "check")
    assert result.code == 2
    assert "topics[0].query: topic 'espionage-warnings': syntax error at column 22" in result.err
    assert result.err.splitlines()[-1].strip() == "^"

    cli.write_config(mission_config(web))
    draft = cli("topics", "test", "--query", "spy AND (")
    assert draft.code == 2 and "syntax error at column" in draft.err


def test_articles_search_finds_stored_articles_with_a_query(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(mission_config(web))
    assert cli("crawl").code == 0
    found = cli("articles", "search", "@mss AND 留学生", "--json")
    assert found.code == 0, found.err
    hits = found.json()
    assert "statements/warning-students.html" in paths(hits)
    assert "charset/big5-header.html" in paths(hits)  # Traditional, found by the alias
    assert all(h["highlights"]["spans"] and h["highlights"]["snippet"] for h in hits)
    assert [h["first_seen_at"] for h in hits] == sorted((h["first_seen_at"] for h in hits),
                                                        reverse=True)  # newest first
    assert "coverage/2026/11/spy-film.html" not in paths(hits)

    film = cli("articles", "search", 'title:spy* "film festival"', "--json").json()
    assert paths(film) == {"coverage/2026/11/spy-film.html"}
    assert len(cli("articles", "search", "@mss", "--limit", "1", "--json").json()) == 1
    table = cli("articles", "search", "asylum")
    assert table.code == 0 and "articles match asylum" in table.out and "matched:" in table.out
    bad = cli("articles", "search", "asylum AND (")
    assert bad.code == 2 and "syntax error at column" in bad.err


def test_query_mistakes_are_errors_or_warnings_not_silent_misses(cli: Cli) -> None:
    topics = [{"name": "asylum", "query": "students titel:asylum"}]
    cli.write_config({"topics": topics})
    result = cli("config", "check")
    assert result.code == 2
    assert ("topics[0].query: topic 'asylum': syntax error at column 10: unknown field titel: "
            "(did you mean title:?") in result.err
    topics[0]["query"] = "spy NEAR/99999999999 students"  # crashed the crawl (OverflowError)
    cli.write_config({"topics": topics})
    result = cli("config", "check")
    assert result.code == 2 and "column 5: NEAR/n takes at most 1000 words" in result.err

    topics[0]["query"] = "spy and students"
    cli.write_config({"topics": topics})
    result = cli("config", "check")
    assert result.code == 0, result.err
    assert ("config.yaml: topics[0].query: topic 'asylum': lower-case and: searched "
            "as words, not as operators; for the operators write: spy AND students"
            in " ".join(result.out.split()))
    assert cli("db", "upgrade").code == 0  # read commands need a database
    for args in (("topics", "test", "asylum", "--json"),
                 ("articles", "search", "spy near/5 students", "--json")):
        result = cli(*args)
        assert result.code == 0, result.err
        result.json()  # the warning is not in it
        assert result.err.startswith("warning: lower-case ") and "write: spy " in result.err

    for args in (("articles", "search", ""), ("topics", "test", "--query", "\u200b")):
        result = cli(*args)
        assert result.code == 2 and "the query is empty" in result.err, result.err
