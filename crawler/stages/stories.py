"""Story threading (pure): an article that is not a copy joins the story of a recent
article from another outlet that reports the same distinctive facts — figures and names."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from basis.folding import fold

WINDOW = timedelta(days=3)
MIN_SHARED_FACTS = 3

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_YEAR = re.compile(r"(?:19|20)\d\d")
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+\b")  # Daniel Okafor, Home Affairs


def facts(title: str, text: str) -> frozenset[str]:
    """What a report states that another report of the same event states too, in any
    language: numbers of three digits or more (years aside) and multi-word proper names."""
    raw = f"{title}\n{text}"
    numbers = {n.replace(",", "") for n in _NUMBER.findall(fold(raw))}
    names = {fold(name) for name in _NAME.findall(raw)}
    return frozenset({n for n in numbers if len(n) >= 3 and not _YEAR.fullmatch(n)} | names)


@dataclass(frozen=True)
class _Report:
    article_id: int
    story_id: int
    source: str
    facts: frozenset[str]
    seen_at: datetime


class StoryIndex:
    """The originals seen in the last `window`, with the facts each outlet repeats in all its
    articles (contact numbers, newsletter names) set apart as that outlet's boilerplate."""

    def __init__(self, window: timedelta = WINDOW, min_shared: int = MIN_SHARED_FACTS) -> None:
        self.window, self.min_shared = window, min_shared
        self._reports: dict[int, _Report] = {}  # by article id, oldest first
        self._by_fact: dict[str, set[int]] = {}
        self._by_source: dict[str, Counter[str]] = {}

    def __contains__(self, article_id: int) -> bool:
        return article_id in self._reports

    def story_for(self, source: str, found: frozenset[str]) -> int | None:
        """The story of the recent report from another outlet sharing the most facts."""
        own = self._distinctive(source, found)
        overlap: Counter[int] = Counter(
            article_id for fact in own for article_id in self._by_fact.get(fact, ())
            if self._reports[article_id].source != source)
        best, best_shared = None, self.min_shared - 1
        for article_id, count in overlap.most_common():
            if count <= best_shared:
                break
            report = self._reports[article_id]
            shared = len(own & self._distinctive(report.source, report.facts, 1))
            if shared > best_shared:
                best, best_shared = report.story_id, shared
        return best

    def add(self, article_id: int, story_id: int, source: str, found: frozenset[str],
            seen_at: datetime) -> None:
        if article_id in self._reports:
            return
        self._reports[article_id] = _Report(article_id, story_id, source, found, seen_at)
        self._by_source.setdefault(source, Counter()).update(found)
        for fact in found:
            self._by_fact.setdefault(fact, set()).add(article_id)

    def expire(self, now: datetime) -> None:
        for article_id, report in list(self._reports.items()):
            if report.seen_at >= now - self.window:
                break
            self.discard(article_id)

    def discard(self, article_id: int) -> None:
        """Forget a report (expired, or now a copy of a better original)."""
        report = self._reports.pop(article_id, None)
        if report is None:
            return
        self._by_source[report.source].subtract(report.facts)
        for fact in report.facts:
            self._by_fact[fact].discard(article_id)
            if not self._by_fact[fact]:
                del self._by_fact[fact]

    def _distinctive(self, source: str, found: frozenset[str],
                     own_count: int = 0) -> frozenset[str]:
        """`found` without the facts the outlet printed in another of its recent articles
        (`own_count`: how many times the article itself is already counted)."""
        seen = self._by_source.get(source)
        if not seen:
            return found
        return frozenset(f for f in found if seen[f] <= own_count)
