"""What the crawler remembers of recent articles to place a new one: sketches for finding
near-copies and reported facts for threading stories, kept in step with the database — so
a restart, or another crawler process on the same database, loses nothing.

On PostgreSQL the near-copies are looked for in the database itself (the shared index,
`storage.models.LshBand`), not in memory: a process's memory stays flat whatever the
corpus, and every process (the members of a deployment, a one-off crawl beside them) sees
the same state; placing articles that share a band is serialized (`repo.lock_bands`), so
two processes placing copies of one story at once agree on one original. SQLite (one
process) keeps the in-memory index."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rensa import RMinHash
from sqlalchemy.orm import Session

from basis.urls import is_web_url, site_of
from crawler.stages import dedupe, stories
from crawler.stages.dedupe import (
    NearDuplicateIndex,
    Resemblance,
    band_keys,
    closest_of,
    dump_sketch,
    load_sketch,
    sketch,
)
from crawler.stages.stories import ANCHOR_SCORE, Lexicon, Link, StoryIndex, facts
from storage import repository as repo
from storage.models import Article


@dataclass(frozen=True)
class Assessment:
    """A new article's place, and what to remember of it once it is stored."""

    placement: repo.Placement
    minhash: RMinHash | None
    facts: frozenset[str]
    link: Link | None = None  # how it joined another report's story


class RecentArticles:
    def __init__(self, threshold: float = dedupe.THRESHOLD,
                 retention: timedelta = dedupe.RETENTION,
                 story_window: timedelta = stories.WINDOW,
                 aliases: Mapping[str, Sequence[str]] | None = None,
                 shared: bool | None = None) -> None:
        self.copies = NearDuplicateIndex(threshold, retention)  # unless `shared`
        self.shared = shared  # None: on PostgreSQL (decided at the first sync)
        self.stories = StoryIndex(story_window)
        self.lexicon = Lexicon.bundled(aliases)  # config.yaml's alias bundles are concepts
        self._sketches_seen = self._reports_seen = 0  # highest article id loaded

    def sync(self, session: Session, now: datetime) -> None:
        """Load what was stored since the last sync (all of the window, the first time)."""
        if self.shared is None:
            postgresql = session.get_bind().dialect.name == "postgresql"
            if postgresql:
                self.fill_bands(session, now)  # a fill that fails is tried at the next sync
            self.shared = postgresql
        if not self.shared:
            self.sync_sketches(session, now)
        for report in repo.originals_after(session, self._reports_seen, now - self.stories.window):
            self._reports_seen = report.id
            if report.id not in self.stories:
                dated = report.published_at or report.first_seen_at
                self.stories.add(report.id, report.story_id, report.source,
                                 facts(report.title, report.text, self.lexicon, dated.date()),
                                 report.first_seen_at, dated,
                                 anchor=report.link_score is None
                                 or report.link_score >= ANCHOR_SCORE)
        self.stories.expire(now)

    def sync_sketches(self, session: Session, now: datetime) -> None:
        """The in-memory index: the sketches stored since the last sync."""
        for row in repo.sketches_after(session, self._sketches_seen, now - self.copies.retention):
            self._sketches_seen = row.id
            if row.id not in self.copies and (minhash := self.sketch_of(session, row)):
                self.copies.add(row.id, minhash, row.duplicate_of, row.first_seen_at)
        self.copies.expire(now)

    def fill_bands(self, session: Session, now: datetime) -> None:
        """The shared index: the articles of the window stored before it existed put in
        (once a process, a thousand at a time, each in a transaction of its own)."""
        after = 0
        while True:
            with Session(session.get_bind()) as own, own.begin():
                rows = repo.sketches_without_bands(own, now - self.copies.retention, after)
                if not rows:
                    return
                repo.add_bands(own, [(row.id, row.first_seen_at, band_keys(minhash))
                                     for row in rows if (minhash := self.sketch_of(own, row))])
                after = rows[-1].id

    @staticmethod
    def sketch_of(session: Session, row: repo.StoredSketch) -> RMinHash | None:
        """A stored sketch (made again from the text when an older rensa made it)."""
        return load_sketch(row.sketch) or sketch(repo.article_text(session, row.id))

    def closest(self, session: Session, minhash: RMinHash, bands: tuple[int, ...],
                now: datetime) -> Resemblance | None:
        """The original of the closest near-copy of `minhash` stored within the window."""
        if not self.shared:
            return self.copies.closest(minhash)
        repo.lock_bands(session, bands)  # before looking: see the module's docstring
        found = ((row.duplicate_of or row.id, other) for row in repo.band_candidates(
            session, bands, now - self.copies.retention)
            if (other := self.sketch_of(session, row)) is not None)
        return closest_of(minhash, found, self.copies.threshold)

    def assess(self, session: Session, new: repo.NewArticle, source: str,
               now: datetime, story_id: int | None = None) -> Assessment:
        """A near-copy goes under its original, as does a news search's item and the
        outlet's own article of the same headline (see `headline_twin`); anything else
        into `story_id` when given (a new version of a watched page), the story of another
        outlet's report of the same facts, or a story of its own."""
        self.sync(session, now)
        dated = new.published_at or now
        minhash, found = sketch(new.text), facts(new.title, new.text, self.lexicon, dated.date())
        state = dump_sketch(minhash) if minhash is not None else None
        bands = band_keys(minhash) if minhash is not None and self.shared else ()
        if story_id is not None:
            return Assessment(repo.Placement(state, story_id=story_id, bands=bands),
                              minhash, found)
        copied = self.closest(session, minhash, bands, now) if minhash is not None else None
        original = copied.original_id if copied is not None else \
            self.headline_twin(session, new, now)
        if original is not None:
            return Assessment(repo.Placement(state, duplicate_of=original, bands=bands),
                              minhash, found)
        link = self.stories.link(source, found, dated)
        if link is None:
            return Assessment(repo.Placement(state, bands=bands), minhash, found)
        return Assessment(repo.Placement(state, story_id=link.story_id,
                                         linked_to=link.article_id, evidence=link.evidence,
                                         score=link.score, bands=bands), minhash, found, link)

    def headline_twin(self, session: Session, new: repo.NewArticle,
                      now: datetime) -> int | None:
        """The article a news search's item points to, or the item pointing to this one:
        the same headline within the story window, one of the two from a news search
        (`outlet`), both of one site when the search names the outlet's URL."""
        if new.title_key is None:
            return None
        site = _site(new.outlet or new.canonical_url)
        for article_id, url, outlet in repo.headline_twins(session, new.title_key,
                                                           now - self.stories.window):
            other = _site(outlet or url)
            if (new.outlet or outlet) and (site is None or other is None or site == other):
                return article_id
        return None

    def remember(self, article: Article, source: str, assessment: Assessment) -> None:
        """Index a stored article (after its transaction committed); one that took its
        original's place (see `repo.rank`) takes it here too."""
        former = assessment.placement.duplicate_of
        anchor = assessment.link is None or assessment.link.strong
        if former is not None and article.duplicate_of is None:
            self.copies.reassign(former, article.id)  # (the shared index: in the database)
            anchor = self.stories.discard(former)  # and its story link: see repo.take_over
        if assessment.minhash is not None and not self.shared:
            self.copies.add(article.id, assessment.minhash, article.duplicate_of,
                            article.first_seen_at)
        if article.duplicate_of is None and article.story_id is not None:
            self.stories.add(article.id, article.story_id, source, assessment.facts,
                             article.first_seen_at, article.published_at, anchor)


def _site(outlet_or_url: str) -> str | None:
    """The site an outlet's URL names (None: a bare name)."""
    return site_of(outlet_or_url) if is_web_url(outlet_or_url) else None
