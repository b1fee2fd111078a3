"""config.yaml → validated, typed, immutable objects (the config contract in DESIGN.md).

Every mistake becomes a `ConfigError` whose lines name the path (`sources[2].every`) and
never echo a value that may carry a secret.
"""
from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from apscheduler.triggers.cron import CronTrigger
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
    ValidationError,
)

from alerts.query import QuerySyntaxError, parse_query
from basis.languages import language_code
from basis.secrets import Redactor, url_secrets
from basis.urls import check_url
from crawler.endpoints import apprise_url, email_address, secret_url, smtp_url

DEFAULT_PATH = Path("config.yaml")
SLUG = r"^[a-z0-9][a-z0-9-]*$"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """One or more mistakes in the configuration, each `(path, message)`."""

    def __init__(self, issues: list[tuple[str, str]], file: str = "config") -> None:
        self.issues = issues
        self.file = file  # "" when the mistake is not in a file (a name on the command line)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [": ".join(part for part in (self.file, path, msg) if part)
                for path, msg in self.issues]


# ---------------------------------------------------------------- value types

def parse_duration(text: str) -> timedelta:
    """`30s`, `10m`, `2h`, `1d` → timedelta."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"invalid duration {text!r}: use a positive number with s, m, h or d "
                         "(30s, 10m, 2h, 1d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def is_duration(schedule: str) -> bool:
    """Whether a schedule is a duration (`10m`) rather than a cron expression."""
    return bool(_DURATION.match(schedule))


def _schedule(value: Any) -> str:
    text = str(value).strip()
    if _DURATION.match(text):
        parse_duration(text)
        return text
    if len(text.split()) != 5:
        raise ValueError(f"invalid schedule {text!r}: use a duration (30s, 10m, 2h, 1d) "
                         "or a 5-field cron expression ('*/15 * * * *')")
    return _cron(text)


def _cron(value: Any) -> str:
    text = str(value).strip()
    try:
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {text!r}: {exc}") from None
    return text


def _web_url(value: Any) -> str:
    text = str(value).strip()
    check_url(text, ("http", "https"), "URL scheme must be http or https, not {scheme!r}")
    return text


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _css(value: Any) -> str:
    from cssselect import GenericTranslator, SelectorError

    try:
        GenericTranslator().css_to_xpath(str(value))
    except SelectorError as exc:
        raise ValueError(f"invalid CSS selector {value!r}: {exc}") from None
    return str(value)


Duration = Annotated[timedelta, BeforeValidator(lambda v: v if isinstance(v, timedelta)
                                                else parse_duration(v))]
Schedule = Annotated[str, BeforeValidator(_schedule)]
Cron = Annotated[str, BeforeValidator(_cron)]
WebUrl = Annotated[str, BeforeValidator(_web_url)]
Slug = Annotated[str, Field(pattern=SLUG, max_length=64)]
Names = Annotated[tuple[str, ...], AfterValidator(_unique)]
Css = Annotated[str, BeforeValidator(_css)]
Language = Annotated[str, AfterValidator(language_code)]
EmailAddress = Annotated[str, AfterValidator(email_address)]


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


def _clock(value: Any) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"invalid time of day {value!r}: use HH:MM, e.g. '22:30'") from None


def _zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as "
                         "'Europe/Berlin' or 'Asia/Shanghai'") from None
    return str(value)


class QuietHours(Model):
    """Alerts that fall between `start` and `end` (local time) wait until `end`."""

    start: Annotated[time, BeforeValidator(_clock)]
    end: Annotated[time, BeforeValidator(_clock)]
    timezone: Annotated[str, BeforeValidator(_zone)] = "UTC"

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
    languages: Annotated[tuple[Language, ...], AfterValidator(_unique)] = ()
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
            raise ConfigError([("", f"no source named {', '.join(map(repr, missing))} "
                                    f"(known: {', '.join(sorted(known)) or 'none'})")], file="")
        return [s for s in self.sources if not names or s.name in names]


# ---------------------------------------------------------------- loading

def load_config(path: str | Path = DEFAULT_PATH, env: Mapping[str, str] | None = None) -> Config:
    """Read, expand `${VAR}`, validate and cross-check a config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("", f"cannot read {path}: {exc.strerror}")], str(path)) from None
    return parse_config(text, env=os.environ if env is None else env, file=str(path))


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key written twice in one mapping: PyYAML would keep the
    last one and silently drop the first (a whole `sources:` block, a channel)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: later keys override merged ones on purpose
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, typing.Hashable):
                continue  # the base constructor refuses it
            if key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line "
                                f"{first[key].start_mark.line + 1}); keep only one",
                    key_node.start_mark)
            first[key] = key_node
        return super().construct_mapping(node, deep)


def parse_config(text: str, env: Mapping[str, str], file: str = "config") -> Config:
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 — a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([("", f"invalid YAML: {where}{exc.problem or exc.context}")],
                          file) from None
    except yaml.YAMLError as exc:
        raise ConfigError([("", f"invalid YAML: {exc}")], file) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([("", "the top level must be a mapping of keys")], file)
    issues: list[tuple[str, str]] = []
    from_env: set[str] = set()
    raw = _expand_env(raw, env, "", issues, from_env)
    if issues:
        raise ConfigError(issues, file)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_describe(err) for err in exc.errors()], file) from None
    issues = list(_cross_check(config))
    if issues:
        raise ConfigError(issues, file)
    config._from_env = frozenset(from_env)
    return config


def _expand_env(node: Any, env: Mapping[str, str], path: str,
                issues: list[tuple[str, str]], used: set[str]) -> Any:
    """`node` with each `${VAR}` replaced by its value, which is added to `used`."""
    if isinstance(node, dict):
        return {k: _expand_env(v, env, _join(path, k), issues, used) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, env, f"{path}[{i}]", issues, used) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            issues.append((path, f"environment variable {name} is not set "
                                 f"(export {name}=… before running)"))
            return ""
        used.add(env[name])
        return env[name]
    return _ENV_REF.sub(substitute, node)


def _cross_check(config: Config) -> Iterator[tuple[str, str]]:
    names: dict[str, int] = {}
    for i, source in enumerate(config.sources):
        if source.name in names:
            yield (f"sources[{i}].name", f"duplicate source name {source.name!r} "
                                         f"(also sources[{names[source.name]}])")
        names.setdefault(source.name, i)
        if source.kind == "listing" and not source.links:
            yield (f"sources[{i}].links", "a listing source needs a CSS selector in 'links'")
    for key in config.channels:
        if not re.match(SLUG, key):
            yield (f"channels.{key}", "channel names use lowercase letters, digits and '-'")
    selectors = set(names) | {tag for s in config.sources for tag in s.tags}
    seen_topics: set[str] = set()
    for i, topic in enumerate(config.topics):
        if topic.name in seen_topics:
            yield (f"topics[{i}].name", f"duplicate topic name {topic.name!r}")
        seen_topics.add(topic.name)
        try:
            parse_query(topic.query, config.aliases)
        except QuerySyntaxError as exc:
            caret = "\n".join("    " + line for line in exc.caret().splitlines())
            yield (f"topics[{i}].query", f"topic {topic.name!r}: {exc}\n{caret}")
        for ref in topic.sources:
            if ref not in selectors:
                yield (f"topics[{i}].sources", f"no source or tag named {ref!r}"
                                               f"{_suggest(ref, selectors)}")
        for ref in topic.channels:
            if ref not in config.channels:
                yield (f"topics[{i}].channels", f"no channel named {ref!r}"
                                                f"{_suggest(ref, config.channels)}")
    for ref in config.operator_channels:
        if ref not in config.channels:
            yield ("operator_channels", f"no channel named {ref!r}"
                                        f"{_suggest(ref, config.channels)}")


# ---------------------------------------------------------------- error messages

def _describe(error: Any) -> tuple[str, str]:
    loc = _strip_channel_tag(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        where = _path(loc[:-1])
        return where, f"unknown key {key!r}{_suggest(key, _known_keys(loc[:-1]))}"
    if kind == "missing":
        return _path(loc[:-1]), f"required key {loc[-1]!r} is missing"
    if kind == "union_tag_invalid":
        tag = str(error["ctx"]["tag"])
        return _path(loc + ("type",)), (f"unknown channel type {tag!r}"
                                        f"{_suggest(tag, CHANNEL_TYPES)}; "
                                        f"use one of {', '.join(CHANNEL_TYPES)}")
    if error.get("input", "") is None:
        return _path(loc), "is empty: give it a value or remove the key"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        message = "use lowercase letters, digits and '-' (e.g. 'mss-statements')"
    elif kind in ("tuple_type", "list_type"):
        message = "should be a list, e.g. [a, b] (or one item per line, each after '- ')"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = "should be a mapping of keys (key: value, one per line, indented)"
    return _path(loc), message


def _strip_channel_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic adds the union tag to the path (`channels.desk.email.url`); drop it."""
    if len(loc) > 2 and loc[0] == "channels" and loc[2] in CHANNEL_TYPES:
        return loc[:2] + loc[3:]
    return loc


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else _join(out, str(part))
    return out


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _suggest(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known_keys(loc: tuple[Any, ...]) -> set[str]:
    """The keys allowed at `loc`, found by walking the model classes."""
    types_here: list[Any] = [Config]
    for part in loc:
        types_here = [inner for t in types_here for inner in _children(t, part)]
    keys: set[str] = set()
    for t in types_here:
        if isinstance(t, type) and issubclass(t, BaseModel):
            keys |= {f.alias or name for name, f in t.model_fields.items()}
    return keys


def _children(annotation: Any, part: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        by_alias = {f.alias or n: f.annotation for n, f in annotation.model_fields.items()}
        return _flatten(by_alias[part]) if part in by_alias else []
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple and args:
        return _flatten(args[0])
    if origin in (dict, Mapping) or (origin and getattr(origin, "__name__", "") == "Mapping"):
        return _flatten(args[1]) if len(args) == 2 else []
    return []


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _flatten(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _flatten(arg)]
    return [annotation]
