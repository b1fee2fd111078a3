"""What one crawl did, per source: the figures behind the progress bar and summary table."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from basis.clock import utcnow
from crawler.engine.shared import Shared


@dataclass
class SourceReport:
    name: str
    started_at: datetime = field(default_factory=utcnow)
    status: str = "pending"  # ok | unchanged | warning | failed | deferred
    http_status: int | None = None
    requests: int = 0
    items: int = 0
    new: int = 0
    known: int = 0
    duplicates: int = 0  # near-copies stored under their original
    matches: int = 0
    alerts: int = 0
    errors: int = 0
    skipped: int = 0  # links not followed: robots.txt, the per-poll cap, the backfill window,
    #                   feed items with no http(s) link
    waited: int = 0  # new feed links beyond the per-poll cap: followed on the next polls
    rechecked: int = 0  # official statements fetched again (see crawler.stages.recheck)
    edited: int = 0  # of those: edited (a new version kept)
    removed: int = 0  # of those: gone
    error_class: str | None = None
    message: str | None = None


@dataclass(eq=False)
class CrawlReport(Shared):
    sources: dict[str, SourceReport]
    scheduled: int = 0
    finished: int = 0
    unstored: int = 0  # items whose storage failed (a bug or a database outage)
    on_change: Callable[[CrawlReport], None] = lambda report: None
    on_poll: Callable[[SourceReport], None] = lambda tally: None
    rolling: bool = False  # the daemon: each poll of a source starts a fresh tally
    # how `on_change` and `on_poll` are called: storing (crawler.engine.storing), which
    # tallies in its own thread, has them run on the reactor thread, where they belong
    notify: Callable[..., None] = lambda call, *args: call(*args)

    @classmethod
    def for_sources(cls, names: list[str]) -> CrawlReport:
        return cls({name: SourceReport(name) for name in names})

    def tally(self, source: str) -> SourceReport:
        """The figures of a source's current poll (a source added by a reload starts one)."""
        found = self.sources.get(source)
        if found is None:  # setdefault: the reactor and the storing thread may both ask
            found = self.sources.setdefault(source, SourceReport(source))
        return found

    def changed(self) -> None:
        self.notify(self.on_change, self)

    def poll_done(self, tally: SourceReport) -> None:
        self.notify(self._poll_ended, tally)

    def _poll_ended(self, tally: SourceReport) -> None:
        self.on_poll(tally)
        if self.rolling:
            self.sources[tally.name] = SourceReport(tally.name)

    @property
    def failed(self) -> list[SourceReport]:
        return [r for r in self.sources.values() if r.status == "failed"]

    def totals(self) -> dict[str, int]:
        rows = self.sources.values()
        return {key: sum(getattr(r, key) for r in rows)
                for key in ("requests", "items", "new", "known", "duplicates", "skipped",
                            "waited", "rechecked", "edited", "removed", "matches", "alerts",
                            "errors")}
