"""Alerts link to the story's page in the reading room (issue 17) when `web.base_url` is
set: every email (text and HTML), Slack message and digest, besides the outlet's article;
the link is escaped like every other URL. Without `web.base_url`, no such link."""
from __future__ import annotations

import json

import pytest

from tests.conftest import Cli, web_config
from tests.receivers import SlackReceiver, SmtpServer
from tests.test_alerts_flow import STATEMENT, live_feed
from tests.webserver import FixtureWeb

BASE = "https://desk.example.org/reading&room/"  # `&`: escaped in HTML and Slack
QUERY = "(国家安全部 OR 国安部) AND 留学生"


@pytest.fixture
def live(web: FixtureWeb):
    yield web
    (web.root / "feeds" / "_live.xml").unlink(missing_ok=True)


def configure(cli: Cli, web: FixtureWeb, smtp: SmtpServer, slack: SlackReceiver,
              mode: str = "instant", base_url: str | None = BASE,
              jsonl: bool = False) -> None:
    live_feed(web, STATEMENT)
    config = web_config(web, {"name": "live", "kind": "feed", "url": "/feeds/_live.xml"},
                        backfill="36500d")
    config["topics"] = [{"name": "warnings", "query": QUERY, "channels": ["desk", "team"],
                         "mode": mode}]
    config["channels"] = {
        "desk": {"type": "email", "url": smtp.url(), "from": "alerts@mediawatch.test",
                 "to": ["desk@mediawatch.test"]},
        "team": {"type": "slack", "webhook": slack.url}}
    if jsonl:
        config["channels"]["log"] = {"type": "jsonl", "path": "alerts.jsonl"}
        config["topics"][0]["channels"].append("log")
    if base_url:
        config["web"] = {"base_url": base_url}
    cli.write_config(config)


def parts(smtp: SmtpServer) -> tuple[str, str]:
    (received,) = smtp.messages
    message = received.message
    return (message.get_body(("plain",)).get_content(),
            message.get_body(("html",)).get_content())


def story_id(cli: Cli) -> int:
    (story,) = cli("stories", "list", "--json").json()
    return story["id"]


def test_an_alert_links_to_the_story_page_by_email_and_slack(
        cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
        slack_receiver: SlackReceiver) -> None:
    configure(cli, live, smtp_server, slack_receiver)
    crawled = cli("crawl", "--json")
    assert crawled.code == 0 and crawled.json()["alerts"]["sent"] == 2, crawled.err
    page = f"https://desk.example.org/reading&room/stories/{story_id(cli)}"
    text, html = parts(smtp_server)
    assert f"Open in mediawatch: {page}" in text
    assert live.url(STATEMENT) in text  # the outlet's article too
    escaped = page.replace("&", "&amp;")
    assert f'Open in mediawatch: <a href="{escaped}"' in html and page not in html
    (posted,) = slack_receiver.requests
    blocks = str(posted.json["blocks"])
    assert f"Open in mediawatch: <{escaped}|{escaped}>" in blocks
    assert live.url(STATEMENT) in blocks


def test_a_digest_links_each_story_to_its_page(
        cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
        slack_receiver: SlackReceiver) -> None:
    configure(cli, live, smtp_server, slack_receiver, mode="digest")
    assert cli("crawl", "--json").code == 0
    assert smtp_server.messages == [] and slack_receiver.requests == []
    sent = cli("digest", "send")
    assert sent.code == 0, sent.err
    page = f"https://desk.example.org/reading&room/stories/{story_id(cli)}"
    text, html = parts(smtp_server)
    assert "Digest" in text and f"Open in mediawatch: {page}" in text
    assert f'<a href="{page.replace("&", "&amp;")}"' in html
    (posted,) = slack_receiver.requests
    assert f"Open in mediawatch: <{page.replace('&', '&amp;')}|" in str(posted.json["blocks"])


def test_without_a_base_url_no_alert_links_to_a_story_page(
        cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
        slack_receiver: SlackReceiver) -> None:
    configure(cli, live, smtp_server, slack_receiver, base_url=None, jsonl=True)
    assert cli("crawl", "--json").json()["alerts"]["sent"] == 3
    text, html = parts(smtp_server)
    assert "Open in mediawatch" not in text + html and "/stories/" not in text + html
    assert live.url(STATEMENT) in text
    (posted,) = slack_receiver.requests
    assert "Open in mediawatch" not in posted.body.decode()
    (line,) = (cli.config.parent / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["story_url"] is None  # the key is there, null


def test_jsonl_alerts_carry_the_story_page(cli: Cli, live: FixtureWeb, smtp_server: SmtpServer,
                                           slack_receiver: SlackReceiver) -> None:
    configure(cli, live, smtp_server, slack_receiver, jsonl=True)
    assert cli("crawl", "--json").json()["alerts"]["sent"] == 3
    (line,) = (cli.config.parent / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["story_url"] == \
        f"https://desk.example.org/reading&room/stories/{story_id(cli)}"
