"""JSON Lines: one JSON object per alert appended to a file, for scripts and local use.

Fields: kind, topic, story_id, outlets, message_id, thread_id, sent_at (ISO, UTC), items
(title, url, source, published_at ISO or null, snippet, matched, articles, outlets; and diff,
the changed lines, when a statement was edited; and story_url, a digest's story's page),
follow_ups (update: lead_title, reports, languages, outlets; else null) and story_url (the
story's page in mediawatch when `web.base_url` is set, else null). Text is
written as received (JSON escapes it; `ensure_ascii=False` keeps Chinese readable). Each
alert is one `write` of one line in append mode. OSError → retry.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alerts.channels.base import AlertItem, AlertMessage, DeliveryResult, FollowUps


class JsonlChannel:
    kind = "jsonl"
    min_interval = 0.0

    def __init__(self, path: str | Path, *, name: str = "jsonl") -> None:
        self.name = name
        self.path = Path(path)

    def masked(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"JsonlChannel({self.name!r}, {self.masked()!r})"

    def send(self, message: AlertMessage) -> DeliveryResult:
        line = json.dumps(record(message), ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(line)
        except OSError as exc:
            return DeliveryResult.retry(f"cannot append to {self.path}: "
                                        f"{exc.strerror or type(exc).__name__}")
        return DeliveryResult.sent(f"appended to {self.path}")


def record(message: AlertMessage) -> dict[str, Any]:
    return {"kind": message.kind, "topic": message.topic, "story_id": message.story_id,
            "outlets": message.outlets, "message_id": message.message_id,
            "thread_id": message.thread_id, "items": [_item(i) for i in message.items],
            "follow_ups": _follow_ups(message.follow_ups), "story_url": message.story_url,
            "sent_at": datetime.now(timezone.utc).isoformat()}


def _follow_ups(follow_ups: FollowUps | None) -> dict[str, Any] | None:
    if follow_ups is None:
        return None
    return {"lead_title": follow_ups.lead_title, "reports": follow_ups.reports,
            "languages": list(follow_ups.languages), "outlets": list(follow_ups.outlets)}


def _item(item: AlertItem) -> dict[str, Any]:
    return {"title": item.title, "url": item.url, "source": item.source,
            "published_at": _iso(item.published_at), "snippet": item.snippet,
            "matched": list(item.matched), "articles": item.articles, "outlets": item.outlets,
            **({"diff": list(item.diff)} if item.diff else {}),
            **({"story_url": item.story_url} if item.story_url else {})}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()
