"""Reads and writes on a Session, in the vocabulary of the flow: sources and their crawl
state, articles stored once per canonical URL with their sightings, crawl runs."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy import text as sql
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, selectinload
from sqlalchemy.sql.elements import ColumnElement

from basis.clock import utcnow
from storage import archive
from storage.models import (
    Alert,
    AlertArticle,
    Article,
    ArticleVersion,
    Capture,
    ChannelWait,
    CrawlRun,
    LshBand,
    Sighting,
    Snooze,
    Source,
    Story,
    StoryLink,
    TopicMatch,
    TopicState,
)


@dataclass(frozen=True)
class SourceDef:
    name: str
    kind: str
    url: str
    official: bool = False


@dataclass(frozen=True)
class NewArticle:
    """An article as the crawler hands it over; `canonical_url` and `text_hash` decide
    whether it is new or a sighting of one already stored."""

    url: str
    canonical_url: str
    seen_url: str  # canonical form of the link it was found at
    title: str
    text: str
    summary: str
    language: str | None
    published_at: datetime | None
    date_is_estimated: bool
    text_hash: str
    title_key: str | None = None  # the headline's comparison form
    outlet: str | None = None  # a news search's item: the outlet it points to
    capture: archive.NewCapture | None = None  # the bytes it was read from, to archive
    next_check_at: datetime | None = None  # an official statement: when to fetch it again
    etag: str | None = None  # its page's validators, for that conditional GET
    last_modified: str | None = None


@dataclass(frozen=True)
class RunTally:
    requests: int = 0
    items: int = 0
    new_articles: int = 0
    known: int = 0
    errors: int = 0


# ---------------------------------------------------------------- sources

def sync_sources(session: Session, sources: Iterable[SourceDef]) -> None:
    """Make the sources table follow the config (crawl state is kept). New rows are
    inserted unless there: members starting together each add the same sources."""
    sources = list(sources)
    if sources:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(Source).on_conflict_do_nothing(index_elements=["name"]),
                        [{"name": s.name, "kind": s.kind, "url": s.url, "official": s.official,
                          "consecutive_failures": 0} for s in sources])
    stored = {s.name: s for s in session.scalars(select(Source))}
    for source in sources:
        row = stored[source.name]
        if (row.kind, row.url) != (source.kind, source.url):
            row.kind, row.url, row.etag, row.last_modified = source.kind, source.url, None, None
        row.official = source.official


def source_by_name(session: Session, name: str) -> Source:
    return session.scalars(select(Source).where(Source.name == name)).one()


SOURCE_HEALTH = ("ok", "warning", "failing", "silent", "never polled")


def source_health(source: Source | None) -> str:
    """A source's health as the CLI (`sources list`) and the reading room show it: never
    polled, failing (its last poll failed), silent (the watchdog told the operator no new
    article came for too long), warning (its last poll succeeded with a warning), else ok."""
    if source is None or source.last_polled_at is None:
        return "never polled"
    if source.consecutive_failures:
        return "failing"
    if source.reported_health == "silent":
        return "silent"
    return "warning" if source.last_warning else "ok"


def list_sources(session: Session, names: Collection[str] | None = None) -> Sequence[Source]:
    query = select(Source).order_by(Source.name)
    if names is not None:
        query = query.where(Source.name.in_(names))
    return session.scalars(query).all()


_SOURCES, _RUNS = Source.__table__, CrawlRun.__table__
# built once, run with parameters: the daemon writes these on every poll
_POLLED = {"last_polled_at": bindparam("now"), "last_success_at": bindparam("now"),
           "consecutive_failures": 0, "last_error": None, "not_before": None,
           "last_warning": bindparam("warning")}
_RECORD_POLL = update(_SOURCES).where(_SOURCES.c.name == bindparam("source")).values(_POLLED)
_RECORD_POLL_VALIDATORS = _RECORD_POLL.values(etag=bindparam("etag"),
                                              last_modified=bindparam("modified"))
_POLL_STATE = select(_SOURCES).where(_SOURCES.c.name == bindparam("source"))
_RECORD_RUN = insert(_RUNS).values(source_id=select(_SOURCES.c.id).where(
    _SOURCES.c.name == bindparam("source")).scalar_subquery())


def poll_state(session: Session | Connection, name: str) -> Row[Any]:
    """A source's row (the columns of `Source`), without an ORM object: read before
    every poll of the daemon."""
    return session.execute(_POLL_STATE, {"source": name}).one()


def record_poll(session: Session | Connection, name: str, warning: str | None,
                validators: tuple[str | None, str | None] | None = None) -> None:
    """A poll that succeeded. `validators` (ETag, Last-Modified) replace the stored ones;
    None keeps them (a 304)."""
    params = {"source": name, "now": utcnow(), "warning": warning}
    if validators is None:
        session.execute(_RECORD_POLL, params)
    else:
        etag, modified = validators
        session.execute(_RECORD_POLL_VALIDATORS, params | {"etag": etag, "modified": modified})


def record_failure(session: Session, name: str, message: str,
                   retry_after: datetime | None = None) -> None:
    source = source_by_name(session, name)
    source.last_polled_at = utcnow()
    source.consecutive_failures += 1
    source.last_error = message
    source.not_before = retry_after


def record_run(session: Session | Connection, name: str, started_at: datetime, status: str,
               http_status: int | None, tally: RunTally, error_class: str | None = None,
               error: str | None = None) -> None:
    """One poll's crawl-run row."""
    session.execute(_RECORD_RUN, {
        "source": name, "started_at": started_at, "finished_at": utcnow(), "status": status,
        "http_status": http_status, "requests": tally.requests, "items": tally.items,
        "new_articles": tally.new_articles, "known": tally.known, "errors": tally.errors,
        "error_class": error_class, "error": error})


def forget_runs(session: Session, before: datetime) -> int:
    """Drop crawl-run rows of polls started before `before`; how many were dropped."""
    return session.execute(delete(CrawlRun).where(CrawlRun.started_at < before)).rowcount


# ---------------------------------------------------------------- articles

def is_known_url(session: Session, canonical: str) -> bool:
    """Whether an article is stored under this canonical URL or was seen at it."""
    return bool(session.scalar(select(
        exists().where(Article.canonical_url == canonical)
        | exists().where(Sighting.url == canonical))))


def find_article(session: Session, canonical: str) -> Article | None:
    """The stored original at a URL (its canonical URL or a sighting); a near-duplicate
    found this way resolves to its original."""
    found = session.scalar(select(Article).where(Article.canonical_url == canonical)) \
        or session.scalar(select(Article).join(Sighting).where(Sighting.url == canonical).limit(1))
    if found is not None and found.duplicate_of is not None:
        return session.get(Article, found.duplicate_of)
    return found


def same_text(session: Session, text_hash: str) -> Article | None:
    """The stored original with this text (an exact reprint's original)."""
    return original_of(session, session.scalar(select(Article.id).where(
        Article.text_hash == text_hash).order_by(Article.id).limit(1)))


@dataclass(frozen=True)
class Placement:
    """Where dedupe puts a new article: a near-copy of an original, or into a story (None:
    a story of its own); `sketch` is its MinHash state, kept for later comparisons, and
    `bands` its LSH band keys for the shared index (none: not kept there, see `LshBand`);
    `linked_to`, `evidence` and `score`: why it joined the story (stored as a StoryLink)."""

    sketch: bytes | None = None
    duplicate_of: int | None = None
    story_id: int | None = None
    linked_to: int | None = None
    evidence: tuple[str, ...] = ()
    score: float = 0.0
    bands: tuple[int, ...] = ()


def add_article(session: Session, item: NewArticle, source_name: str,
                place: Callable[[], Placement] = Placement) -> tuple[Article, bool]:
    """Store an article, or record a sighting when it is already stored (same canonical URL
    or text). A new article goes where `place()` says; a near-copy is stored as a duplicate
    and its URL recorded as a sighting of the original — unless it ranks before that
    original (see `rank`), exact reprint or near-copy, and takes its place.
    → (article, is_new)"""
    source = source_by_name(session, source_name)
    existing = find_article(session, item.canonical_url)
    if existing is not None and item.seen_url == item.canonical_url \
            and not item.date_is_estimated and not item.outlet:  # the page itself, dated
        existing = _redated(session, item.canonical_url, item.url, item.published_at) \
            or existing
    twin = same_text(session, item.text_hash) if existing is None and item.text.strip() \
        else None  # an exact reprint: a sighting, unless it is the better original
    if twin is not None and \
            rank(item.outlet, source.official, item.published_at or utcnow()) >= _rank(twin):
        existing = twin
    if existing is not None:
        add_sighting(session, existing, source, item.seen_url)
        return existing, False
    placement, now = place(), utcnow()
    original = twin or original_of(session, placement.duplicate_of)
    story_id = original.story_id if original is not None else placement.story_id
    story = session.get(Story, story_id) if story_id else None
    if story is None:
        story = Story(headline=item.title or item.canonical_url, first_seen_at=now)
    story.last_seen_at = now
    article = Article(url=item.url, canonical_url=item.canonical_url, source=source,
                      title=item.title, text=item.text, summary=item.summary,
                      language=item.language, published_at=item.published_at,
                      date_is_estimated=item.date_is_estimated, first_seen_at=now,
                      text_hash=item.text_hash, sketch=placement.sketch, story=story,
                      title_key=item.title_key, outlet=item.outlet,
                      capture=archive.keep(session, item.capture) if item.capture else None,
                      next_check_at=item.next_check_at, etag=item.etag,
                      last_modified=item.last_modified,
                      duplicate_of=original.id if original is not None else None)
    session.add(article)
    session.flush()
    add_bands(session, [(article.id, now, placement.bands)])
    linked = original_of(session, placement.linked_to)  # (a report may have lost its place)
    if original is None and linked is not None and story_id is not None:
        session.add(StoryLink(article_id=article.id, linked_article_id=linked.id,
                              evidence=list(placement.evidence), score=placement.score))
    if original is not None and _rank(article) < _rank(original):
        take_over(session, article, original)
        original = None
    add_sighting(session, original or article, source, item.seen_url)
    return article, True


def _redated(session: Session, canonical: str, url: str, published: datetime
             ) -> Article | None:
    """A copy that names another page its canonical one is stored under that page's URL,
    with the copy's own date. When the page itself, or a listing of it at its own URL,
    dates it earlier, the article takes that URL and date (not the copy's validators), and
    may then rank before its story's original and take its place. → the article's original,
    if redated."""
    article = session.scalar(select(Article).where(Article.canonical_url == canonical))
    if article is None or published >= (article.published_at or article.first_seen_at):
        return None
    article.url, article.published_at, article.date_is_estimated = url, published, False
    article.etag = article.last_modified = None
    original = original_of(session, article.duplicate_of)
    if original is not None and _rank(article) < _rank(original):
        take_over(session, article, original)
    return original_of(session, article.id)


def original_of(session: Session, article_id: int | None) -> Article | None:
    """The original an article is (or was copied from): copies of a copy that lost its
    place to a better original resolve to that one."""
    article = session.get(Article, article_id) if article_id else None
    while article is not None and article.duplicate_of is not None:
        article = session.get(Article, article.duplicate_of)
    return article


def rank(outlet: str | None, official: bool, published: datetime
         ) -> tuple[bool, bool, datetime]:
    """Which of a story's copies is its original, the lowest rank: the outlet's own
    article over a news search's pointer to it (`outlet`), then an official source's
    version, then the earliest publication."""
    return outlet is not None, not official, published


def _rank(article: Article) -> tuple[bool, bool, datetime]:
    return rank(article.outlet, article.source.official,
                article.published_at or article.first_seen_at)


_UNSENT = ("pending", "failed")


def take_over(session: Session, article: Article, former: Article) -> None:
    """`article` becomes the original in place of `former`: `former` and its copies become
    its copies; their sightings, topic matches and unsent alerts move to it (a topic
    `article` matches too gets `article`'s own evidence when it is matched; one it does
    not keeps the story's); the story takes its headline."""
    article.duplicate_of = None
    session.flush()
    session.execute(update(Article).where(or_(Article.id == former.id,
                                              Article.duplicate_of == former.id))
                    .values(duplicate_of=article.id).execution_options(synchronize_session=False))
    session.execute(update(Sighting).where(Sighting.article_id == former.id)
                    .values(article_id=article.id).execution_options(synchronize_session=False))
    session.execute(update(Alert).where(Alert.article_id == former.id,
                                        Alert.status.in_(_UNSENT))
                    .values(article_id=article.id).execution_options(synchronize_session=False))
    unsent = select(Alert.id).where(Alert.status.in_(_UNSENT))
    session.execute(update(AlertArticle).where(AlertArticle.article_id == former.id,
                                               AlertArticle.alert_id.in_(unsent))
                    .values(article_id=article.id).execution_options(synchronize_session=False))
    session.execute(update(TopicMatch).where(TopicMatch.article_id == former.id)
                    .values(article_id=article.id).execution_options(synchronize_session=False))
    for column in (StoryLink.article_id, StoryLink.linked_article_id):  # the same text
        session.execute(update(StoryLink).where(column == former.id)
                        .values({column: article.id})
                        .execution_options(synchronize_session=False))
    session.expire(former)
    if article.story is not None:
        article.story.headline = article.title or article.canonical_url


def alerted_topics(session: Session, article: Article) -> set[str]:
    """Topics already alerted (queued or sent) for an article or for one of its copies —
    an original that took a copy's place alerts none of them again."""
    ids = select(Article.id).where(or_(Article.id == article.id,
                                       Article.duplicate_of == article.id))
    direct = select(Alert.topic).where(Alert.article_id.in_(ids))
    batched = select(Alert.topic).join(AlertArticle).where(AlertArticle.article_id.in_(ids))
    return set(session.scalars(direct.union(batched)))


def headline_twins(session: Session, title_key: str, since: datetime
                   ) -> list[tuple[int, str, str | None]]:
    """Originals first seen since `since` under this headline key, oldest first:
    (id, canonical URL, outlet)."""
    rows = session.execute(select(Article.id, Article.canonical_url, Article.outlet)
                           .where(Article.title_key == title_key, Article.first_seen_at >= since,
                                  Article.duplicate_of.is_(None)).order_by(Article.id))
    return [(row.id, row.canonical_url, row.outlet) for row in rows]


def page_versions(session: Session, canonical: str) -> Sequence[Article]:
    """The stored versions of a watched page, oldest first (see `version_url`)."""
    prefix = canonical.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return session.scalars(select(Article).where(or_(
        Article.canonical_url == canonical,
        Article.canonical_url.like(f"{prefix}#version-%", escape="\\")))
        .order_by(Article.id)).all()


def version_url(canonical: str, number: int) -> str:
    """Where version `number` (2, 3, …) of a watched page is stored: a fragment, which no
    canonical URL of a real page carries."""
    return f"{canonical}#version-{number}"


def add_sighting(session: Session, article: Article, source: Source, url: str) -> bool:
    """Record that `article` was seen at `url` on `source`; False when already recorded."""
    if session.scalar(select(exists().where(
            Sighting.article_id == article.id, Sighting.source_id == source.id,
            Sighting.url == url))):
        return False
    session.add(Sighting(article_id=article.id, source_id=source.id, url=url, seen_at=utcnow()))
    if article.story is not None:
        article.story.last_seen_at = utcnow()
    return True


def add_matches(session: Session, article: Article, highlights: dict[str, Any]) -> None:
    """Record which topics an article matched, with the evidence (highlights) of each (in
    place of the evidence of a copy whose place it took)."""
    if highlights:
        session.execute(delete(TopicMatch).where(TopicMatch.article_id == article.id,
                                                 TopicMatch.topic.in_(highlights))
                        .execution_options(synchronize_session=False))
    for topic, evidence in highlights.items():
        session.add(TopicMatch(article_id=article.id, topic=topic, highlights=evidence,
                               matched_at=utcnow()))


def sighting_of_url(session: Session, canonical: str, source_name: str,
                    listed: tuple[str, datetime] | None = None) -> bool:
    """A link to a stored article seen on a source: add the sighting; `listed`: the link as
    listed and the date the listing gives the page (see `_redated`). → whether it was new."""
    article = find_article(session, canonical)
    if article is None:
        return False
    if listed is not None:
        article = _redated(session, canonical, *listed) or article
    return add_sighting(session, article, source_by_name(session, source_name), canonical)


# ---------------------------------------------------------------- statements re-checked

@dataclass(frozen=True)
class DueCheck:
    article_id: int
    source: str
    url: str
    etag: str | None
    last_modified: str | None


def claim_checks(session: Session, sources: Collection[str], now: datetime, lease: timedelta,
                 limit: int = 500) -> list[DueCheck]:
    """Articles of these sources due to be fetched again (see `Article.next_check_at`),
    the most overdue first; each is not due again for `lease` (its check sets the next)."""
    query = (select(Article.id, Source.name, Article.url, Article.etag, Article.last_modified)
             .join(Source).where(Article.next_check_at <= now, Source.name.in_(sources))
             .order_by(Article.next_check_at, Article.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":  # a crawl beside the daemon: each
        query = query.with_for_update(of=Article, skip_locked=True)  # claims its own rows
    rows = session.execute(query).all()
    due = [DueCheck(*row) for row in rows]
    if due:
        session.execute(update(Article).where(Article.id.in_([d.article_id for d in due]))
                        .values(next_check_at=now + lease)
                        .execution_options(synchronize_session=False))
    return due


def add_version(session: Session, article: Article, new: NewArticle,
                fetched_at: datetime) -> int:
    """Keep a new version of an article's text (the first time, the stored one becomes
    version 1), each with the bytes it was read from, and make it the article's. → its
    number"""
    if not article.versions:
        article.versions.append(_version(1, article.title, article.text, article.first_seen_at,
                                         article.capture))
    number = article.versions[-1].version + 1
    capture = archive.keep(session, new.capture) if new.capture else None
    article.versions.append(_version(number, new.title, new.text, fetched_at, capture))
    article.title, article.text = new.title or article.title, new.text
    article.capture = capture  # `articles show --raw`: the bytes of the text shown
    return number


def _version(number: int, title: str, text: str, fetched_at: datetime,
             capture: Capture | None) -> ArticleVersion:
    return ArticleVersion(version=number, title=title, text=text, fetched_at=fetched_at,
                          sha=hashlib.sha256(text.encode()).hexdigest(), capture=capture)


# ---------------------------------------------------------------- dedupe memory

@dataclass(frozen=True)
class StoredSketch:
    id: int
    duplicate_of: int | None
    sketch: bytes
    first_seen_at: datetime


@dataclass(frozen=True)
class StoredReport:
    id: int
    story_id: int
    source: str
    title: str
    text: str
    first_seen_at: datetime
    published_at: datetime | None
    link_score: float | None  # how strongly it joined its story (None: it began it)


def sketches_after(session: Session, after_id: int, since: datetime) -> list[StoredSketch]:
    """Sketches of articles stored after `after_id` and first seen since `since`, by id."""
    rows = session.execute(
        select(Article.id, Article.duplicate_of, Article.sketch, Article.first_seen_at)
        .where(Article.id > after_id, Article.first_seen_at >= since,
               Article.sketch.is_not(None)).order_by(Article.id))
    return [StoredSketch(*row) for row in rows]


def originals_after(session: Session, after_id: int, since: datetime) -> list[StoredReport]:
    """Originals stored after `after_id` and first seen since `since`, by id."""
    rows = session.execute(
        select(Article.id, Article.story_id, Source.name, Article.title, Article.text,
               Article.first_seen_at, Article.published_at, StoryLink.score).join(Source)
        .outerjoin(StoryLink, StoryLink.article_id == Article.id)
        .where(Article.id > after_id, Article.first_seen_at >= since,
               Article.duplicate_of.is_(None), Article.story_id.is_not(None))
        .order_by(Article.id))
    return [StoredReport(*row) for row in rows]


def forget_sketches(session: Session, before: datetime) -> int:
    """Drop the sketches of articles first seen before `before` (the dedupe window), and
    their LSH bands. → how many sketches"""
    session.execute(delete(LshBand).where(LshBand.first_seen_at < before))
    result = session.execute(update(Article).where(Article.first_seen_at < before,
                                                   Article.sketch.is_not(None))
                             .values(sketch=None))
    return result.rowcount or 0


LSH_LOCKS = 0x6C736862  # "lshb": the advisory-lock space of LSH band keys (two-int form)


def lock_bands(session: Session, keys: Iterable[int]) -> None:
    """(PostgreSQL; a no-op elsewhere.) Hold, until the transaction ends, a lock on each
    band key: two processes placing near-copies of one story (they share a band) place
    them one after the other, so the second sees the first and calls it the original.
    Taken in one order (sorted) so that two transactions never wait on each other; keys
    folded to 32 bits: a rare collision only serializes two unrelated articles."""
    if session.get_bind().dialect.name != "postgresql":
        return
    folded = sorted({((key ^ (key >> 32)) & 0xFFFFFFFF) - (1 << 31) for key in keys})
    session.execute(sql("select pg_advisory_xact_lock(:space, k) "
                         "from unnest(cast(:keys as integer[])) as k"),
                    {"space": LSH_LOCKS, "keys": folded}).all()


def band_candidates(session: Session, keys: Collection[int], since: datetime
                    ) -> list[StoredSketch]:
    """The articles first seen since `since` sharing a band key with `keys`, by id."""
    sharing = select(LshBand.article_id).where(LshBand.band_key.in_(keys),
                                               LshBand.first_seen_at >= since)
    rows = session.execute(
        select(Article.id, Article.duplicate_of, Article.sketch, Article.first_seen_at)
        .where(Article.id.in_(sharing), Article.sketch.is_not(None)).order_by(Article.id))
    return [StoredSketch(*row) for row in rows]


def add_bands(session: Session, indexed: Iterable[tuple[int, datetime, Iterable[int]]]
              ) -> None:
    """Index articles (id, first seen, band keys) in the shared index; rows already there
    are kept (two processes may fill in the same past)."""
    rows = [{"band_key": key, "article_id": article_id, "first_seen_at": seen}
            for article_id, seen, keys in indexed for key in keys]
    if rows:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(LshBand).on_conflict_do_nothing(), rows)


def sketches_without_bands(session: Session, since: datetime, after_id: int = 0,
                           limit: int = 1000) -> list[StoredSketch]:
    """Sketches of articles first seen since `since` not in the shared index yet (stored
    before it existed), by id, from `after_id` on, at most `limit`."""
    rows = session.execute(
        select(Article.id, Article.duplicate_of, Article.sketch, Article.first_seen_at)
        .where(Article.id > after_id, Article.first_seen_at >= since,
               Article.sketch.is_not(None),
               ~exists().where(LshBand.article_id == Article.id))
        .order_by(Article.id).limit(limit))
    return [StoredSketch(*row) for row in rows]


def article_text(session: Session, article_id: int) -> str:
    return session.scalar(select(Article.text).where(Article.id == article_id)) or ""


# ---------------------------------------------------------------- queries for the CLI

def list_articles(session: Session, since: datetime | None = None, topic: str | None = None,
                  include_duplicates: bool = False, limit: int | None = None) -> Sequence[Article]:
    query = (select(Article).options(selectinload(Article.sightings),
                                     selectinload(Article.matches),
                                     selectinload(Article.source),
                                     selectinload(Article.copies))
             .order_by(Article.first_seen_at.desc(), Article.id.desc()))
    if not include_duplicates:
        query = query.where(Article.duplicate_of.is_(None))
    if since is not None:
        query = query.where(Article.first_seen_at >= since)
    if topic is not None:
        query = query.where(Article.matches.any(TopicMatch.topic == topic))
    if limit:
        query = query.limit(limit)
    return session.scalars(query).all()


@dataclass(frozen=True)
class StoryRow:
    story: Story
    articles: int  # originals: reports written on their own
    copies: int  # near-copies folded under them
    sources: int  # outlets it was seen at, copies and exact reprints included
    lead_article_id: int | None = None  # see `story_leads`
    languages: tuple[str, ...] = ()  # of its articles and copies, sorted
    triage: str = "unreviewed"  # as shown: see `effective_triage`
    triaged_at: datetime | None = None  # when an analyst last reviewed or dismissed it


# ---------------------------------------------------------------- triage (the reading room)

TRIAGE_STATES = ("unreviewed", "reviewed", "dismissed")


def set_triage(session: Session, story_id: int, state: str, now: datetime,
               seen: int | None = None) -> bool:
    """Mark a story reviewed or dismissed as of `now`; "unreviewed" clears the mark. The
    review covers the story's originals up to `seen` (the highest article id the analyst
    was shown; none: every original stored now): an original with a higher id reopens it.
    → False if there is no such story."""
    if state not in TRIAGE_STATES:
        raise ValueError(f"triage state must be one of {', '.join(TRIAGE_STATES)}")
    story = session.get(Story, story_id)
    if story is None:
        return False
    if state == "unreviewed":
        story.triage = story.triaged_at = story.triage_watermark = None
        return True
    latest = session.scalar(select(func.max(Article.id)).where(
        Article.story_id == story_id, Article.duplicate_of.is_(None)))
    if seen is not None and latest is not None:
        latest = min(latest, seen)
    story.triage, story.triaged_at, story.triage_watermark = state, now, latest
    return True


def effective_triage(stored: str | None, watermark: int | None,
                     latest_original: int | None) -> str:
    """A story's triage as shown, from the mark stored, the watermark stored with it (the
    highest id of its originals then) and the highest id of its originals now (reports
    written on their own, not near-copies). "reviewed" holds until an original with a
    higher id is stored: a follow-up makes the story unreviewed again. Ids, not times: the
    web process's clock need not agree with the crawler's. "dismissed" holds whatever
    follows: the analyst said the story does not matter (`stories reopen` undoes it).
    Computed on read: storing an article writes nothing here. `triage_shown` says the same
    in SQL."""
    if stored == "dismissed":
        return "dismissed"
    if stored == "reviewed" and (latest_original is None or watermark is None
                                 or latest_original <= watermark):
        return "reviewed"
    return "unreviewed"


def latest_original_id(story_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """The highest id of a story's originals, as a correlated subquery
    (ix_articles_story_original)."""
    other = aliased(Article)
    return (select(func.max(other.id))
            .where(other.story_id == story_id, other.duplicate_of.is_(None))
            .scalar_subquery())


def triage_shown(latest_original: ColumnElement[Any] | None = None) -> ColumnElement[str]:
    """`effective_triage` as an SQL expression over `stories`; `latest_original`: the
    highest id of the story's originals (default: `latest_original_id(Story.id)`)."""
    if latest_original is None:
        latest_original = latest_original_id(Story.id)
    return case((Story.triage == "dismissed", "dismissed"),
                (and_(Story.triage == "reviewed",
                      or_(latest_original.is_(None), Story.triage_watermark.is_(None),
                          latest_original <= Story.triage_watermark)), "reviewed"),
                else_="unreviewed")


def triage_clause(state: str,
                  latest_original: ColumnElement[Any] | None = None) -> ColumnElement[bool]:
    """A WHERE clause over `stories`: the story's triage as shown is `state`."""
    if state not in TRIAGE_STATES:
        raise ValueError(f"triage must be one of {', '.join(TRIAGE_STATES)}")
    return triage_shown(latest_original) == state


@dataclass(frozen=True)
class Lead:
    """A story's lead and what followed it: the other originals, their languages and
    outlets (a news search's item counts as the outlet it points to)."""

    article_id: int
    languages: tuple[str, ...]  # of the whole story, copies included
    follow_ups: int
    follow_up_languages: tuple[str, ...]
    follow_up_outlets: tuple[str, ...]


def story_leads(session: Session, story_ids: Collection[int]) -> dict[int, Lead]:
    """The lead of each story: its first report from an official source, else its earliest
    report (published, else first seen); copies never lead. Counted in SQL — a story of
    thousands of reports costs two small result sets, not a row per report — in one
    statement: the stories' articles are read once (a CTE used twice, which SQLite and
    PostgreSQL materialise), ranked for the lead and grouped for the counts."""
    ids = list(story_ids)
    leads: dict[int, Row[Any]] = {}
    groups: dict[int, list[Row[Any]]] = {}
    for start in range(0, len(ids), 500):  # bound the parameters of one statement
        chunk = ids[start:start + 500]
        rows = (select(Article.story_id, Article.id, Article.language,
                       func.coalesce(func.nullif(Article.outlet, ""), Source.name)
                       .label("outlet"),
                       Article.duplicate_of.is_(None).label("original"),
                       Source.official,
                       func.coalesce(Article.published_at, Article.first_seen_at)
                       .label("moment"))
                .join(Source).where(Article.story_id.in_(chunk)).cte("story_rows"))
        place = func.row_number().over(partition_by=rows.c.story_id, order_by=(
            rows.c.official.desc(), rows.c.moment, rows.c.id)).label("place")
        ranked = (select(rows.c.story_id, rows.c.id, rows.c.language, rows.c.outlet, place)
                  .where(rows.c.original).subquery())
        both = union_all(
            select(literal(1).label("lead"), ranked.c.story_id, ranked.c.id,
                   ranked.c.language, ranked.c.outlet, literal(True).label("original"),
                   literal(1).label("n"))
            .where(ranked.c.place == 1),
            select(literal(0), rows.c.story_id, null(), rows.c.language, rows.c.outlet,
                   rows.c.original, func.count())
            .group_by(rows.c.story_id, rows.c.original, rows.c.language, rows.c.outlet))
        for row in session.execute(both):
            if row.lead:
                leads[row.story_id] = row
            else:
                groups.setdefault(row.story_id, []).append(row)
    return {story_id: _lead(lead, groups[story_id]) for story_id, lead in leads.items()}


def _lead(lead: Row[Any], groups: list[Row[Any]]) -> Lead:
    """A story's lead from its (original?, language, outlet) groups: the follow-ups are the
    originals but the lead (one of its language and outlet)."""
    rest = [(row.language, row.outlet,
             row.n - (row.language == lead.language and row.outlet == lead.outlet))
            for row in groups if row.original]
    return Lead(lead.id, _codes(row.language for row in groups), sum(n for *_, n in rest),
                _codes(language for language, _, n in rest if n),
                tuple(sorted({outlet for _, outlet, n in rest if n})))


def _codes(languages: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({language for language in languages if language}))


def with_lead(row: StoryRow, leads: dict[int, Lead]) -> StoryRow:
    lead = leads.get(row.story.id)
    return row if lead is None else replace(row, lead_article_id=lead.article_id,
                                            languages=lead.languages)


def list_stories(session: Session, since: datetime | None = None,
                 limit: int | None = None, *, triage: str | None = None) -> list[StoryRow]:
    """Stories with their counts and triage, most recently active first; `since`: those
    with an article or copy first seen since then; `triage`: those whose triage as shown
    (`effective_triage`) is this one (filtered in the query: `limit` still fills)."""
    if triage is not None and triage not in TRIAGE_STATES:
        raise ValueError(f"triage must be one of {', '.join(TRIAGE_STATES)}")
    counts = (select(Article.story_id,
                     func.count(func.distinct(Article.id)).filter(Article.duplicate_of.is_(None)),
                     func.count(func.distinct(Article.id))
                     .filter(Article.duplicate_of.is_not(None)),
                     func.count(func.distinct(Sighting.source_id)),
                     func.max(Article.first_seen_at).label("latest"),
                     func.max(Article.id).filter(Article.duplicate_of.is_(None))
                     .label("latest_original"))
              .select_from(Article).outerjoin(Sighting).group_by(Article.story_id)
              .subquery())
    shown = triage_shown(counts.c.latest_original)
    query = (select(Story, counts.c[1], counts.c[2], counts.c[3], shown)
             .join(counts, counts.c.story_id == Story.id)
             .order_by(Story.last_seen_at.desc(), Story.id.desc()))
    if since is not None:
        query = query.where(counts.c.latest >= since)
    if triage is not None:
        query = query.where(triage_clause(triage, counts.c.latest_original))
    if limit:
        query = query.limit(limit)
    rows = [StoryRow(story, originals, copies, sources, triage=state,
                     triaged_at=story.triaged_at)
            for story, originals, copies, sources, state in session.execute(query)]
    leads = story_leads(session, [row.story.id for row in rows])
    return [with_lead(row, leads) for row in rows]


def get_story(session: Session, story_id: int) -> tuple[StoryRow, list[Article]] | None:
    """A story with its counts and its articles, originals and copies: its lead first, the
    others oldest first."""
    story = session.get(Story, story_id)
    if story is None:
        return None
    articles = session.scalars(
        select(Article).where(Article.story_id == story_id)
        .options(selectinload(Article.sightings).selectinload(Sighting.source),
                 selectinload(Article.matches), selectinload(Article.source))
        .order_by(Article.first_seen_at, Article.id)).all()
    sources = {s.source_id for a in articles for s in a.sightings}
    originals = sum(a.duplicate_of is None for a in articles)
    latest = max((a.id for a in articles if a.duplicate_of is None), default=None)
    row = with_lead(StoryRow(story, originals, len(articles) - originals, len(sources),
                             triage=effective_triage(story.triage, story.triage_watermark,
                                                     latest),
                             triaged_at=story.triaged_at),
                    story_leads(session, [story_id]))
    return row, sorted(articles, key=lambda a: a.id != row.lead_article_id)


def story_links(session: Session, article_ids: Collection[int]) -> dict[int, StoryLink]:
    """Why each of these articles joined its story, by article id (none: it began it)."""
    links = session.scalars(select(StoryLink).where(StoryLink.article_id.in_(article_ids)))
    return {link.article_id: link for link in links}


def get_article(session: Session, article_id: int) -> Article | None:
    return session.get(Article, article_id, options=[selectinload(Article.sightings)
                                                     .selectinload(Sighting.source),
                                                     selectinload(Article.matches),
                                                     selectinload(Article.copies),
                                                     selectinload(Article.story),
                                                     selectinload(Article.versions)
                                                     .selectinload(ArticleVersion.capture)])


def originals_since(session: Session, since: datetime | None,
                    up_to: int | None = None) -> Iterator[Article]:
    """Every stored article that is not a duplicate (first seen since `since`, up to
    article id `up_to`), oldest first, streamed."""
    query = (select(Article).options(selectinload(Article.source))
             .where(Article.duplicate_of.is_(None)).order_by(Article.id))
    if since is not None:
        query = query.where(Article.first_seen_at >= since)
    if up_to is not None:
        query = query.where(Article.id <= up_to)
    yield from session.scalars(query.execution_options(yield_per=500))


def last_article_id(session: Session) -> int:
    return session.scalar(select(func.max(Article.id))) or 0


def matched_pairs(session: Session, topics: Collection[str]) -> set[tuple[int, str]]:
    """(article id, topic) of every match recorded for these topics."""
    rows = session.execute(select(TopicMatch.article_id, TopicMatch.topic)
                           .where(TopicMatch.topic.in_(topics)))
    return {(article_id, topic) for article_id, topic in rows}


def topic_fingerprints(session: Session) -> dict[str, str]:
    """What each topic matched when its stored articles were last matched."""
    rows = session.execute(select(TopicState.topic, TopicState.fingerprint))
    return {topic: fingerprint for topic, fingerprint in rows}


def forget_topics(session: Session, keep: Collection[str]) -> None:
    """Forget the past matching of topics no longer configured: re-added, they match again."""
    session.execute(delete(TopicState).where(TopicState.topic.not_in(keep)))


def remember_topic(session: Session, topic: str, fingerprint: str, now: datetime) -> None:
    state = session.get(TopicState, topic)
    if state is None:
        session.add(TopicState(topic=topic, fingerprint=fingerprint, matched_at=now))
    else:
        state.fingerprint, state.matched_at = fingerprint, now


def topic_hits(session: Session, since: datetime) -> dict[str, int]:
    """Articles matched per topic, first seen since `since`."""
    rows = session.execute(select(TopicMatch.topic, func.count(TopicMatch.id))
                           .join(Article).where(Article.first_seen_at >= since)
                           .group_by(TopicMatch.topic))
    return {topic: count for topic, count in rows}


def list_alerts(session: Session, status: str | None = None, topic: str | None = None,
                limit: int = 100) -> Sequence[Alert]:
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if status:
        query = query.where(Alert.status == status)
    if topic:
        query = query.where(Alert.topic == topic)
    return session.scalars(query).all()


def requeue_alert(session: Session, alert_id: int, now: datetime) -> bool:
    alert = session.get(Alert, alert_id)
    if alert is None or alert.status not in ("failed", "pending"):
        return False
    alert.status, alert.next_attempt_at = "pending", now
    return True


def snooze(session: Session, topic: str, until: datetime, now: datetime) -> None:
    """Hold a topic's alerts until `until`; a time not in the future ends the snooze and
    releases the alerts it held."""
    if until > now:
        session.merge(Snooze(topic=topic, until=until))
        return
    existing = session.get(Snooze, topic)
    if existing is not None:
        session.delete(existing)
    session.execute(update(Alert).where(Alert.topic == topic, Alert.status == "pending",
                                        Alert.next_attempt_at > now)
                    .values(next_attempt_at=now))


def hold_channel(session: Session, channel: str, until: datetime, reason: str) -> None:
    """Send nothing to `channel` before `until` (a later hold already set is kept): one
    statement, so two dispatchers holding the channel at once both succeed."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    row = dialect.insert(ChannelWait).values(channel=channel, until=until, reason=reason)
    session.execute(row.on_conflict_do_update(
        index_elements=[ChannelWait.channel], where=ChannelWait.until < row.excluded.until,
        set_={"until": row.excluded.until, "reason": row.excluded.reason}))


def channel_wait(session: Session, channel: str, now: datetime) -> ChannelWait | None:
    """The hold on `channel` if it lasts beyond `now`."""
    wait = session.get(ChannelWait, channel)
    return wait if wait is not None and wait.until > now else None


def sightings_count(article: Article) -> int:
    return len({(s.source_id, s.url) for s in article.sightings})
