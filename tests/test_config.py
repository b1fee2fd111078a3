"""Every config mistake is one line that names its path; secrets are never echoed."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from crawler.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).parent.parent
GOOD = """
database: sqlite:///x.db
crawl: {backfill: 3d}
sources:
  - {name: mss-statements, kind: feed, url: "https://example.org/f.xml", every: 10m, tags: [official]}
  - {name: wire, kind: feed, url: "https://example.org/w.xml", every: "*/15 * * * *"}
topics:
  - {name: espionage, query: 'spy*', sources: [official], channels: [desk, team-slack]}
channels:
  desk: {type: email, url: "smtp://user:${SMTP_PASSWORD}@smtp.example.org:587?starttls=1",
         from: alerts@example.org, to: [desk@example.org]}
  team-slack: {type: slack, webhook: "${SLACK_WEBHOOK_URL}"}
"""
ENV = {"SMTP_PASSWORD": "hunter2-secret", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/s/T0/B0/XyZ"}


def errors(text: str, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=env, file="config.yaml")
    return caught.value.lines()


def test_good_config_is_typed_and_immutable() -> None:
    config = parse_config(GOOD, env=ENV)
    assert config.crawl.backfill == timedelta(days=3)
    assert config.sources[0].every == "10m" and config.sources[1].every == "*/15 * * * *"
    assert config.channels["desk"].url.get_secret_value().startswith("smtp://user:hunter2-secret@")
    assert "hunter2" not in repr(config)
    with pytest.raises(ValidationError, match="frozen"):
        config.sources[0].name = "other"  # type: ignore[misc]


def test_repository_config_yaml_is_valid() -> None:
    config = load_config(ROOT / "config.yaml", env={"SMTP_PASSWORD": "x", "SMTP_USER": "u",
                                                      "SLACK_WEBHOOK_URL": "https://hooks.slack.com/x"})
    assert config.sources and config.topics and config.channels


@pytest.mark.parametrize("text, expected", [
    ("sources:\n  - name: a\n   kind: feed\n", "config.yaml: invalid YAML: line 3, column 4"),
    ("crawl: {timout: 3}\n", "config.yaml: crawl: unknown key 'timout' (did you mean 'timeout'?)"),
    ("sources:\n - {name: a, kind: feed, url: 'https://x.org', evry: 10m}\n",
     "config.yaml: sources[0]: unknown key 'evry' (did you mean 'every'?)"),
    ("crawl: {concurrency: many}\n", "config.yaml: crawl.concurrency: Input should be a valid integer"),
    ("sources:\n - {name: a, kind: feed, url: 'https://x.org'}\n"
     " - {name: b, kind: feed, url: 'https://x.org'}\n - {name: c, kind: feed, url: 'https://x.org', every: 10x}\n",
     "config.yaml: sources[2].every: invalid schedule '10x'"),
    ("sources:\n - {name: a, kind: feed, url: 'https://x.org', every: '61 * * * *'}\n",
     "config.yaml: sources[0].every: invalid cron expression '61 * * * *'"),
    ("crawl: {backfill: soon}\n", "config.yaml: crawl.backfill: invalid duration 'soon'"),
    ("digest: {cron: 'every day'}\n", "config.yaml: digest.cron: invalid cron expression"),
    ("sources:\n - {name: a, kind: feed, url: 'https://x.org'}\n - {name: a, kind: feed, url: 'https://y.org'}\n",
     "config.yaml: sources[1].name: duplicate source name 'a' (also sources[0])"),
    ("sources:\n - {name: a, kind: feed, url: 'ftp://x.org/f'}\n",
     "config.yaml: sources[0].url: URL scheme must be http or https, not 'ftp'"),
    ("sources:\n - {name: a, kind: feed, url: 'file:///etc/passwd'}\n",
     "config.yaml: sources[0].url: URL scheme must be http or https, not 'file'"),
    ("sources:\n - {name: Bad_Name, kind: feed, url: 'https://x.org'}\n",
     "config.yaml: sources[0].name: use lowercase letters, digits and '-'"),
    ("sources:\n - {name: a, kind: rss, url: 'https://x.org'}\n", "config.yaml: sources[0].kind: Input should be"),
    ("sources:\n - {name: a, kind: feed}\n", "config.yaml: sources[0]: required key 'url' is missing"),
    ("channels:\n  s: {type: slack, webhook: '${NOT_SET_ANYWHERE}'}\n",
     "config.yaml: channels.s.webhook: environment variable NOT_SET_ANYWHERE is not set"),
    ("channels:\n  desk: {type: emial, url: x}\n",
     "config.yaml: channels.desk.type: unknown channel type 'emial' (did you mean 'email'?)"),
    ("channels:\n  desk: {type: email, url: 'https://x', from: a@b, to: [c@d]}\n",
     "config.yaml: channels.desk.url: URL scheme must be one of smtp, smtps"),
    ("topics:\n - {name: t, query: q, channels: [deks]}\nchannels:\n  desk: {type: console}\n",
     "config.yaml: topics[0].channels: no channel named 'deks' (did you mean 'desk'?)"),
    ("topics:\n - {name: t, query: q, sources: [offical]}\nsources:\n - {name: a, kind: feed, url: 'https://x.org', tags: [official]}\n",
     "config.yaml: topics[0].sources: no source or tag named 'offical' (did you mean 'official'?)"),
    ("- just\n- a list\n", "config.yaml: the top level must be a mapping"),
])
def test_mistake_is_one_line_naming_the_path(text: str, expected: str) -> None:
    lines = errors(text)
    assert any(line.startswith(expected) for line in lines), lines
    assert all("\n" not in line for line in lines)


def test_secret_never_appears_in_errors() -> None:
    text = GOOD.replace("smtp://user", "http://user").replace("team-slack: {type: slack",
                                                             "team-slack: {type: slack, extra: 1")
    lines = errors(text)
    assert len(lines) == 2
    assert not any("hunter2" in line or "XyZ" in line for line in lines)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml", env={})
