"""The statement leads its story (issue 18, item 3): a story's first report from an official
source, else its earliest report, is its lead; `stories list --json` gives it with the story's
languages, `stories show` lists it first, and update alerts say what followed it."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

from rich.console import Console
from sqlalchemy import update

from alerts.channels.console import ConsoleChannel
from alerts.channels.email import EmailChannel
from alerts.channels.jsonl import JsonlChannel
from alerts.channels.slack import SlackChannel
from alerts.dispatcher import Dispatcher
from alerts.outbox import AlertPolicy, queue_alerts
from storage import repository as repo
from storage.db import open_database
from storage.models import Alert, Article
from tests.conftest import Cli
from tests.receivers import SlackReceiver, SmtpServer

SOURCES = {"statements": True, "bbc": False, "voa-zh": False, "rfa-zh": False,
           "news-search": False, "reprints": False}
CONFIG = {"sources": [{"name": name, "kind": "feed", "url": f"https://{name}.example/feed.xml",
                       **({"official": True} if official else {})}
                      for name, official in SOURCES.items()],
          "topics": [{"name": "warnings", "query": "students", "channels": ["desk"]}],
          "channels": {"desk": {"type": "jsonl", "path": "alerts.jsonl"}}}
STATEMENT = "国家安全部：<script>alert(1)</script> 警惕境外间谍拉拢留学生"
T0 = datetime(2026, 11, 27, 8, tzinfo=timezone.utc)


def report(source: str, path: str, language: str, hour: int | None, title: str = "",
           outlet: str | None = None) -> repo.NewArticle:
    url = f"https://{source}.example/{path}"
    text = f"{title or path} students text of {path}"
    return repo.NewArticle(url, url, url, title or path, text, "", language,
                           T0 + timedelta(hours=hour) if hour is not None else None, False,
                           f"hash-{source}-{path}", outlet=outlet)


def store(db, item: repo.NewArticle, source: str, story: int | None = None,
          copy_of: int | None = None) -> Article:
    with db.begin() as session:
        article, _ = repo.add_article(session, item, source, lambda: repo.Placement(
            duplicate_of=copy_of, story_id=story))
        if copy_of is None:  # a copy alerts no one
            queue_alerts(session, article, ["warnings"], {"warnings": AlertPolicy(("desk",))},
                         T0 + timedelta(hours=3), timedelta(days=36500))
        session.expunge(article)
        return article


def statement_story(cli: Cli) -> tuple[int, dict[str, int]]:
    """A follow-up first seen (and published) before the statement, the statement, its copy,
    and three more follow-ups in two languages, one of them a news search's pointer."""
    cli.write_config(CONFIG)
    assert cli("db", "upgrade").code == 0
    db = open_database(cli.db)
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef(s["name"], "feed", s["url"],
                                                   s.get("official", False))
                                    for s in CONFIG["sources"]])
    early = store(db, report("bbc", "students-warned", "en", 0), "bbc")
    story = early.story_id
    with db.begin() as session:  # the early report's alert went out before the statement
        session.execute(update(Alert).values(status="sent"))
    ids = {"early": early.id, "statement": store(
        db, report("statements", "warning", "zh", 1, STATEMENT), "statements", story).id}
    store(db, report("reprints", "warning-copy", "zh", 0), "reprints", copy_of=ids["statement"])
    ids["voa"] = store(db, report("voa-zh", "liuxuesheng", "zh", 2), "voa-zh", story).id
    ids["rfa"] = store(db, report("rfa-zh", "fanying", "zh", 2), "rfa-zh", story).id
    ids["search"] = store(db, report("news-search", "item", "en", 3, outlet="Reuters"),
                          "news-search", story).id
    return story, ids


def test_the_statement_leads_its_story_though_a_follow_up_came_first(cli: Cli) -> None:
    story, ids = statement_story(cli)
    listed = cli("stories", "list", "--json")
    assert listed.code == 0, listed.err
    (row,) = listed.json()
    assert (row["id"], row["lead_article_id"], row["languages"]) == \
        (story, ids["statement"], ["en", "zh"])
    assert (row["article_count"], row["copy_count"]) == (5, 1)  # the old fields stay

    shown = cli("stories", "show", str(story), "--json").json()
    assert shown["lead_article_id"] == ids["statement"]
    assert [a["id"] for a in shown["articles"]][0] == ids["statement"]
    table = cli("stories", "show", str(story)).out
    assert f"lead_article_id: {ids['statement']}" in table and "languages: en, zh" in table


def test_without_an_official_report_the_earliest_published_leads(db_url: str) -> None:
    db = open_database(db_url)
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("bbc", "feed", "https://bbc.example/f"),
                                    repo.SourceDef("voa-zh", "feed", "https://voa.example/f")])
    with db.begin() as session:
        first_seen, _ = repo.add_article(session, report("bbc", "later", "en", 5), "bbc")
        undated, _ = repo.add_article(session, report("voa-zh", "undated", "zh", None), "voa-zh",
                                      lambda: repo.Placement(story_id=first_seen.story_id))
        earlier, _ = repo.add_article(session, report("voa-zh", "earlier", "zh", 2), "voa-zh",
                                      lambda: repo.Placement(story_id=first_seen.story_id))
    with db() as session:
        (row,) = repo.list_stories(session)
        assert (row.lead_article_id, row.languages) == (earlier.id, ("en", "zh"))
        _, articles = repo.get_story(session, row.story.id)
        assert articles[0].id == earlier.id


def test_the_update_alert_says_what_followed_the_statement(
        cli: Cli, smtp_server: SmtpServer, slack_receiver: SlackReceiver) -> None:
    statement_story(cli)
    out = io.StringIO()
    channels = {"jsonl": JsonlChannel(cli.config.parent / "alerts.jsonl"),
                "console": ConsoleChannel(console=Console(file=out, width=200, markup=False)),
                "email": EmailChannel(smtp_server.url(), "alerts@example.org",
                                      ("desk@example.org",), timeout=5),
                "slack": SlackChannel(slack_receiver.url, timeout=5)}
    db = open_database(cli.db)
    with db.begin() as session:  # the pending update, sent to each channel
        (pending,) = session.query(Alert).filter_by(status="pending").all()
        pending.channel = "jsonl"
        for name in ("console", "email", "slack"):
            copy = Alert(idempotency_key=f"{pending.idempotency_key}|{name}", kind="update",
                         topic="warnings", channel=name, story_id=pending.story_id,
                         article_id=pending.article_id, status="pending",
                         next_attempt_at=T0)
            session.add(copy)
            session.flush()
            copy.batch.extend(type(entry)(article_id=entry.article_id)
                              for entry in pending.batch)
    assert Dispatcher(db, channels).deliver_due().sent == 4

    # follow-ups: the reports after the statement, copies not counted, and not the statement
    expected = "4 follow-ups in 2 languages, 4 outlets since: " + STATEMENT
    (line,) = (cli.config.parent / "alerts.jsonl").read_text("utf-8").splitlines()
    sent = json.loads(line)
    assert (sent["kind"], sent["follow_ups"]) == ("update", {
        "lead_title": STATEMENT, "reports": 4, "languages": ["en", "zh"],
        "outlets": ["Reuters", "bbc", "rfa-zh", "voa-zh"]})
    assert expected in out.getvalue()
    mail = smtp_server.messages[-1].message
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert expected in plain and "<script>" not in html
    assert expected.replace("<", "&lt;").replace(">", "&gt;") in html
    blocks = json.dumps(slack_receiver.requests[-1].json, ensure_ascii=False)
    assert "<script>" not in blocks and "4 follow-ups in 2 languages, 4 outlets" in blocks
