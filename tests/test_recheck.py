"""Official statements re-checked for edits and deletions (issue 18, item 5): on a decaying
schedule, with a conditional GET; an edit keeps a new version and alerts once with the diff,
a page gone (404, or a redirect to the front page) alerts once pointing to the copy kept."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from alerts.channels.base import AlertItem, AlertMessage
from alerts.channels.console import ConsoleChannel
from alerts.channels.jsonl import JsonlChannel
from basis.clock import utcnow
from crawler.stages.recheck import is_front_page, next_check, text_diff
from storage.db import open_database
from storage.models import Article
from tests import events
from tests.conftest import Cli, web_config
from tests.receivers import SlackReceiver, SmtpServer
from tests.test_channels import TOPIC, bodies, email_channel, mrkdwn, slack
from tests.test_crawl import COVERAGE, STATEMENTS, by_path
from tests.test_daemon import in_process
from tests.test_originals import alerted
from tests.webserver import FixtureWeb

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
WARNING, PRESS, CASE = ("statements/warning-students.html", "statements/press-conference.html",
                        "statements/data-case.html")


def test_the_schedule_decays_from_hourly_to_daily_and_ends_after_30_days() -> None:
    assert next_check(T0, T0) == T0 + HOUR
    assert next_check(T0, T0 + 23.5 * HOUR) == T0 + DAY  # never beyond its band
    assert next_check(T0, T0 + DAY) == T0 + 2 * DAY
    assert next_check(T0, T0 + 29.5 * DAY) == T0 + 30 * DAY
    assert next_check(T0, T0 + 30 * DAY) is None


def test_a_front_page_and_a_diff_by_sentence() -> None:
    assert is_front_page("https://mss.example/a/1.html", "https://mss.example/")
    assert is_front_page("https://mss.example/a/1.html", "https://www.mss.example/index.html")
    assert not is_front_page("https://mss.example/a/1.html", "https://mss.example/a/2.html")
    assert not is_front_page("https://mss.example/", "https://mss.example/")
    assert not is_front_page("https://mss.example/a/1.html", "https://other.example/")
    assert text_diff("一是甲。二是乙。三是丙。四是丁。", "一是甲。二是乙。三是戊。四是丁。") == [
        "  二是乙。", "- 三是丙。", "+ 三是戊。", "  四是丁。"]


def make_due(cli: Cli) -> None:
    db = open_database(cli.db)
    with db.begin() as session:
        session.execute(update(Article).where(Article.next_check_at.is_not(None))
                        .values(next_check_at=utcnow() - timedelta(seconds=1)))
    db.kw["bind"].dispose()


def crawl(cli: Cli) -> dict:
    result = cli("crawl", "--json")
    assert result.code == 0, result.err
    return result.json()["totals"]


def test_an_edited_and_a_removed_statement_alert_once_an_unchanged_one_costs_a_304(
        cli: Cli, web: FixtureWeb) -> None:
    config = web_config(web, dict(STATEMENTS, official=True), COVERAGE, backfill="36500d")
    config |= {"topics": [{"name": "statements", "query": "source:statements",
                           "channels": ["desk"]}],
               "channels": {"desk": {"type": "jsonl", "path": "alerts.jsonl"}}}
    cli.write_config(config)
    first = crawl(cli)
    assert first["rechecked"] == 0 and [a["kind"] for a in alerted(cli)] == ["new"] * 3

    page = web.root / WARNING
    page.write_text(page.read_text("utf-8").replace("可以不予追究", "可以从轻处理，但须接受审查"),
                    "utf-8")
    (web.root / CASE).unlink()
    make_due(cli)
    second = crawl(cli)
    assert (second["rechecked"], second["edited"], second["removed"]) == (3, 1, 0)  # gone once
    press = web.hits("/" + PRESS)
    assert len(press) == 2 and press[1].headers["if-none-match"]  # answered 304
    make_due(cli)
    confirmed = crawl(cli)  # gone twice in a row: removed
    assert (confirmed["rechecked"], confirmed["edited"], confirmed["removed"]) == (3, 0, 1)
    edited, removed = alerted(cli)[3:]
    assert (edited["kind"], removed["kind"]) == ("edited", "removed")
    (item,) = edited["items"]
    assert item["title"] == "国家安全部提醒：警惕境外间谍情报机关对留学生拉拢策反"
    assert any(line.startswith("- ") and "可以不予追究" in line for line in item["diff"])
    assert any(line.startswith("+ ") and "从轻处理" in line for line in item["diff"])
    assert "articles show" in removed["items"][0]["snippet"]
    assert "--raw" in removed["items"][0]["snippet"]

    articles = by_path(cli("articles", "list", "--json").json())
    shown = cli("articles", "show", str(articles[WARNING]["id"]), "--json").json()
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    first_read, edit_read = (v["archived"]["sha256"] for v in shown["versions"])
    assert first_read != edit_read == shown["archived"]["sha256"]  # --raw: the text shown
    assert "可以不予追究" in shown["versions"][0]["text"] and "从轻处理" in shown["text"]
    assert articles[WARNING]["story_id"] == shown["story_id"]
    gone = cli("articles", "show", str(articles[CASE]["id"]), "--json").json()
    assert gone["removed_at"] and gone["text"]  # the copy kept

    # the press conference now redirects to the front page; nothing else changed
    (web.root / (PRESS + ".headers")).write_text("Status: 302\nLocation: /index.html\n")
    make_due(cli)
    assert crawl(cli)["removed"] == 0
    make_due(cli)
    third = crawl(cli)
    assert (third["rechecked"], third["edited"], third["removed"]) == (2, 0, 1)
    make_due(cli)
    summary = cli("crawl")  # the edited statement; the removed ones rest
    assert summary.code == 0 and "statements re-checked: 1, edited 0, removed 0" in summary.out
    assert web.hits("/" + WARNING)[-1].headers["if-none-match"]  # its new version's ETag
    kinds = [a["kind"] for a in alerted(cli)]
    assert kinds == ["new"] * 3 + ["edited", "removed", "removed"]  # once per version, channel
    assert len(web.hits("/" + CASE)) == 3  # read, gone, gone again: resting since
    coverage = [p for p in articles if p.startswith("coverage/")]
    assert coverage and all(len(web.hits("/" + p)) == 1 for p in coverage)  # never re-checked


def test_a_page_gone_once_and_back_is_no_removal(cli: Cli, web: FixtureWeb) -> None:
    config = web_config(web, dict(STATEMENTS, official=True), backfill="36500d")
    config |= {"topics": [{"name": "statements", "query": "source:statements",
                           "channels": ["desk"]}],
               "channels": {"desk": {"type": "jsonl", "path": "alerts.jsonl"}}}
    cli.write_config(config)
    crawl(cli)
    page = web.root / CASE
    kept = page.read_bytes()
    page.unlink()
    make_due(cli)
    assert crawl(cli)["removed"] == 0  # a glitch, or the first sign
    page.write_bytes(kept)
    make_due(cli)
    crawl(cli)
    page.unlink()
    make_due(cli)
    assert crawl(cli)["removed"] == 0  # gone again, but not twice in a row
    assert [a["kind"] for a in alerted(cli)] == ["new"] * 3  # no "removed"


def test_a_page_that_yields_no_text_is_no_edit(cli: Cli, web: FixtureWeb) -> None:
    """A statement page rendered by script (no text to read) leaves the text kept as it is."""
    config = web_config(web, dict(STATEMENTS, official=True), backfill="36500d")
    cli.write_config(config)
    crawl(cli)
    warning = by_path(cli("articles", "list", "--json").json())[WARNING]
    (web.root / WARNING).write_text("<html><body><script>render()</script></body></html>")
    make_due(cli)
    assert crawl(cli)["edited"] == 0
    shown = cli("articles", "show", str(warning["id"]), "--json").json()
    assert "留学生" in shown["text"] and shown["versions"] == []  # kept as first stored


DIFF = ("  二是乙。", "- 可以不予追究 <script>alert(1)</script>",
        "+ [bold]可以从轻处理[/bold] <!channel> \x1b[31m{{ 7*7 }}")


def test_a_statement_alert_shows_its_diff_as_data_in_every_channel(
        smtp_server: SmtpServer, slack_receiver: SlackReceiver, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    message = AlertMessage("edited", TOPIC, (AlertItem(
        "国家安全部提醒", "https://mss.example/a.html", "statements", None,
        "Version 2 of this statement", diff=DIFF),), story_id=3)
    assert email_channel(smtp_server).send(message).ok
    text, html = bodies(smtp_server)
    assert "Statement edited: 国家安全部提醒" in str(smtp_server.messages[0].message["Subject"])
    assert "&lt;script&gt;" in html and "<script>" not in html and "49" not in html
    assert "- 可以不予追究 <script>alert(1)</script>" in text and "{{ 7*7 }}" in text

    assert slack(slack_receiver).send(message).ok
    payload = slack_receiver.requests[0].json
    (diff,) = [b for b in payload["blocks"] if b["type"] == "rich_text"]
    shown = diff["elements"][0]["elements"][0]
    assert shown["type"] == "text" and "<!channel>" in shown["text"]  # literal, never a ping
    assert "\x1b" not in shown["text"] and "<!channel>" not in mrkdwn(payload)

    assert ConsoleChannel().send(message).ok
    out = capsys.readouterr().out
    assert "STATEMENT EDITED" in out and "[bold]可以从轻处理[/bold]" in out and "\x1b" not in out

    path = tmp_path / "alerts.jsonl"
    assert JsonlChannel(path).send(message).ok
    assert json.loads(path.read_text("utf-8"))["items"][0]["diff"] == list(DIFF)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # (both backends: above)
def test_the_daemon_rechecks_due_statements_through_its_running_crawler(
        cli: Cli, web: FixtureWeb) -> None:
    config = web_config(web, dict(STATEMENTS, official=True, every="1h"), backfill="36500d")
    config |= {"daemon": {"recheck_every": "1s", "dispatch_every": "1s"},
               "topics": [{"name": "statements", "query": "source:statements",
                           "channels": ["desk"]}],  # (the daemon runs in this folder)
               "channels": {"desk": {"type": "jsonl",
                                     "path": str(cli.config.parent / "alerts.jsonl")}}}
    cli.write_config(config)
    crawl(cli)
    (web.root / CASE).unlink()
    make_due(cli)
    assert crawl(cli)["removed"] == 0  # gone once: asked again before anyone is told
    make_due(cli)
    with in_process(cli):
        events.wait_for(lambda: [a for a in alerted(cli) if a["kind"] == "removed"],
                        "the removed statement's alert", timeout=8)
    assert [a["kind"] for a in alerted(cli)].count("removed") == 1
