"""Alert channels against real receivers: an aiosmtpd server and a Slack-like HTTP endpoint
on loopback (tests/receivers.py), a real file, real stdout. Hostile titles must arrive
escaped and inert everywhere; failures map to retry / refused as the channels promise."""
from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from alerts.channels import build_channel
from alerts.channels.apprise import AppriseChannel
from alerts.channels.base import AlertItem, AlertMessage, DeliveryResult
from alerts.channels.console import ConsoleChannel
from alerts.channels.email import EmailChannel
from alerts.channels.jsonl import JsonlChannel
from alerts.channels.slack import SlackChannel, retry_after
from crawler.config import parse_config
from tests import receivers
from tests.receivers import (
    PASSWORD,
    USER,
    WEBHOOK_PATH,
    SlackReceiver,
    SmtpServer,
    free_port,
    self_signed,
)

smtp_server = receivers.smtp_server  # the receivers' fixtures, also fine if conftest has them
slack_receiver = receivers.slack_receiver

TOPIC = "espionage-warnings"
SENDER = "mediawatch <alerts@example.org>"
DESK = "desk@example.org"
CHINESE = "国家安全部提醒中国留学生警惕境外间谍机关策反"
HOSTILE = [
    "<script>alert(1)</script>",
    "<!channel> urgent <http://evil.example|click here>",
    "Breaking\r\nBcc: victim@example.org",
    "{{ 7*7 }} and {% for x in y %}",
    "Official statement [read it](https://evil.example/login)",
]
PUBLISHED = datetime(2025, 3, 14, 8, 0, tzinfo=timezone.utc)


def item(title: str = "Ministry of State Security warns students abroad", *,
         url: str = "https://news.example.org/2025/03/mss-warning.html",
         source: str = "Xinhua", snippet: str | None = None,
         matched: tuple[str, ...] = ("State Security", "students", "espionage"),
         articles: int = 1, outlets: int = 1) -> AlertItem:
    snippet = snippet if snippet is not None else \
        "The Ministry of State Security warned students abroad about espionage recruitment."
    return AlertItem(title=title, url=url, source=source, published_at=PUBLISHED,
                     snippet=snippet, matched=matched, articles=articles, outlets=outlets)


def alert(*items: AlertItem, kind: str = "new", outlets: int = 4, story: int = 12,
          thread: str | None = None, n: int = 0) -> AlertMessage:
    suffix = f".{kind}-{n}" if kind != "new" else ""
    return AlertMessage(kind=kind, topic=TOPIC, items=items or (item(),), story_id=story,  # type: ignore[arg-type]
                        outlets=outlets, message_id=f"<{TOPIC}.story-{story}{suffix}@mediawatch>",
                        thread_id=thread)


def email_channel(server: SmtpServer, to: tuple[str, ...] = (DESK,), **kwargs: object) -> EmailChannel:
    return EmailChannel(kwargs.pop("url", None) or server.url(), SENDER, to,  # type: ignore[arg-type]
                        name="analysts", timeout=5, local_hostname="client.test", **kwargs)


def bodies(server: SmtpServer) -> tuple[str, str]:
    message = server.messages[-1].message
    return (message.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
            message.get_body(("html",)).get_content())  # type: ignore[union-attr]


# ---------------------------------------------------------------- email

def test_email_is_multipart_utf8_with_list_id_and_message_id(smtp_server: SmtpServer) -> None:
    message = alert(item(CHINESE, snippet=f"国家安全部发布提醒：{CHINESE}。", matched=("国家安全部",)))
    result = email_channel(smtp_server).send(message)

    assert result == DeliveryResult.sent(result.reason) and result.ok
    [received] = smtp_server.messages
    mail = received.message
    assert received.mail_from == SENDER.split("<")[1].rstrip(">")
    assert received.rcpt_tos == [DESK]
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert str(mail["Subject"]) == f"[{TOPIC}] {CHINESE}"
    assert str(mail["List-Id"]) == f"<{TOPIC}.mediawatch>"
    assert str(mail["Message-ID"]) == f"<{TOPIC}.story-12@mediawatch>"
    assert mail["In-Reply-To"] is None and mail["References"] is None
    assert str(mail["Auto-Submitted"]) == "auto-generated"
    text, html = bodies(smtp_server)
    for body in (text, html):
        assert CHINESE in body
        assert "https://news.example.org/2025/03/mss-warning.html" in body
        assert "+3 more outlets" in body
    assert "<mark" in html and "<b>国家安全部</b>" in html
    assert max(map(len, received.raw.split(b"\r\n"))) <= 998  # RFC 5322 line limit
    received.raw.decode("ascii")  # 7-bit clean: no 8BITMIME needed


def test_email_update_threads_under_the_first_alert(smtp_server: SmtpServer) -> None:
    first = f"<{TOPIC}.story-12@mediawatch>"
    update = alert(item("Follow-up: universities respond", source="BBC"),
                   item("Students urged to report approaches", source="Reuters"),
                   item("Another angle", source="SCMP"), kind="update", outlets=7, thread=first, n=1)
    assert email_channel(smtp_server).send(update).ok

    mail = smtp_server.messages[0].message
    assert str(mail["In-Reply-To"]) == first and str(mail["References"]) == first
    assert str(mail["Message-ID"]) == f"<{TOPIC}.story-12.update-1@mediawatch>"
    assert str(mail["Subject"]) == f"[{TOPIC}] 3 more outlets now covering: Follow-up: universities respond"
    text, _ = bodies(smtp_server)
    assert "7 outlets now cover this story" in text and "Another angle" in text


def test_email_digest_lists_each_story_with_counts(smtp_server: SmtpServer) -> None:
    digest = alert(item("Story one", articles=5, outlets=3), item("Story two", articles=1),
                   kind="digest", n=1)
    assert email_channel(smtp_server).send(digest).ok
    mail = smtp_server.messages[0].message
    assert str(mail["Subject"]) == f"[{TOPIC}] Digest: 2 stories"
    text, html = bodies(smtp_server)
    assert "5 articles from 3 outlets" in text and "1 article from 1 outlet" in html


@pytest.mark.parametrize("title", HOSTILE)
def test_email_hostile_titles_stay_inert(smtp_server: SmtpServer, title: str) -> None:
    message = alert(item(title, snippet=f"snippet says {title}",
                         url="javascript:alert(document.cookie)"))
    assert email_channel(smtp_server).send(message).ok

    [received] = smtp_server.messages
    mail = received.message
    assert received.rcpt_tos == [DESK]
    assert mail["Bcc"] is None and mail["Cc"] is None
    assert b"\nBcc:" not in received.raw and b"\nbcc:" not in received.raw.lower()
    subject = str(mail["Subject"]).strip()  # a fold may precede the value: RFC-valid
    assert "\n" not in subject and subject.startswith(f"[{TOPIC}] ")
    text, html = bodies(smtp_server)
    assert "<script>" not in html and "javascript:" not in html
    assert "&lt;!channel&gt;" in html or "<!channel>" not in title
    if "<script>" in title:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert(1)</script>" in text  # plain text shows it as written
    if "{{" in title:
        for body in (text, html, subject):
            assert "{{ 7*7 }}" in body and "{% for x in y %}" in body
            assert "49" not in body
    if "Bcc" in title:
        assert subject == f"[{TOPIC}] Breaking Bcc: victim@example.org"  # inert, one line


def test_email_logs_in_with_url_encoded_credentials(smtp_server: SmtpServer) -> None:
    channel = email_channel(smtp_server, url=smtp_server.url(USER, PASSWORD))
    assert channel.send(alert()).ok
    assert smtp_server.messages[0].login == USER


def test_email_wrong_password_is_refused_without_leaking_it(smtp_server: SmtpServer) -> None:
    channel = email_channel(smtp_server, url=smtp_server.url(USER, "Wr0ngSecret!"))
    result = channel.send(alert())
    assert not result.ok and result.permanent
    assert result.reason.startswith("535")
    assert "Wr0ngSecret" not in result.reason and "Wr0ngSecret" not in repr(channel)
    assert not smtp_server.messages


@pytest.mark.parametrize("at", ["rcpt", "data"])
def test_email_451_is_a_retry(smtp_server: SmtpServer, at: str) -> None:
    smtp_server.tempfail(at)  # type: ignore[arg-type]
    result = email_channel(smtp_server).send(alert())
    assert not result.ok and not result.permanent
    assert "451" in result.reason and "try again later" in result.reason
    assert not smtp_server.messages


def test_email_550_recipient_is_refused_with_the_servers_reason(smtp_server: SmtpServer) -> None:
    smtp_server.reject()
    result = email_channel(smtp_server).send(alert())
    assert not result.ok and result.permanent
    assert DESK in result.reason and "550 5.1.1" in result.reason and "User unknown" in result.reason


def test_email_one_recipient_refused_still_delivers_to_the_others(smtp_server: SmtpServer) -> None:
    smtp_server.reject("gone@example.org")
    result = email_channel(smtp_server, to=(DESK, "gone@example.org")).send(alert())
    assert result.ok and "gone@example.org" in result.reason and "550" in result.reason
    assert smtp_server.messages[0].rcpt_tos == [DESK]


def test_email_server_down_is_a_retry(smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    start = time.monotonic()
    result = email_channel(smtp_server, url=smtp_server.url(USER, PASSWORD)).send(alert())
    assert not result.ok and not result.permanent and result.reason.startswith("cannot connect")
    assert PASSWORD not in result.reason
    assert time.monotonic() - start < 5


def patience(timeout: float) -> float:
    """How long a send bounded by `timeout` seconds may take on a loaded 2-core machine."""
    return 4 * timeout + 5


def test_email_silent_server_is_a_retry_after_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        url = f"smtp://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        result = EmailChannel(url, SENDER, [DESK], timeout=0.5, local_hostname="c.test").send(alert())
    assert time.monotonic() - start < patience(0.5)  # never greeted: it would wait forever
    assert not result.ok and not result.permanent and result.reason == "timed out after 0.5s"


def test_email_starttls_asked_but_not_offered_is_refused(smtp_server: SmtpServer) -> None:
    result = email_channel(smtp_server, url=smtp_server.url() + "?starttls=1").send(alert())
    assert not result.ok and result.permanent and "STARTTLS" in result.reason
    assert not smtp_server.messages


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_email_over_tls_with_auth(tmp_path: Path, tls: str) -> None:
    server = SmtpServer(tls=tls, certificate=self_signed(tmp_path)).start()  # type: ignore[arg-type]
    try:
        channel = email_channel(server, url=server.url(USER, PASSWORD),
                                ssl_context=server.client_context())
        assert channel.send(alert(item(CHINESE))).ok
        assert server.messages[0].login == USER
        assert str(server.messages[0].message["Subject"]) == f"[{TOPIC}] {CHINESE}"
        # An untrusted certificate is a TLS error (retry), not a silent plaintext fallback.
        untrusted = email_channel(server, url=server.url(USER, PASSWORD))
        result = untrusted.send(alert())
        assert not result.ok and not result.permanent and "TLS" in result.reason
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_email_masks_the_password_and_rejects_bad_urls() -> None:
    channel = EmailChannel("smtp://alerts:s3cr%40t@smtp.example.org:587?starttls=1", SENDER, [DESK])
    assert channel.masked() == "smtp://alerts:***@smtp.example.org:587?starttls=1"
    assert "s3cr" not in repr(channel)
    for url, complaint in [("smtp://alerts:s3cret@smtp.example.org:99999", "malformed"),
                           ("smtp://alerts:s3cret@smtp.example.org?tls=1", "unknown URL parameter"),
                           ("smtps://alerts:s3cret@smtp.example.org?starttls=1", "already TLS"),
                           ("http://alerts:s3cret@smtp.example.org", "smtp://")]:
        with pytest.raises(ValueError, match=complaint) as caught:
            EmailChannel(url, SENDER, [DESK])
        assert "s3cret" not in str(caught.value)
    with pytest.raises(ValueError):
        EmailChannel("smtp://h", "x\r\nBcc: a@b.c", [DESK])


# ---------------------------------------------------------------- slack

def slack(receiver: SlackReceiver, timeout: float = 5) -> SlackChannel:
    return SlackChannel(receiver.url, name="team-slack", timeout=timeout)


def mrkdwn(payload: dict) -> str:
    """All mrkdwn text of a payload, joined."""
    texts = []
    for block in payload["blocks"]:
        if block["type"] == "section":
            texts.append(block["text"]["text"])
        elif block["type"] == "context":
            texts.extend(e["text"] for e in block["elements"])
    return "\n".join(texts)


def test_slack_new_alert_block_kit(slack_receiver: SlackReceiver) -> None:
    result = slack(slack_receiver).send(alert())
    assert result.ok and result.reason == "HTTP 200"

    [posted] = slack_receiver.requests
    assert posted.path == WEBHOOK_PATH
    assert posted.headers["Content-Type"] == "application/json"
    payload = posted.json
    assert payload["text"] == f"[{TOPIC}] Ministry of State Security warns students abroad"
    header, story, context = payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "emoji": False,
                                                 "text": f"New · {TOPIC}"}}
    assert story["type"] == "section" and story["text"]["type"] == "mrkdwn"
    assert story["text"]["verbatim"] is True
    lines = story["text"]["text"].split("\n")
    assert lines[0] == ("*<https://news.example.org/2025/03/mss-warning.html|"
                        "Ministry of State Security warns students abroad>*")
    assert lines[1] == "Xinhua · 2025-03-14 08:00 UTC"
    assert lines[2].startswith(">The Ministry of \u200b*State Security*\u200b warned "
                               "\u200b*students*\u200b abroad about \u200b*espionage*\u200b")
    assert context["elements"][0]["text"] == "+3 more outlets covering this story"


def test_slack_update_and_digest(slack_receiver: SlackReceiver) -> None:
    channel = slack(slack_receiver)
    update = alert(item("A", source="BBC"), item("B", source="Reuters"), item("C", source="SCMP"),
                   kind="update", outlets=7, thread="<x@mediawatch>", n=1)
    digest = alert(item("Story one", articles=5, outlets=3), item("Story two"), kind="digest", n=2)
    assert channel.send(update).ok and channel.send(digest).ok

    update_payload, digest_payload = (r.json for r in slack_receiver.requests)
    assert update_payload["blocks"][0]["text"]["text"] == f"Update · {TOPIC}"
    assert update_payload["blocks"][1]["text"]["text"].startswith("*3 more outlets now covering: A*")
    assert "7 outlets now cover this story" in mrkdwn(update_payload)
    assert len(update_payload["blocks"]) == 2 + 3
    sections = digest_payload["blocks"][1:]
    assert [b["type"] for b in sections] == ["section", "section"]
    assert "5 articles from 3 outlets" in sections[0]["text"]["text"]
    assert "1 article from 1 outlet" in sections[1]["text"]["text"]


def test_slack_stays_within_block_kit_limits(slack_receiver: SlackReceiver) -> None:
    huge = item("T" * 5000, snippet="students " * 2000, source="S" * 500,
                url="https://example.org/" + "p" * 5000)
    digest = alert(*[huge] * 80, kind="digest")
    assert slack(slack_receiver).send(digest).ok
    payload = slack_receiver.requests[0].json
    assert len(payload["blocks"]) <= 50
    assert payload["blocks"][-1]["elements"][0]["text"].startswith("…and ")
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in payload["blocks"] if b["type"] == "section")
    assert len(payload["text"]) <= 3000


@pytest.mark.parametrize("title", HOSTILE)
def test_slack_hostile_titles_are_escaped(slack_receiver: SlackReceiver, title: str) -> None:
    message = alert(item(title, snippet=f"said {title} & more", source=f"<!here> {title}"))
    assert slack(slack_receiver).send(message).ok
    payload = slack_receiver.requests[0].json
    text = mrkdwn(payload) + "\n" + payload["text"]
    assert "<!channel>" not in text and "<!here>" not in text and "<http://evil" not in text
    assert "<script>" not in text
    # The only `<`…`>` left is our own link to the article.
    assert text.count("<") == 1 and "<https://news.example.org/" in text
    assert "&lt;!here&gt;" in text and "&amp; more" in text
    if "<!channel>" in title:
        assert "&lt;!channel&gt; urgent &lt;http://evil.example|click here&gt;" in text
    if "{{" in title:
        assert "{{ 7*7 }}" in text and "49" not in text
    if "Bcc" in title:
        assert "Breaking Bcc: victim@example.org" in text  # one line, no line break


def test_slack_links_are_http_only_and_cannot_break_out(slack_receiver: SlackReceiver) -> None:
    channel = slack(slack_receiver)
    channel.send(alert(item("Bad link", url="javascript:alert(1)")))
    channel.send(alert(item("Tricky", url="https://example.org/a|b>c <!channel>&d=1")))
    bad, tricky = (mrkdwn(r.json) for r in slack_receiver.requests)
    assert bad.startswith("*Bad link*") and "javascript" not in bad
    assert "https://example.org/a|b" not in tricky  # the URL is dropped (space) or encoded
    channel.send(alert(item("Tricky", url="https://example.org/a|b>c&d=1")))
    assert mrkdwn(slack_receiver.requests[-1].json).startswith(
        "*<https://example.org/a%7Cb%3Ec&amp;d=1|Tricky>*")


def test_slack_keeps_chinese_intact(slack_receiver: SlackReceiver) -> None:
    assert slack(slack_receiver).send(alert(item(CHINESE, matched=("留学生",),
                                                snippet=f"{CHINESE}。"))).ok
    payload = slack_receiver.requests[0].json
    assert CHINESE in payload["text"]
    assert f"|{CHINESE}>*" in mrkdwn(payload)
    assert "\u200b*留学生*\u200b" in mrkdwn(payload)  # bold even without spaces around it


def test_slack_429_is_a_retry_after_the_header(slack_receiver: SlackReceiver) -> None:
    slack_receiver.rate_limit("30")
    result = slack(slack_receiver).send(alert())
    assert result == DeliveryResult.retry("HTTP 429: rate_limited", retry_after=30.0)


def test_retry_after_accepts_an_http_date() -> None:
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=120), usegmt=True)
    assert 110 <= (retry_after(later) or 0) <= 120
    assert retry_after("soon") is None and retry_after(None) is None and retry_after("-5") == 0
    assert retry_after("inf") is None and retry_after("nan") is None


@pytest.mark.parametrize("status", [500, 502, 503])
def test_slack_5xx_is_a_retry(slack_receiver: SlackReceiver, status: int) -> None:
    slack_receiver.respond(status, "internal_error")
    result = slack(slack_receiver).send(alert())
    assert not result.ok and not result.permanent and result.retry_after is None
    assert result.reason == f"HTTP {status}: internal_error"


def test_slack_503_with_retry_after_says_how_long(slack_receiver: SlackReceiver) -> None:
    slack_receiver.respond(503, "busy", {"Retry-After": "90"})
    result = slack(slack_receiver).send(alert())
    assert not result.ok and not result.permanent and result.retry_after == 90


@pytest.mark.parametrize("status, body", [(400, "invalid_payload"), (403, "invalid_token"),
                                          (404, "no_service"), (410, "channel_is_archived")])
def test_slack_4xx_is_refused_with_status_and_body(slack_receiver: SlackReceiver, status: int,
                                                   body: str) -> None:
    slack_receiver.respond(status, body + "\n" + "x" * 5000)
    result = slack(slack_receiver).send(alert())
    assert not result.ok and result.permanent
    assert result.reason.startswith(f"HTTP {status}: {body}") and len(result.reason) < 300


def test_slack_hang_is_a_retry_after_the_timeout(slack_receiver: SlackReceiver) -> None:
    slack_receiver.hang(60)  # released when the test ends
    start = time.monotonic()
    result = slack(slack_receiver, timeout=0.5).send(alert())
    assert time.monotonic() - start < patience(0.5) < 60
    assert not result.ok and not result.permanent and result.reason == "timed out after 0.5s"
    assert len(slack_receiver.requests) == 1


def test_slack_unreachable_is_a_retry_without_the_secret() -> None:
    channel = SlackChannel(f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}", timeout=2)
    result = channel.send(alert())
    assert not result.ok and not result.permanent and result.reason.startswith("cannot connect")
    assert "Secret" not in result.reason


def test_slack_masks_the_webhook(slack_receiver: SlackReceiver) -> None:
    channel = SlackChannel("https://hooks.slack.com/services/T0123ABC/B0456DEF/xyzSecretToken")
    assert channel.masked() == "https://hooks.slack.com/services/T0***"
    assert "Secret" not in repr(channel) and "B0456" not in repr(channel)
    assert "Secret" not in slack(slack_receiver).masked()
    with pytest.raises(ValueError):
        SlackChannel("ftp://hooks.slack.com/services/x")


# ---------------------------------------------------------------- apprise

def apprise_url(receiver: SlackReceiver, secret: str = "hunter2secret") -> str:
    return f"json://bot:{secret}@{receiver.base.removeprefix('http://')}/notify"


def test_apprise_delivers_title_and_plain_body(slack_receiver: SlackReceiver) -> None:
    channel = AppriseChannel(apprise_url(slack_receiver), name="other")
    hostile = item(f"{CHINESE} @everyone <@&123> <script>x</script>")
    assert channel.send(alert(hostile)).ok

    [posted] = slack_receiver.requests
    body = posted.json
    assert body["title"].startswith(f"[{TOPIC}] {CHINESE} @\u200beveryone <\u200b@&123>")
    assert "<script>x</script>" in body["message"]  # plain text, as written
    assert "State Security" in body["message"] and "Xinhua · 2025-03-14 08:00 UTC" in body["message"]


def test_apprise_failure_is_a_retry_with_masked_reason(slack_receiver: SlackReceiver) -> None:
    slack_receiver.respond(500, "boom")
    channel = AppriseChannel(apprise_url(slack_receiver))
    result = channel.send(alert())
    assert not result.ok and not result.permanent
    assert result.reason.startswith("apprise could not deliver to json://bot:*")
    assert "error=500" in result.reason
    assert "hunter2secret" not in result.reason and "hunter2secret" not in channel.masked()
    assert "hunter2secret" not in repr(channel)


@pytest.mark.parametrize(("url", "masked"), [
    ("json://hooks.example.com/webhook/Secr3tToken", "json://hooks.example.com/webhook/Se***"),
    ("form://host/hook/Secr3tToken", "form://ho***/hook/Se***"),
    ("ntfy://Secr3tTopicName", "ntfys://se***"),
])
def test_apprise_masks_secret_paths_and_topics(url: str, masked: str) -> None:
    assert AppriseChannel(url).masked() == masked


def test_apprise_failure_reason_hides_a_secret_path(slack_receiver: SlackReceiver) -> None:
    slack_receiver.respond(500, "boom")
    channel = AppriseChannel(f"json://{slack_receiver.base.removeprefix('http://')}"
                             "/notify/appriseSecretPath")
    result = channel.send(alert())
    assert not result.ok and "error=500" in result.reason
    assert "appriseSecretPath" not in result.reason and "/notify/ap***" in result.reason


def test_apprise_rejects_unknown_urls() -> None:
    with pytest.raises(ValueError, match="not a supported Apprise URL") as caught:
        AppriseChannel("nosuchservice://token-abcdef")
    assert "token-abcdef" not in str(caught.value)


# ---------------------------------------------------------------- jsonl

def test_jsonl_appends_one_line_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    channel = JsonlChannel(path)
    assert channel.send(alert(item(CHINESE))).ok
    assert channel.send(alert(item("Second <b>"), kind="update", thread="<t@mediawatch>", n=1)).ok

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and CHINESE in lines[0]  # ensure_ascii=False
    first, second = map(json.loads, lines)
    assert set(first) >= {"kind", "topic", "story_id", "outlets", "message_id", "items", "sent_at"}
    assert (first["kind"], first["topic"], first["story_id"], first["outlets"]) == ("new", TOPIC, 12, 4)
    assert first["message_id"] == f"<{TOPIC}.story-12@mediawatch>"
    assert first["items"][0] == {
        "title": CHINESE, "url": "https://news.example.org/2025/03/mss-warning.html",
        "source": "Xinhua", "published_at": "2025-03-14T08:00:00+00:00",
        "snippet": "The Ministry of State Security warned students abroad about espionage recruitment.",
        "matched": ["State Security", "students", "espionage"], "articles": 1, "outlets": 1}
    assert datetime.fromisoformat(first["sent_at"]).tzinfo is not None
    assert second["kind"] == "update" and second["items"][0]["title"] == "Second <b>"


def test_jsonl_unwritable_path_is_a_retry(tmp_path: Path) -> None:
    result = JsonlChannel(tmp_path).send(alert())  # a directory, not a file
    assert not result.ok and not result.permanent and "cannot append" in result.reason


# ---------------------------------------------------------------- console

def test_console_prints_untrusted_text_literally(capsys: pytest.CaptureFixture[str]) -> None:
    title = "[bold red]PWNED[/bold red] :smile: \x1b[31mred\x1b[0m [link=http://evil]x[/link]"
    result = ConsoleChannel().send(alert(item(title, snippet="[blink]students[/blink] espionage")))
    assert result.ok
    out = capsys.readouterr().out
    assert "[bold red]PWNED[/bold red] :smile:" in out and "[link=http://evil]x[/link]" in out
    assert "[blink]students[/blink] espionage" in out
    assert "\x1b" not in out
    assert "NEW" in out and TOPIC in out and "Xinhua · 2025-03-14 08:00 UTC · +3 more outlets" in out


def test_console_digest(capsys: pytest.CaptureFixture[str]) -> None:
    assert ConsoleChannel().send(alert(item("One", articles=4, outlets=2), item(CHINESE),
                                       kind="digest")).ok
    out = capsys.readouterr().out
    assert "Digest: 2 stories" in out and "4 articles from 2 outlets" in out and CHINESE in out


# ---------------------------------------------------------------- hostile text elsewhere

@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_titles_stay_data_in_jsonl_console_and_apprise(
        title: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        slack_receiver: SlackReceiver) -> None:
    message = alert(item(title))
    path = tmp_path / "alerts.jsonl"
    assert JsonlChannel(path).send(message).ok
    [line] = path.read_text(encoding="utf-8").splitlines()  # CR/LF stay escaped in JSON
    assert json.loads(line)["items"][0]["title"] == title

    assert ConsoleChannel().send(message).ok
    out = capsys.readouterr().out
    assert " ".join(title.split()) in out and "49" not in out

    assert AppriseChannel(apprise_url(slack_receiver)).send(message).ok
    posted = slack_receiver.requests[0].json
    assert "49" not in posted["title"] + posted["message"]
    assert " ".join(title.split()) in posted["message"].replace("\u200b", "")
    assert "](" not in posted["title"] + posted["message"]  # no Markdown link to render


# ---------------------------------------------------------------- factory

def test_build_channel_from_config(tmp_path: Path) -> None:
    config = parse_config("""
channels:
  analysts: {type: email, url: "smtp://alerts:${SMTP_PASSWORD}@smtp.example.org:587?starttls=1",
             from: alerts@example.org, to: [desk@example.org]}
  team-slack: {type: slack, webhook: "${SLACK_WEBHOOK_URL}"}
  other: {type: apprise, url: "ntfy://user:${NTFY_PASSWORD}@ntfy.sh/mediawatch"}
  local: {type: jsonl, path: alerts.jsonl}
  screen: {type: console}
""", env={"SMTP_PASSWORD": "smtp-s3cret", "NTFY_PASSWORD": "ntfy-s3cret",
          "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0AAA/B0BBB/slack-s3cret"})
    channels = {name: build_channel(name, c) for name, c in config.channels.items()}
    assert {n: type(c).__name__ for n, c in channels.items()} == {
        "analysts": "EmailChannel", "team-slack": "SlackChannel", "other": "AppriseChannel",
        "local": "JsonlChannel", "screen": "ConsoleChannel"}
    assert all(c.name == n for n, c in channels.items())
    assert channels["team-slack"].min_interval == 1.0
    assert channels["analysts"].masked() == "smtp://alerts:***@smtp.example.org:587?starttls=1"
    assert channels["team-slack"].masked() == "https://hooks.slack.com/services/T0***"
    for channel in channels.values():
        assert "s3cret" not in channel.masked() and "s3cret" not in repr(channel)
