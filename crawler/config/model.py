"""The config contract (DESIGN.md) as validated, typed, immutable objects."""
from __future__ import annotations

import typing
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Annotated, Literal, Union
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
    SecretStr,
)

from basis.errors import NotFound
from basis.secrets import Redactor, url_secrets
from crawler.config.values import (
    Cron,
    Css,
    Duration,
    EmailAddress,
    Language,
    Names,
    Schedule,
    Slug,
    WebUrl,
    clock_time,
    unique,
    zone_name,
)
from crawler.endpoints import apprise_url, secret_url, smtp_url

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
    poll_deadline: Duration = timedelta(minutes=5)  # run: a poll still going is given up


class DedupeSettings(Model):
    threshold: float = Field(0.4, gt=0, le=1)  # MinHash similarity of a near-copy
    retention: Duration = timedelta(days=30)   # how far back copies are looked for
    story_window: Duration = timedelta(days=3)  # how far back a story is looked for


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
    update_window: Duration = timedelta(hours=24)
    min_sources: PositiveInt = 1
    quiet_hours: QuietHours | None = None


class EmailChannel(Model):
    type: Literal["email"]
    url: Annotated[SecretStr, AfterValidator(secret_url("smtp", "smtps")),
                   AfterValidator(smtp_url)]
    sender: EmailAddress = Field(alias="from")
    to: Annotated[tuple[EmailAddress, ...], Field(min_length=1)]


class SlackChannel(Model):
    type: Literal["slack"]
    webhook: Annotated[SecretStr, AfterValidator(secret_url("http", "https"))]


class AppriseChannel(Model):
    type: Literal["apprise"]
    url: Annotated[SecretStr, AfterValidator(apprise_url)]


class JsonlChannel(Model):
    type: Literal["jsonl"]
    path: str


class ConsoleChannel(Model):
    type: Literal["console"]


Channel = Annotated[
    Union[EmailChannel, SlackChannel, AppriseChannel, JsonlChannel, ConsoleChannel],
    Field(discriminator="type"),
]
CHANNEL_TYPES = ("email", "slack", "apprise", "jsonl", "console")


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
    channels: Mapping[str, Channel] = Field(default_factory=dict)
    operator_channels: Names = ()  # where source-health alerts go
    digest: Digest = Digest()
    _from_env: frozenset[str] = PrivateAttr(frozenset())  # values `${VAR}` brought in

    @property
    def secrets(self) -> set[str]:
        """What never leaves the process: every value taken from the environment (a token
        in a source URL) and the secret parts of the channel URLs."""
        found = set(self._from_env)
        for channel in self.channels.values():
            for field in ("url", "webhook"):
                if isinstance(secret := getattr(channel, field, None), SecretStr):
                    found |= url_secrets(secret.get_secret_value())
        return found

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
