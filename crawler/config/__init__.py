"""config.yaml, the config contract of DESIGN.md: `load_config` reads a file into a `Config`.

    values.py      value types: durations, schedules, names, selectors, languages, times
    model.py       the sections and their defaults, as frozen pydantic models
    validation.py  cross-references, and every mistake in words a user can act on
    loading.py     YAML (strict), `${VAR}` from the environment, `ConfigError`
"""
from crawler.config.loading import DEFAULT_PATH, ConfigError, load_config, parse_config
from crawler.config.model import (
    Config,
    CrawlSettings,
    DedupeSettings,
    QuietHours,
    Source,
    Topic,
)
from crawler.config.values import is_duration, parse_duration

__all__ = ["DEFAULT_PATH", "Config", "ConfigError", "CrawlSettings", "DedupeSettings",
           "QuietHours", "Source", "Topic", "is_duration", "load_config", "parse_config",
           "parse_duration"]
