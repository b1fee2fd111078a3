"""The value types of config.yaml: durations, schedules, names, CSS selectors, web URLs,
languages, times of day and zones. Each check raises `ValueError` saying what to write."""
from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
)

from basis.languages import language_code
from basis.urls import WEB_SCHEMES, check_url

SLUG = r"^[a-z0-9][a-z0-9-]*$"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


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
    check_url(text, WEB_SCHEMES, "URL scheme must be http or https, not {scheme!r}")
    return text


def _queue_url(value: Any) -> str:
    text = str(value).strip()
    check_url(text, ("redis", "rediss"), "URL scheme must be redis or rediss (TLS), not "
                                         "{scheme!r}, e.g. redis://127.0.0.1:6379/0")
    return text


def unique(values: tuple[str, ...]) -> tuple[str, ...]:
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
QueueUrl = Annotated[str, BeforeValidator(_queue_url)]
Slug = Annotated[str, Field(pattern=SLUG, max_length=64)]
Names = Annotated[tuple[str, ...], AfterValidator(unique)]
Css = Annotated[str, BeforeValidator(_css)]
Language = Annotated[str, AfterValidator(language_code)]



def clock_time(value: Any) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"invalid time of day {value!r}: use HH:MM, e.g. '22:30'") from None


def zone_name(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as "
                         "'Europe/Berlin' or 'Asia/Shanghai'") from None
    return str(value)
