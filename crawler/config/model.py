"""The config contract (DESIGN.md) as validated, typed, immutable objects."""
from __future__ import annotations

import typing
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
)

from alerts.channels.settings import AnyChannelSettings
from alerts.dispatcher import Controls
from alerts.outbox import UPDATE_WINDOW, AlertPolicy
from alerts.query import query_warnings
from basis.errors import NotFound
from basis.secrets import Redactor
from crawler.config.values import (
    Cron,
    Css,
    Duration,
    Language,
    Names,
    QueueUrl,
    Schedule,
    Slug,
    WebUrl,
    clock_time,
    unique,
    zone_name,
)
from crawler.stages import dedupe, stories

# ---------------------------------------------------------------- the contract

class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CrawlSettings(Model):
    user_agent: str = "mediawatch/0.1 (+https://example.org/mediawatch)"
    obey_robots: bool = True
    timeout: PositiveFloat = 20.0
    max_bytes: PositiveInt = 10_000_000
    concurrency: PositiveInt = 16
    per_domain: PositiveInt = 2
    backfill: Duration = timedelta(days=2)
    allow_private: bool = False
    verify_tls: bool = True  # TLS certificates checked against the system's CA store
    poll_deadline: Duration = timedelta(minutes=5)  # run: a poll still going is given up


class DedupeSettings(Model):
    threshold: float = Field(dedupe.THRESHOLD, gt=0, le=1)  # MinHash similarity of a copy
    retention: Duration = dedupe.RETENTION  # how far back copies are looked for
    story_window: Duration = stories.WINDOW  # how far back a story is looked for


class DaemonSettings(Model):
    """`mediawatch run` only."""

    dispatch_every: Duration = timedelta(seconds=5)  # pending alerts are delivered this often
    health_every: Duration = timedelta(minutes=15)  # every source's health is checked this
    #                 often (silence is measured in hours; failures after each poll too)
    startup_spread: Duration = timedelta(seconds=20)  # first polls of new or overdue sources
    #                 are spread over this (or the interval, if shorter) after start or reload
    recheck_every: Duration = timedelta(minutes=5)  # statements due are re-checked this often


class ArchiveSettings(Model):
    """The bytes each stored article was read from, kept as evidence (`archive: false`: none)."""

    retention: Duration = timedelta(days=365)


class WebSettings(Model):
    """The reading room: the web pages of `run --listen` and `mediawatch web`."""

    token: Annotated[str, Field(min_length=16)] | None = None  # sign-in secret, from the
    #                 environment; the pages are served beyond loopback only with one
    base_url: WebUrl | None = None  # where the pages are reached: alerts link to them

    def story_url(self, story_id: int) -> str | None:
        """The story's page, for alerts (none without `base_url`)."""
        return f"{self.base_url.rstrip('/')}/stories/{story_id}" if self.base_url else None


def _archive(value: object) -> object:
    """`archive: false` turns the archive off; `true` or an empty `archive:` keeps defaults."""
    return None if value is False else {} if value is True or value is None else value


class Source(Model):
    name: Slug
    kind: Literal["feed", "sitemap", "listing", "page"]
    url: WebUrl
    every: Schedule = "15m"
    language: Language | None = None
    follow: bool = True
    links: Css | None = None
    next_page: Css | None = None
    max_pages: PositiveInt = 5
    tags: Names = ()
    expect_every: Duration | None = None  # silent longer than this: tell the operator
    verify_tls: bool = True  # false: its host's certificate is not checked (warned)
    official: bool = False  # its version of a story is the original (see README)
    recheck: bool = True  # official: its articles are fetched again for edits and deletions



class QuietHours(Model):
    """Alerts that fall between `start` and `end` (local time) wait until `end`."""

    start: Annotated[time, BeforeValidator(clock_time)]
    end: Annotated[time, BeforeValidator(clock_time)]
    timezone: Annotated[str, BeforeValidator(zone_name)] = "UTC"

    def until(self, moment: datetime) -> datetime | None:
        """When the quiet period that `moment` falls in ends; None if it is not quiet."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        now, start, end = local.time(), self.start, self.end
        quiet = start <= now < end if start <= end else (now >= start or now < end)
        if not quiet:
            return None
        ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        return (ends if ends > local else ends + timedelta(days=1)).astimezone(moment.tzinfo)


class Topic(Model):
    name: Slug
    query: Annotated[str, Field(min_length=1)]
    languages: Annotated[tuple[Language, ...], AfterValidator(unique)] = ()
    sources: Names = ()
    channels: Names = ()
    mode: Literal["instant", "digest"] = "instant"
    update_window: Duration = UPDATE_WINDOW
    min_sources: PositiveInt = 1
    quiet_hours: QuietHours | None = None


class Digest(Model):
    cron: Cron = "0 8 * * *"


def _database(url: str) -> str:
    from storage.db import check_url  # here: alembic loads only when a config does

    return check_url(url.strip())


class Config(Model):
    database: Annotated[str, AfterValidator(_database)] = "sqlite:///mediawatch.db"
    crawl: CrawlSettings = CrawlSettings()
    dedupe: DedupeSettings = DedupeSettings()
    sources: tuple[Source, ...] = ()
    aliases: Mapping[str, Annotated[tuple[str, ...], Field(min_length=1)]] = \
        Field(default_factory=dict)
    topics: tuple[Topic, ...] = ()
    channels: Mapping[str, AnyChannelSettings] = Field(default_factory=dict)
    operator_channels: Names = ()  # where source-health alerts go
    digest: Digest = Digest()
    daemon: DaemonSettings = DaemonSettings()
    archive: Annotated[ArchiveSettings | None, BeforeValidator(_archive)] = ArchiveSettings()
    web: WebSettings = WebSettings()
    queue: QueueUrl | None = None  # Redis, `redis://127.0.0.1:6379/0`: the daemons on one
    #                 PostgreSQL database share its polls (`run` joins, one leads); SQLite: unset
    _from_env: frozenset[str] = PrivateAttr(frozenset())  # values `${VAR}` brought in

    @property
    def secrets(self) -> set[str]:
        """What never leaves the process: every value taken from the environment (a token
        in a source URL), the web token, the queue's password and the secret parts of the
        channel URLs."""
        web = {self.web.token} if self.web.token else set()
        queue = {urlsplit(self.queue).password or ""} - {""} if self.queue else set()
        return set(self._from_env).union(web, queue,
                                         *(c.secrets() for c in self.channels.values()))

    def queue_problem(self) -> str | None:
        """Why `queue` cannot be used with `database`, if it cannot (checked again when
        `--db` or MEDIAWATCH_DB replaces the database)."""
        if self.queue is None or self.database.startswith("postgresql"):
            return None
        return ("needs a PostgreSQL database: the daemons of one deployment share it (and "
                "elect their leader with its advisory lock); SQLite is for one daemon — "
                "remove `queue` or set `database: postgresql+psycopg://…`")

    def channel_warnings(self) -> list[str]:
        """Legal but worth a second look: an unusual Slack host, a password sent in clear."""
        return [f"channels.{name}.{warning}" for name, channel in self.channels.items()
                for warning in channel.warnings()]

    @property
    def archive_retention(self) -> timedelta:
        """How long archived bytes are kept; with `archive: false`, those kept before go
        after the default."""
        return (self.archive or ArchiveSettings()).retention

    def verifies_tls(self, source: Source) -> bool:
        return self.crawl.verify_tls and source.verify_tls

    def tls_warnings(self) -> list[str]:
        """Where TLS certificates go unchecked: legal, and worth a warning each time."""
        forged = "anyone on the path could forge what it serves"
        if not self.crawl.verify_tls:
            return [f"crawl.verify_tls: false: no TLS certificate is checked; {forged}"]
        return [f"sources[{i}].verify_tls: false: the TLS certificate of "
                f"{urlsplit(s.url).hostname} is not checked; {forged}"
                for i, s in enumerate(self.sources) if not s.verify_tls]

    def query_warnings(self) -> list[str]:
        """Queries that search operator words in lower case (`spy and students`)."""
        return [f"topics[{i}].query: topic {topic.name!r}: {warning}"
                for i, topic in enumerate(self.topics) for warning in query_warnings(topic.query)]

    def alert_policies(self) -> dict[str, AlertPolicy]:
        """How each topic alerts: its channels, mode and update window."""
        return {t.name: AlertPolicy(t.channels, t.mode, t.update_window) for t in self.topics}

    def alert_controls(self) -> dict[str, Controls]:
        """What may hold each topic's alerts back: `min_sources`, quiet hours."""
        return {t.name: Controls(t.min_sources, t.quiet_hours.until if t.quiet_hours
                                 else Controls().quiet_until) for t in self.topics}

    def redactor(self) -> Redactor:
        """Masks `secrets` in text, JSON documents and log records."""
        return Redactor(self.secrets)

    def select_sources(self, names: typing.Sequence[str]) -> list[Source]:
        """The named sources, in config order; all of them when no name is given."""
        known = {s.name for s in self.sources}
        missing = [n for n in names if n not in known]
        if missing:
            raise NotFound(f"no source named {', '.join(map(repr, missing))} "
                           f"(known: {', '.join(sorted(known)) or 'none'})")
        return [s for s in self.sources if not names or s.name in names]
