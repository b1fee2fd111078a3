"""What the models alone cannot check (references between sections, duplicate names,
queries), and every mistake described as `(path, message)` in words a user can act on."""
from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
)

from alerts.channels.settings import CHANNEL_TYPES
from alerts.query import QuerySyntaxError, parse_query
from crawler.config.model import Config
from crawler.config.values import SLUG


def cross_check(config: Config) -> Iterator[tuple[str, str]]:
    if "database" in config.model_fields_set and (problem := config.queue_problem()):
        yield ("queue", problem)  # (a database from --db or MEDIAWATCH_DB: checked by `run`)
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
                                               f"{suggestion(ref, selectors)}")
        for ref in topic.channels:
            if ref not in config.channels:
                yield (f"topics[{i}].channels", f"no channel named {ref!r}"
                                                f"{suggestion(ref, config.channels)}")
    for ref in config.operator_channels:
        if ref not in config.channels:
            yield ("operator_channels", f"no channel named {ref!r}"
                                        f"{suggestion(ref, config.channels)}")




def describe(error: Any) -> tuple[str, str]:
    loc = _strip_channel_tag(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        where = _path(loc[:-1])
        return where, f"unknown key {key!r}{suggestion(key, _known_keys(loc[:-1]))}"
    if kind == "missing":
        return _path(loc[:-1]), f"required key {loc[-1]!r} is missing"
    if kind == "union_tag_invalid":
        tag = str(error["ctx"]["tag"])
        return _path(loc + ("type",)), (f"unknown channel type {tag!r}"
                                        f"{suggestion(tag, CHANNEL_TYPES)}; "
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
        out = f"{out}[{part}]" if isinstance(part, int) else join_path(out, str(part))
    return out


def join_path(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def suggestion(word: str, candidates: Any) -> str:
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
