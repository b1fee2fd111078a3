"""The database schema: sources and their crawl state, articles with their sightings,
stories, topic matches, the alert outbox and crawl runs. Times are timezone-aware UTC."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from basis.clock import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns an aware datetime (SQLite drops the zone, PostgreSQL keeps it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; mediawatch stores aware UTC times only")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None \
            else value.astimezone(timezone.utc)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(String(64))
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_warning: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # Retry-After
    reported_health: Mapped[str | None] = mapped_column(String(16))  # told the operator
    official: Mapped[bool] = mapped_column(default=False, server_default=false())


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    headline: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # an analyst's verdict (the reading room, `stories review|dismiss`): "reviewed" or
    # "dismissed", and when (information only); none: unreviewed. `triage_watermark`: the
    # highest id of the story's originals the analyst had seen then — an original with a
    # higher id is a follow-up since (ids, not clocks: the web's clock is not the
    # crawler's). As shown, see repository.effective_triage.
    triage: Mapped[str | None] = mapped_column(String(16))
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    triage_watermark: Mapped[int | None] = mapped_column(Integer)


class Capture(Base):
    """The exact bytes of one response an article was read from (its page, or the feed that
    carried it), kept as evidence: zlib-compressed, with its headers and fetch time. One
    row per distinct body at a URL: a feed read for many articles is kept once."""

    __tablename__ = "captures"
    __table_args__ = (UniqueConstraint("sha256", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))  # of the raw body
    url: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[list[Any]] = mapped_column(JSON)  # [[name, value], …] as received
    size: Mapped[int] = mapped_column(Integer)  # of the raw body
    body: Mapped[bytes] = mapped_column(LargeBinary)  # zlib


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    canonical_url: Mapped[str] = mapped_column(Text, unique=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(16))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_is_estimated: Mapped[bool] = mapped_column(default=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    text_hash: Mapped[str] = mapped_column(String(64), index=True)
    sketch: Mapped[bytes | None] = mapped_column(LargeBinary)  # MinHash state, for dedupe
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"))  # indexes: below
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    title_key: Mapped[str | None] = mapped_column(String(200), index=True)  # folded headline
    outlet: Mapped[str | None] = mapped_column(String(200))  # a news-search item's <source>
    capture_id: Mapped[int | None] = mapped_column(ForeignKey("captures.id"), index=True)
    # an official statement, fetched again for edits and deletions (crawler.stages.recheck)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    etag: Mapped[str | None] = mapped_column(Text)  # validators of its page's last fetch
    last_modified: Mapped[str | None] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its page went away
    gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a first "gone": asked again

    source: Mapped[Source] = relationship()
    story: Mapped[Story | None] = relationship()
    capture: Mapped[Capture | None] = relationship()
    copies: Mapped[list[Article]] = relationship(order_by="Article.id")  # near-duplicates
    sightings: Mapped[list[Sighting]] = relationship(
        back_populates="article", order_by="Sighting.id", cascade="all, delete-orphan")
    matches: Mapped[list[TopicMatch]] = relationship(
        back_populates="article", order_by="TopicMatch.topic", cascade="all, delete-orphan")
    versions: Mapped[list[ArticleVersion]] = relationship(
        order_by="ArticleVersion.version", cascade="all, delete-orphan")


class ArticleVersion(Base):
    """One version of a re-checked statement's text: version 1 is what was first stored,
    each material edit found later adds one (the article row holds the latest)."""

    __tablename__ = "article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sha: Mapped[str] = mapped_column(String(64))  # SHA-256 of the text (UTF-8)
    capture_id: Mapped[int | None] = mapped_column(ForeignKey("captures.id"))  # bytes read

    capture: Mapped[Capture | None] = relationship()


class StoryLink(Base):
    """Why a report joined its story: the earlier report it was compared with and the
    evidence they share (figures, dates, concepts, names; see crawler.stages.stories)."""

    __tablename__ = "story_links"

    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), primary_key=True)
    linked_article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    evidence: Mapped[list[str]] = mapped_column(JSON)
    score: Mapped[float]


class Sighting(Base):
    """One URL at one source where an article was seen."""

    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("article_id", "source_id", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    url: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    article: Mapped[Article] = relationship(back_populates="sightings")
    source: Mapped[Source] = relationship()


Index("ix_sightings_url", Sighting.url)
# the reading room's (migration 0012): each serves the reads of the narrower one it replaced
Index("ix_articles_window", Article.first_seen_at, Article.story_id, Article.source_id,
      Article.language)
Index("ix_articles_original_seen", Article.duplicate_of, Article.first_seen_at)
Index("ix_articles_story_original", Article.story_id, Article.duplicate_of,
      Article.first_seen_at)


class LshBand(Base):
    """One LSH band of an article's MinHash (`crawler.stages.dedupe.band_keys`): on
    PostgreSQL, the near-duplicate index every process shares instead of holding all recent
    sketches in memory. A new article's candidates are the articles sharing a band key."""

    __tablename__ = "lsh_bands"

    band_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"),
                                            primary_key=True, index=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the article's


class TopicMatch(Base):
    __tablename__ = "topic_matches"
    __table_args__ = (UniqueConstraint("article_id", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    topic: Mapped[str] = mapped_column(String(64))  # indexed with article_id: below
    highlights: Mapped[list[Any]] = mapped_column(JSON, default=list)
    matched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    article: Mapped[Article] = relationship(back_populates="matches")


Index("ix_topic_matches_topic_article", TopicMatch.topic, TopicMatch.article_id)


class Alert(Base):
    """The outbox: one row per (topic, story, channel) — plus one per batch of updates —
    written with the match, delivered by the dispatcher. An operator alert (kind
    "operator") has no article: its message is in `details`; nor has a statement alert
    (kind "edited" or "removed") any batch: its diff or archived copy is in `details`."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="new")  # new|update|digest|operator
    topic: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"))
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # an operator alert's message

    article: Mapped[Article | None] = relationship()
    story: Mapped[Story | None] = relationship()
    batch: Mapped[list[AlertArticle]] = relationship(order_by="AlertArticle.id",
                                                     cascade="all, delete-orphan")


Index("ix_alerts_due", Alert.status, Alert.next_attempt_at)


class AlertArticle(Base):
    """The articles an update alert reports (the first article of a new alert is
    `Alert.article`)."""

    __tablename__ = "alert_articles"
    __table_args__ = (UniqueConstraint("alert_id", "article_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))

    article: Mapped[Article] = relationship()


class TopicState(Base):
    """A topic whose stored articles were matched: what it matched (a hash of its compiled
    query, languages and sources) and when. A topic new or changed since is matched again."""

    __tablename__ = "topic_states"

    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    matched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Snooze(Base):
    """A topic whose alerts wait until `until`."""

    __tablename__ = "snoozes"

    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelWait(Base):
    """A channel that asked us to wait (Retry-After): nothing is sent to it before `until`."""

    __tablename__ = "channel_waits"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class CrawlRun(Base):
    """One poll of one source."""

    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # ok | warning | failed | unchanged
    http_status: Mapped[int | None] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[int] = mapped_column(Integer, default=0)
    new_articles: Mapped[int] = mapped_column(Integer, default=0)
    known: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    error_class: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
