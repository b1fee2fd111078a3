"""What every channel says alike: the alert as shown (`view`), highlights, headlines and
the template environment.

Everything in an `AlertItem` comes from the web. `view` only *cleans* it (basis.text:
control characters out, length bounded; basis.urls: links limited to http/https); each
channel still escapes it for its own format: HTML autoescape in email, `&<>` entities in
Slack, `rich.text.Text` on the console. Feed text is never compiled as a template:
templates get it as variables.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from alerts.channels.base import AlertItem, AlertMessage, FollowUps
from basis.text import one_line
from basis.urls import safe_url

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TITLE_LIMIT = 300
SNIPPET_LIMIT = 1000
DIFF_LINES, DIFF_LINE = 60, 400  # a statement's diff: lines shown, characters per line
_KIND_LABEL = {"new": "New", "update": "Update", "digest": "Digest", "test": "Test",
               "operator": "Source health", "edited": "Statement edited",
               "removed": "Statement removed"}

Segment = tuple[str, bool]  # a piece of text and whether it is a matched term










def highlight(text: str, terms: Iterable[str]) -> list[Segment]:
    """Split `text` into segments, marking case-insensitive occurrences of `terms`
    (longest term first, so `state security` wins over `state`)."""
    wanted = sorted({t for t in (one_line(t) for t in terms) if t}, key=len, reverse=True)
    if not wanted or not text:
        return [(text, False)] if text else []
    pattern = re.compile("|".join(map(re.escape, wanted)), re.IGNORECASE)
    segments: list[Segment] = []
    position = 0
    for hit in pattern.finditer(text):
        if hit.start() > position:
            segments.append((text[position:hit.start()], False))
        segments.append((hit.group(), True))
        position = hit.end()
    if position < len(text):
        segments.append((text[position:], False))
    return segments


def when(moment: datetime | None) -> str:
    """`2025-03-14 08:00 UTC`; naive times are taken as UTC, as the store keeps them."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


# ---------------------------------------------------------------- the alert as shown

@dataclass(frozen=True)
class ItemView:
    """One `AlertItem`, cleaned for display (not yet escaped)."""

    title: str
    url: str | None
    source: str
    when: str
    snippet: str
    segments: tuple[Segment, ...]
    matched: tuple[str, ...]
    articles: int
    outlets: int
    diff: tuple[str, ...] = ()  # a statement edited: what changed, one clean line each
    story_url: str | None = None  # digest: the story's page (http(s) only)


@dataclass(frozen=True)
class AlertView:
    """One `AlertMessage`, cleaned for display: what the templates and channels render."""

    kind: str
    label: str  # New / Update / Digest / Test
    topic: str
    headline: str
    subject: str
    items: tuple[ItemView, ...]
    outlets: int
    more_outlets: int  # new: other outlets covering the story besides this one
    followed: str = ""  # update: what followed the story's lead (see `followed`)
    story_url: str | None = None  # the story's page in mediawatch (http(s) only)


def item_view(item: AlertItem) -> ItemView:
    snippet = one_line(item.snippet, SNIPPET_LIMIT)
    matched = tuple(t for t in (one_line(m, 100) for m in item.matched) if t)
    return ItemView(title=one_line(item.title, TITLE_LIMIT) or "(untitled)",
                    url=safe_url(item.url), source=one_line(item.source, 100),
                    when=when(item.published_at), snippet=snippet,
                    segments=tuple(highlight(snippet, matched)), matched=matched,
                    articles=max(item.articles, 1), outlets=max(item.outlets, 1),
                    diff=tuple(diff_line(line) for line in item.diff[:DIFF_LINES]),
                    story_url=safe_url(item.story_url) if item.story_url else None)


def diff_line(line: str) -> str:
    """`- removed`, `+ added` or `  context`, the text after the mark one clean line."""
    mark = line[:1] if line[:1] in "+-" else " "
    return f"{mark} {one_line(line[2:], DIFF_LINE)}"


def view(message: AlertMessage) -> AlertView:
    items = tuple(item_view(i) for i in message.items)
    topic = one_line(message.topic, 100)
    line = headline(message, items)
    return AlertView(kind=message.kind, label=_KIND_LABEL.get(message.kind, "Alert"),
                     topic=topic, headline=line, subject=one_line(f"[{topic}] {line}", 250),
                     items=items, outlets=max(message.outlets, 1),
                     more_outlets=max(message.outlets - 1, 0),
                     followed=followed(message.follow_ups) if message.follow_ups else "",
                     story_url=safe_url(message.story_url) if message.story_url else None)


def followed(follow_ups: FollowUps) -> str:
    """`4 follow-ups in 2 languages, 3 outlets since: <the lead's title>`."""
    counts = plural(follow_ups.reports, "follow-up")
    if follow_ups.languages:
        counts += f" in {plural(len(follow_ups.languages), 'language')}"
    if follow_ups.outlets:
        counts += f", {plural(len(follow_ups.outlets), 'outlet')}"
    lead = one_line(follow_ups.lead_title, TITLE_LIMIT) or "(untitled)"
    return f"{counts} since: {lead}"


def headline(message: AlertMessage, items: tuple[ItemView, ...]) -> str:
    """The one-line summary used as email subject, Slack fallback text and Apprise title.

    new: the title; edited / removed: `Statement edited: <title>`; update: `N more outlets
    now covering: <title>` where N counts the distinct sources among the update's items;
    digest: `Digest: N stories`."""
    title = items[0].title if items else "(untitled)"
    if message.kind == "update":
        sources = {i.source for i in items} or {""}
        return f"{plural(len(sources), 'more outlet')} now covering: {title}"
    if message.kind == "digest":
        return f"Digest: {plural(len(items), 'story', 'stories')}"
    if message.kind == "test":
        return f"Test alert: {title}"
    if message.kind in ("edited", "removed"):
        return f"Statement {message.kind}: {title}"
    return title


# ---------------------------------------------------------------- templates

ENVIRONMENT = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(template: str, alert: AlertView) -> str:
    """Render one of our own templates (`email.txt`, `email.html`) with the alert as data."""
    return ENVIRONMENT.get_template(template).render(alert=alert)
