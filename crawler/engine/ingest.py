"""The ingest step: each item a spider yields, handled — the pure stages run (extract,
normalize, place), the result stored with its topic matches and alerts in one transaction,
the source's state and the crawl report kept. No Scrapy here: the item pipeline is a thin
adapter over it, and tests may drive it with items directly."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from alerts.channels.base import AlertItem
from alerts.match import Document
from alerts.outbox import AlertPolicy, queue_alerts, queue_statement_alerts
from alerts.topics import TopicSet
from basis.clock import utcnow
from basis.languages import language_of
from basis.text import clip
from basis.urls import canonical_url
from crawler.config import Config
from crawler.engine.report import CrawlReport, SourceReport
from crawler.engine.shared import Shared
from crawler.stages.dedupe import material_change
from crawler.stages.extract import decode_html, extract_article
from crawler.stages.normalize import preferred_url, text_fingerprint, title_key
from crawler.stages.placement import Assessment, RecentArticles
from crawler.stages.recheck import CONFIRM_GONE, GONE, is_front_page, next_check, text_diff
from spiders.items import (
    ArticleSeen,
    FeedEntry,
    KnownLink,
    MoreEntries,
    Page,
    PageFailed,
    PageSnapshot,
    PollDone,
    Rechecked,
    SourceDeferred,
    SourceFailed,
    SourcePolled,
)
from storage import repository as repo
from storage.archive import NewCapture
from storage.db import engine_of
from storage.models import Article

log = logging.getLogger(__name__)
FUTURE_TOLERANCE = timedelta(days=1)
SUMMARY_CHARS = 280
OUTLET_CHARS = 200  # a news search's `<source>`, web text of any length: its column's size


def to_new_article(item: ArticleSeen, language_hint: str | None,
                   now: datetime) -> repo.NewArticle:
    """Feed entry + page → the article to store (pure)."""
    entry, page = item.entry, item.page
    title, text, published, canonical = entry.title, entry.content or entry.summary, \
        entry.published, canonical_url(entry.url)
    language = entry.language
    if page is not None:
        extracted = extract_article(decode_html(page.body, page.content_type), page.url)
        canonical = preferred_url(page.url, extracted.canonical)
        title = extracted.title or title
        text = extracted.text or text
        published = published or extracted.published_at  # the feed's date wins
        language = extracted.language or language
    published_at, estimated = settle_date(published, now)
    return repo.NewArticle(
        url=entry.url, canonical_url=canonical, seen_url=canonical_url(entry.url),
        title=title, text=text,
        summary=entry.summary or clip(" ".join(text.split()), SUMMARY_CHARS),
        language=language_hint or language or language_of(text or title),
        published_at=published_at, date_is_estimated=estimated,
        text_hash=text_fingerprint(text), title_key=title_key(title),
        outlet=entry.outlet[:OUTLET_CHARS] if entry.outlet and page is None else None,
        etag=page.etag if page else None, last_modified=page.last_modified if page else None)


def settle_date(published: datetime | None, now: datetime) -> tuple[datetime, bool]:
    """A missing date becomes first-seen time, a future one is clamped: both flagged."""
    if published is None or published > now + FUTURE_TOLERANCE:
        return now, True
    return published, False


@dataclass(frozen=True)
class Rules:
    """What the config says about storing and alerting."""

    language_hints: dict[str, str | None]
    source_tags: dict[str, tuple[str, ...]]
    topics: TopicSet
    policies: dict[str, AlertPolicy]
    backfill: timedelta
    recent: RecentArticles
    archive: bool = True  # keep the bytes each article was read from
    rechecked: frozenset[str] = frozenset()  # sources whose articles are fetched again

    @classmethod
    def of(cls, config: Config) -> Rules:
        dedupe = config.dedupe
        return cls({s.name: s.language for s in config.sources},
                   {s.name: s.tags for s in config.sources},
                   TopicSet.compile(config.topics, config.aliases), config.alert_policies(),
                   config.crawl.backfill,
                   RecentArticles(dedupe.threshold, dedupe.retention, dedupe.story_window,
                                  config.aliases),
                   config.archive is not None, rechecked_sources(config))


def rechecked_sources(config: Config) -> frozenset[str]:
    """Official sources whose article pages are fetched again for edits and deletions (a
    watched page already keeps its versions at each poll)."""
    return frozenset(s.name for s in config.sources
                     if s.official and s.recheck and s.follow and s.kind != "page")


class Ingest(Shared):
    """Where a crawl's items go: articles, sightings and source state stored, topics matched
    and alerts queued, the crawl report tallied. Scrapy reaches it through a thin item
    pipeline; tests may call it directly with items."""

    def __init__(self, db: sessionmaker[Session], report: CrawlReport, rules: Rules) -> None:
        self.db, self.report = db, report
        self.rules = rules  # the daemon puts in new ones when the config is reloaded
        self.handlers: dict[type, Callable[[Any, SourceReport], None]] = {
            SourcePolled: self.polled, SourceFailed: self.failed, SourceDeferred: self.deferred,
            MoreEntries: self.more, ArticleSeen: self.article, PageSnapshot: self.snapshot,
            KnownLink: self.known, PageFailed: self.page_failed, PollDone: self.poll_done,
            Rechecked: self.rechecked}
        self.answers: dict[str, SourcePolled] = {}  # per source, until its poll ends

    def __call__(self, item: Any) -> None:
        """Store one item. A failure here is never silent: it is logged, counted on its
        source and fails the crawl, and the item is tried again on the next poll."""
        tally = self.report.tally(item.source)
        try:
            self.handlers[type(item)](item, tally)
        except Exception as exc:  # noqa: BLE001 — any storage or extraction bug lands here
            log.debug("could not store %r", item, exc_info=True)
            log.error("%s: could not store an item: %s: %s", item.source,
                      type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            tally.errors += 1
            self.report.unstored += 1
        self.report.changed()

    def polled(self, item: SourcePolled, tally: SourceReport) -> None:
        self.answers[item.source] = item  # written with the poll's end (see `poll_done`)
        tally.http_status, tally.items = item.http_status, item.entries
        tally.status = "unchanged" if item.http_status == 304 else \
            "warning" if item.warning else "ok"
        tally.message = item.warning
        self.skipped(tally, item.skipped, "beyond the per-poll cap or older than the backfill")
        if item.waited:
            tally.waited += item.waited
            tally.message = f"{tally.message + '; ' if tally.message else ''}{item.waited} " \
                "new links wait for the next poll (at most 1,000 a poll, newest first)"

    def more(self, item: MoreEntries, tally: SourceReport) -> None:
        tally.items += item.entries
        self.skipped(tally, item.skipped, "beyond the per-poll cap or older than the backfill")

    def skipped(self, tally: SourceReport, count: int, why: str) -> None:
        if count:
            tally.skipped += count
            tally.message = f"{tally.message + '; ' if tally.message else ''}{count} skipped: {why}"

    def failed(self, item: SourceFailed, tally: SourceReport) -> None:
        with self.db.begin() as session:
            repo.record_failure(session, item.source, item.message, item.retry_after)
        tally.status, tally.http_status = "failed", item.http_status
        tally.error_class, tally.message = item.error_class, item.message
        if item.retry_after:
            tally.message += f" (the server asked to wait until {item.retry_after:%H:%M} UTC)"
        tally.errors += 1

    def deferred(self, item: SourceDeferred, tally: SourceReport) -> None:
        tally.status = "deferred"
        tally.message = f"not polled: the server asked to wait until {item.until:%H:%M} UTC " \
            f"on {item.until:%Y-%m-%d} (Retry-After)"

    def article(self, item: ArticleSeen, tally: SourceReport) -> None:
        """Store a new article; a copy of a stored one only adds a sighting."""
        now = utcnow()
        new = to_new_article(item, self.rules.language_hints.get(item.source), now)
        new = replace(new, capture=self.capture(item.page or item.listed_in))
        if item.source in self.rules.rechecked and item.page is not None:
            new = replace(new, next_check_at=next_check(now, now))
        self.store(new, item.source, tally, now, item.also_seen)
        if item.page_error:
            tally.errors += 1
            tally.message = f"{item.entry.url}: {item.page_error}"

    def snapshot(self, item: PageSnapshot, tally: SourceReport) -> None:
        """A watched page: stored the first time, then again (a new version in the same
        story) only when its text changed materially."""
        now = utcnow()
        new = to_new_article(ArticleSeen(item.source, FeedEntry(item.page.url), item.page),
                             self.rules.language_hints.get(item.source), now)
        new = replace(new, capture=self.capture(item.page))
        with self.db() as session:
            versions = repo.page_versions(session, new.canonical_url)
        if not versions:
            self.store(new, item.source, tally, now)
        elif material_change(versions[-1].text, new.text):
            self.store(replace(new, canonical_url=repo.version_url(new.canonical_url,
                                                                   len(versions) + 1)),
                       item.source, tally, now, story_id=versions[-1].story_id)
        else:
            tally.known += 1

    def capture(self, page: Page | None) -> NewCapture | None:
        """What the archive keeps of the response an article was read from."""
        if page is None or not self.rules.archive:
            return None
        return NewCapture(page.url, page.status, page.headers, page.body,
                          page.fetched_at or utcnow())

    def rechecked(self, item: Rechecked, tally: SourceReport) -> None:
        """A statement fetched again: a material edit is kept as a new version, a page gone
        (404, 410, a redirect to the front page) twice in a row marks it removed; either
        alerts once. The next check follows the schedule (`crawler.stages.recheck`), the
        second look at a page gone comes sooner; none after a removal."""
        now = utcnow()
        with self.db.begin() as session:
            article = session.get(Article, item.article_id)
            if article is None or article.removed_at is not None:
                return
            tally.rechecked += 1
            article.next_check_at = next_check(article.first_seen_at, now)
            if item.status in GONE or (item.landed_at and
                                       is_front_page(item.url, item.landed_at)):
                if article.gone_at is None:  # once may be a glitch: asked again soon
                    article.gone_at, article.next_check_at = now, now + CONFIRM_GONE
                else:
                    tally.removed += 1
                    tally.alerts += self.removed(session, article, item, now)
                return
            if item.error:  # not the poll's message: the source itself is fine
                log.warning("re-checking %s failed: %s (checked again later)", item.url,
                            item.error)
                return
            article.gone_at = None
            if item.page is not None:
                article.etag, article.last_modified = item.page.etag, item.page.last_modified
                new = replace(to_new_article(ArticleSeen(item.source, FeedEntry(item.url),
                                                         item.page),
                                             self.rules.language_hints.get(item.source), now),
                              capture=self.capture(item.page))
                if new.text and material_change(article.text, new.text):  # none: unread
                    tally.edited += 1
                    tally.alerts += self.edited(session, article, new, now)

    def edited(self, session: Session, article: Article, new: repo.NewArticle,
               now: datetime) -> int:
        """Keep the new version; queue its "statement edited" alerts, with the diff."""
        diff = text_diff(article.text, new.text)
        version = repo.add_version(session, article, new, now)
        article.text_hash = new.text_hash
        snippet = f"Version {version} of this statement, seen {now:%Y-%m-%d %H:%M} UTC, " \
            f"differs from the one before (versions: mediawatch articles show {article.id})."
        return queue_statement_alerts(session, article, "edited", version, AlertItem(
            article.title, article.url, article.source.name, article.published_at, snippet,
            diff=tuple(diff)), self.rules.policies, now)

    def removed(self, session: Session, article: Article, item: Rechecked,
                now: datetime) -> int:
        """Mark the statement removed; queue its "statement removed" alerts, which point to
        the copy kept."""
        article.removed_at, article.next_check_at = now, None
        how = f"HTTP {item.status}" if item.status in GONE else \
            f"redirected to the front page {item.landed_at}"
        snippet = f"The page is gone ({how}, {now:%Y-%m-%d %H:%M} UTC). The text as stored: " \
            f"mediawatch articles show {article.id}; the bytes read: mediawatch articles " \
            f"show {article.id} --raw."
        return queue_statement_alerts(session, article, "removed", 0, AlertItem(
            article.title, article.url, article.source.name, article.published_at, snippet),
            self.rules.policies, now)

    def store(self, new: repo.NewArticle, source: str, tally: SourceReport, now: datetime,
              also_seen: Iterable[tuple[str, str]] = (), story_id: int | None = None) -> None:
        """Store an article with its topic matches and alerts in one transaction: a
        near-copy as a duplicate of its original (never matched), a new version of a
        watched page in that page's story, anything else where dedupe places it."""
        assessed: list[Assessment] = []
        with self.db.begin() as session:

            def place() -> repo.Placement:
                assessment = self.rules.recent.assess(session, new, source, now, story_id)
                assessed.append(assessment)
                return assessment.placement

            article, created = repo.add_article(session, new, source, place)
            if created and article.duplicate_of is None:
                self.match(session, article, new, source, tally)
            for other, url in also_seen:
                repo.sighting_of_url(session, canonical_url(url), other)
                self.report.tally(other).known += 1
        if assessed and created:
            self.rules.recent.remember(article, source, assessed[0])
        if not created:
            tally.known += 1
        elif article.duplicate_of is not None:
            tally.duplicates += 1
        else:
            tally.new += 1

    def match(self, session: Session, article: Article, new: repo.NewArticle, source: str,
              tally: SourceReport) -> None:
        """Match an original against the topics and queue its alerts (none for a topic
        already alerted for a copy whose place it took)."""
        matches = self.rules.topics.match(Document(
            new.title, new.text, new.canonical_url, source,
            self.rules.source_tags.get(source, ()), new.language))
        repo.add_matches(session, article, {m.topic: m.as_json() for m in matches})
        tally.matches += len(matches)
        alerted = repo.alerted_topics(session, article) if matches else set()
        tally.alerts += queue_alerts(session, article,
                                     [m.topic for m in matches if m.topic not in alerted],
                                     self.rules.policies, utcnow(), self.rules.backfill)

    def page_failed(self, item: PageFailed, tally: SourceReport) -> None:
        if item.skipped:
            self.skipped(tally, 1, item.message)
            return
        tally.errors += 1
        tally.message = f"{item.url}: {item.message} (retried next poll)"

    def known(self, item: KnownLink, tally: SourceReport) -> None:
        published, estimated = settle_date(item.published, utcnow())
        with self.db.begin() as session:
            repo.sighting_of_url(session, canonical_url(item.url), item.source,
                                 None if estimated else (item.url, published))
        tally.known += 1


    def poll_done(self, item: PollDone, tally: SourceReport) -> None:
        """One poll of a source ended: the source's state and the crawl-run row, in one
        transaction (a rolling report starts the source's next poll afresh). New
        validators are kept only when the poll stored everything it offered; otherwise
        they are cleared, so that the next poll reads the source again and retries what
        failed, or follows the links that waited, instead of being answered 304."""
        answer = self.answers.pop(item.source, None)
        with engine_of(self.db).begin() as session:
            if answer is not None and tally.status != "failed":
                validators = None if answer.http_status == 304 else \
                    (None, None) if tally.errors or answer.waited else \
                    (answer.etag, answer.last_modified)
                repo.record_poll(session, item.source, answer.warning, validators)
            repo.record_run(session, tally.name, item.started_at, tally.status,
                            tally.http_status, repo.RunTally(
                                tally.requests, tally.items, tally.new, tally.known,
                                tally.errors), tally.error_class, tally.message)
        tally.started_at = item.started_at
        self.report.poll_done(tally)
