"""Slack incoming webhook with Block Kit.

Every piece of web text goes through `escape` (`&`, `<`, `>` → entities) before it enters
mrkdwn, so a title cannot ping `<!channel>` or forge `<http://evil|click>`; text objects
are `verbatim` so Slack does not link-ify bare names either. Links are http(s) only, with
`|`, `<`, `>` and spaces percent-encoded inside the URL. Lengths stay within Slack's limits
(section 3000, header 150, 50 blocks).

Outcomes: 2xx sent; 408/429/5xx, connection errors, timeouts retry (after `Retry-After`
when the answer has one, e.g. 429 or 503); other 4xx (400 invalid_payload, 403
invalid_token, 404 no_service, 410 channel_is_archived) and redirects refused.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from alerts.channels.base import AlertMessage, DeliveryResult
from alerts.channels.render import AlertView, ItemView, plural, view
from basis.secrets import Redactor, mask_url
from basis.text import clip, one_line
from basis.urls import is_web_url

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
CONTEXT_LIMIT = 2000
MAX_BLOCKS = 50
FALLBACK_LIMIT = 1000
URL_LIMIT = 1500
BODY_LIMIT = 200  # characters of an error body kept in a reason
RETRYABLE = {408, 425, 429}
_URL_ESCAPES = {"|": "%7C", "<": "%3C", ">": "%3E", " ": "%20", "&": "&amp;"}
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


class SlackChannel:
    kind = "slack"
    min_interval = 1.0  # Slack allows about one message per second per webhook

    def __init__(self, webhook: str, *, name: str = "slack", timeout: float = 10.0,
                 session: requests.Session | None = None) -> None:
        if not is_web_url(webhook):
            raise ValueError("slack channel: the webhook must be an http(s) URL")
        self.name = name
        self.timeout = timeout
        self._webhook = webhook
        self._session = session or requests.Session()

    def masked(self) -> str:
        return mask_url(self._webhook)

    def __repr__(self) -> str:
        return f"SlackChannel({self.name!r}, {self.masked()!r})"

    def send(self, message: AlertMessage) -> DeliveryResult:
        try:
            response = self._session.post(self._webhook, json=payload(message),
                                          timeout=self.timeout, allow_redirects=False,
                                          headers={"User-Agent": "mediawatch/0.1"})
        except requests.Timeout:
            return DeliveryResult.retry(f"timed out after {self.timeout:g}s")
        except requests.RequestException as exc:
            return DeliveryResult.retry(self._reason(f"cannot connect: {type(exc).__name__}"))
        return self._outcome(response)

    def _outcome(self, response: requests.Response) -> DeliveryResult:
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult.sent(f"HTTP {status}")
        reason = self._reason(f"HTTP {status}: {one_line(response.text, BODY_LIMIT)}"
                              .rstrip(": "))
        if status >= 500 or status in RETRYABLE:
            return DeliveryResult.retry(reason, retry_after(response.headers.get("Retry-After")))
        return DeliveryResult.refused(reason)

    def _reason(self, text: str) -> str:
        path = self._webhook.split("//", 1)[-1].partition("/")[2]
        return Redactor([self._webhook, path, *path.split("/")[1:]])(text)


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number or an HTTP date (never inf or nan)."""
    if not value:
        return None
    try:
        seconds = float(value)
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max((moment - datetime.now(timezone.utc)).total_seconds(), 0.0)


# ---------------------------------------------------------------- mrkdwn

def escape(text: str) -> str:
    """Slack's three control characters as entities; the rest is shown as written."""
    return "".join(_ESCAPES.get(c, c) for c in text)


def escape_within(text: str, limit: int) -> str:
    """`escape(text)` cut so that it fits in `limit` characters (never inside an entity)."""
    out: list[str] = []
    size = 0
    for position, char in enumerate(text):
        piece = _ESCAPES.get(char, char)
        rest = len(text) - position
        if size + len(piece) > limit - (1 if rest > 1 else 0):
            return "".join(out).rstrip() + "…"
        out.append(piece)
        size += len(piece)
    return "".join(out)


def link(url: str | None, title: str, limit: int = 500) -> str:
    """`<url|title>` for an http(s) URL, else the escaped title alone."""
    label = escape_within(title, limit)
    if not url:
        return label
    target = "".join(_URL_ESCAPES.get(c, c) for c in url)
    return f"<{target}|{label}>" if len(target) <= URL_LIMIT else label


def bold_matches(item: ItemView, limit: int) -> str:
    """The snippet, escaped, matched terms in bold. Zero-width spaces let Slack see the
    `*` marks as bold even inside CJK text without spaces around them."""
    out: list[str] = []
    size = 0
    for text, hit in item.segments:
        room = limit - size - (5 if hit else 0)
        if room <= 1:
            out.append("…")
            break
        piece = escape_within(text, room)
        out.append(f"\u200b*{piece}*\u200b" if hit else piece)
        size += len(out[-1])
        if piece.endswith("…") and not text.endswith("…"):
            break
    return "".join(out)


def meta(item: ItemView, *extra: str) -> str:
    return " · ".join(escape(p) for p in (item.source, item.when, *extra) if p)


# ---------------------------------------------------------------- blocks

def payload(message: AlertMessage) -> dict[str, Any]:
    """The webhook body: Block Kit blocks and a plain fallback `text` for notifications."""
    alert = view(message)
    blocks = [_header(alert), *_body(alert)]
    return {"text": escape_within(alert.subject, FALLBACK_LIMIT), "blocks": blocks,
            "unfurl_links": False, "unfurl_media": False}


def _header(alert: AlertView) -> dict[str, Any]:
    # plain_text is never parsed for links or mentions; the topic is a config slug.
    return {"type": "header",
            "text": {"type": "plain_text", "text": clip(f"{alert.label} · {alert.topic}",
                                                         HEADER_LIMIT), "emoji": False}}


def _body(alert: AlertView) -> list[dict[str, Any]]:
    if alert.story_url:  # last, with room kept for it: no cap leaves it out
        return [*_blocks(alert, MAX_BLOCKS - 2), _context(opened(alert.story_url))]
    return _blocks(alert, MAX_BLOCKS - 1)  # after the header


def opened(story_url: str) -> str:
    """`Open in mediawatch: <url|url>`: the story's page, escaped like every link."""
    return f"Open in mediawatch: {link(story_url, story_url, 200)}"


def _blocks(alert: AlertView, room: int) -> list[dict[str, Any]]:
    if alert.kind == "update":
        lead = _section(f"*{escape_within(alert.headline, 600)}*\n"
                        f"{plural(alert.outlets, 'outlet')} now cover this story."
                        + (f"\n{escape_within(alert.followed, 600)}" if alert.followed else ""))
        return [lead, *_capped([_story(i, snippet=False) for i in alert.items], room - 1)]
    if alert.kind == "digest":
        stories = [_story(i, extra=(f"{plural(i.articles, 'article')} from "
                                    f"{plural(i.outlets, 'outlet')}",), page=True)
                   for i in alert.items]
        return _capped(stories, room) or [_section("_No new stories._")]
    blocks = [block for i in alert.items for block in (_story(i), *_diff(i))]
    if alert.more_outlets:
        blocks.append(_context(f"+{plural(alert.more_outlets, 'more outlet')} covering "
                               "this story"))
    return _capped(blocks, room)


def _story(item: ItemView, snippet: bool = True, extra: tuple[str, ...] = (),
           page: bool = False) -> dict[str, Any]:
    head = f"*{link(item.url, item.title)}*\n{meta(item, *extra)}"
    if page and item.story_url:  # a digest's story: its page
        head += f"\n{opened(item.story_url)}"
    if snippet and item.segments:
        head += "\n>" + bold_matches(item, SECTION_LIMIT - len(head) - 2)
    return _section(head)


def _diff(item: ItemView) -> list[dict[str, Any]]:
    """A statement's diff as preformatted rich text: literal, never parsed as mrkdwn."""
    if not item.diff:
        return []
    text = clip("\n".join(item.diff), SECTION_LIMIT)
    return [{"type": "rich_text", "elements": [{"type": "rich_text_preformatted",
                                                "elements": [{"type": "text", "text": text}]}]}]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section",
            "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT], "verbatim": True}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context",
            "elements": [{"type": "mrkdwn", "text": text[:CONTEXT_LIMIT], "verbatim": True}]}


def _capped(blocks: list[dict[str, Any]], room: int) -> list[dict[str, Any]]:
    """At most `room` blocks; the last one says how many were left out."""
    if len(blocks) <= room:
        return blocks
    kept = blocks[: room - 1]
    return [*kept, _context(f"…and {len(blocks) - len(kept)} more not shown")]
