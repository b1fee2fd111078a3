"""What every channel gets (an `AlertMessage`) and gives back (a `DeliveryResult`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol


@dataclass(frozen=True)
class AlertItem:
    """One article (or, in a digest, one story) as an alert shows it. All text is
    untrusted: it comes from the web and every channel must escape it."""

    title: str
    url: str
    source: str
    published_at: datetime | None
    snippet: str
    matched: tuple[str, ...] = ()  # the original text of what matched, for highlighting
    articles: int = 1  # digest: articles in the story
    outlets: int = 1  # distinct sources covering the story
    diff: tuple[str, ...] = ()  # a statement edited: `- old` / `+ new` / `  context` lines
    story_url: str | None = None  # digest: the story's page in the reading room (config)


@dataclass(frozen=True)
class FollowUps:
    """What followed a story's lead (its official statement, else its first report): the
    story's other reports (copies not counted), their languages and outlets."""

    lead_title: str  # untrusted, like every title
    reports: int
    languages: tuple[str, ...]
    outlets: tuple[str, ...]


@dataclass(frozen=True)
class AlertMessage:
    """new: the first article of a story for a topic; update: later articles of the same
    story, batched; digest: one item per story; test: a sample from `alerts test`;
    operator: a source's health changed (failing, silent, recovered); edited / removed: an
    official statement was edited (its item has the diff) or taken down."""

    kind: Literal["new", "update", "digest", "test", "operator", "edited", "removed"]
    topic: str
    items: tuple[AlertItem, ...]
    story_id: int | None = None
    outlets: int = 1  # distinct sources now covering the story
    message_id: str = ""  # stable, e.g. "<espionage-warnings.story-12@mediawatch>"
    thread_id: str | None = None  # the message an update belongs to (email threading)
    follow_ups: FollowUps | None = None  # update: what followed the story's lead
    story_url: str | None = None  # the story's page in the reading room (`web.base_url`)


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    reason: str = ""
    permanent: bool = False  # do not retry: the channel refused this alert for good
    retry_after: float | None = None  # seconds the channel asked us to wait

    @classmethod
    def sent(cls, reason: str = "sent") -> DeliveryResult:
        return cls(True, reason)

    @classmethod
    def retry(cls, reason: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(False, reason, retry_after=retry_after)

    @classmethod
    def refused(cls, reason: str) -> DeliveryResult:
        return cls(False, reason, permanent=True)


@dataclass(frozen=True)
class UnbuiltChannel:
    """A configured channel that could not be built: it sends nothing, and the dispatcher
    keeps its alerts pending (spending no attempt) until a fixed config builds it."""

    name: str
    reason: str  # why, naming no secret
    min_interval: float = 0.0

    def send(self, message: AlertMessage) -> DeliveryResult:
        return DeliveryResult.retry(f"channel {self.name!r} cannot be built: {self.reason}")

    def masked(self) -> str:
        return "(not built)"


class Channel(Protocol):
    name: str
    min_interval: float  # seconds between two messages (rate limit); 0 for none

    def send(self, message: AlertMessage) -> DeliveryResult: ...

    def masked(self) -> str:
        """The endpoint with secrets masked, for logs and `alerts test`."""
        ...
