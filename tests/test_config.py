"""Every config mistake is one line that names its path; secrets are never echoed."""
from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from basis.errors import NotFound
from basis.secrets import Redactor
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


def test_the_mission_config_watches_where_follow_ups_appear() -> None:
    """The issuer's own site (official) and Taiwan, Hong Kong, broadcaster and diaspora
    outlets, each of which says it was not checked from here (issue 18, item 6)."""
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    config = load_config(ROOT / "config.yaml", env={"SMTP_PASSWORD": "x", "SMTP_USER": "u",
                                                      "SLACK_WEBHOOK_URL": "https://hooks.slack.com/x"})
    official = [s for s in config.sources if s.official]
    assert [(s.kind, s.language) for s in official] == [("listing", "zh")]
    regions = {"taiwan", "hong-kong", "broadcaster", "diaspora"}
    added = [s for s in config.sources if s.official or regions & set(s.tags)]
    assert regions <= {t for s in added for t in s.tags}
    assert {s.language for s in added} == {"en", "zh"}
    assert len({s.url for s in config.sources}) == len(config.sources)  # no outlet twice
    lines = text.splitlines()
    for source in added:
        at = next(i for i, line in enumerate(lines) if f"- name: {source.name}" in line)
        above = "\n".join(lines[at - 3:at])
        assert "# not checked from here: run mediawatch sources check --all once online" \
            in above, source.name


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


def test_values_from_the_environment_and_channel_secrets_are_redacted() -> None:
    text = GOOD.replace("sources:\n", "sources:\n  - {name: private, kind: feed, url: "
                        "'https://example.org/p.xml?apikey=${FEED_TOKEN}&l=${LANG_HINT}'}\n")
    text += '  bot: {type: apprise, url: "tgram://123456789:BotTokSecr3t/4242"}\n'
    config = parse_config(text, env=ENV | {"FEED_TOKEN": "FeedTok3n Secret", "LANG_HINT": "en"})
    assert config.sources[0].url.endswith("apikey=FeedTok3n Secret&l=en")  # fetched as is
    redact = config.redactor()
    line = ("HTTP 404 from https://example.org/p.xml?apikey=FeedTok3n%20Secret&l=en; "
            "smtp hunter2-secret; POST /s/T0/B0/XyZ; /bot123456789:BotTokSecr3t/sendMessage")
    assert redact(line) == ("HTTP 404 from https://example.org/p.xml?apikey=***&l=en; "
                            "smtp ***; POST /s/***; /bot***/sendMessage")
    assert redact("T0, B0, XyZ, 4242 and en are too short to be secrets alone") == \
        "T0, B0, XyZ, 4242 and en are too short to be secrets alone"
    assert redact.deep({"a": ["FeedTok3n Secret", 3, None]}) == {"a": ["***", 3, None]}


def test_the_log_filter_masks_messages_and_tracebacks() -> None:
    redact = Redactor(["FeedTok3nSecret", "1"])  # too short to be a secret: left alone
    try:
        raise ValueError("bad https://x.org/f?k=FeedTok3nSecret")
    except ValueError:
        record = logging.LogRecord("scrapy", logging.DEBUG, __file__, 1, "GET %s (%d)",
                                   ("https://x.org/f?k=FeedTok3nSecret", 1), sys.exc_info())
    assert redact.filter(record)
    assert logging.Formatter().format(record).splitlines()[0] == "GET https://x.org/f?k=*** (1)"
    assert "FeedTok3nSecret" not in logging.Formatter().format(record)
    assert "k=***" in record.exc_text


# ---------------------------------------------------------------- duplicate keys

@pytest.mark.parametrize("text, expected", [
    ("sources:\n - {name: a, kind: feed, url: 'https://a.org'}\n"
     "sources:\n - {name: b, kind: feed, url: 'https://b.org'}\n",
     "config.yaml: invalid YAML: line 3, column 1: duplicate key 'sources' (first at line 1)"),
    ("channels:\n  desk: {type: console}\n  local: {type: jsonl, path: a.jsonl}\n"
     "  desk: {type: jsonl, path: b.jsonl}\n",
     "config.yaml: invalid YAML: line 4, column 3: duplicate key 'desk' (first at line 2)"),
])
def test_a_key_written_twice_is_an_error_not_a_silent_drop(text: str, expected: str) -> None:
    assert errors(text) == [expected + "; keep only one"]


def test_keys_merged_from_an_anchor_may_still_be_overridden() -> None:
    config = parse_config("sources:\n - &feed {name: a, kind: feed, url: 'https://a.org', every: 10m}\n"
                          " - {<<: *feed, name: b, every: 1h}\n", env={})
    assert [(s.name, s.url, s.every) for s in config.sources] == [
        ("a", "https://a.org", "10m"), ("b", "https://a.org", "1h")]


# ---------------------------------------------------------------- database

@pytest.mark.parametrize("url, expected", [
    ("nonsense", "config.yaml: database: not a database URL: write sqlite:///"),
    ("mysql://u:hunter2@db/x", "config.yaml: database: 'mysql' is not supported: use sqlite:///"),
    ("postgresql+nodriver://u:hunter2@db/x",
     "config.yaml: database: no driver for postgresql+nodriver:// is installed"),
])
def test_database_url_is_checked_at_load_without_echoing_it(url: str, expected: str) -> None:
    lines = errors(f"database: '{url}'\n")
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert "hunter2" not in lines[0]


def test_supported_database_urls_pass() -> None:
    for url in ("sqlite:///x.db", "sqlite://", "postgresql+psycopg://u:pw@db:5432/x"):
        assert parse_config(f"database: '{url}'\n", env={}).database == url


def test_an_unreadable_database_url_is_reported_not_raised_again() -> None:
    from storage.db import DatabaseError, display_url, open_database

    assert display_url("nonsense") == "(not a database URL)"
    with pytest.raises(DatabaseError, match="cannot open database"):
        open_database("nonsense")


# ---------------------------------------------------------------- languages

def test_language_codes_take_the_form_articles_carry_so_topics_match() -> None:
    from alerts.match import Document
    from alerts.topics import TopicSet
    from basis.languages import language_of

    config = parse_config("sources:\n - {name: a, kind: feed, url: 'https://x.org', language: ZH_tw}\n"
                          "topics:\n - {name: t, query: students, languages: [EN, zh-Hant, zh]}\n",
                          env={})
    assert config.sources[0].language == "zh"
    assert config.topics[0].languages == ("en", "zh")
    text = "Students abroad were warned by the ministry about espionage and recruitment."
    assert language_of(text) == "en" and language_of("", declared="zh-Hant") == "zh"
    topics = TopicSet.compile(config.topics, config.aliases)
    article = Document(title="Warning", text=text, source="a", language=language_of(text))
    assert [m.topic for m in topics.match(article)] == ["t"]


@pytest.mark.parametrize("text, expected", [
    ("topics:\n - {name: t, query: q, languages: [en, Chinese]}\n",
     "config.yaml: topics[0].languages[1]: unknown language 'Chinese' (did you mean 'zh'?): "
     "use a language code such as en, zh"),
    ("topics:\n - {name: t, query: q, languages: [eng]}\n",
     "config.yaml: topics[0].languages[0]: unknown language 'eng' (did you mean 'en'?)"),
    ("sources:\n - {name: a, kind: feed, url: 'https://x.org', language: cn}\n",
     "config.yaml: sources[0].language: unknown language 'cn' (did you mean 'zh'?)"),
    ("sources:\n - {name: a, kind: feed, url: 'https://x.org', language: xx}\n",
     "config.yaml: sources[0].language: unknown language 'xx': use a language code such as"),
])
def test_unknown_language_is_refused_with_examples(text: str, expected: str) -> None:
    lines = errors(text)
    assert len(lines) == 1 and lines[0].startswith(expected), lines


# ---------------------------------------------------------------- channel endpoints

@pytest.mark.parametrize("channel, expected", [
    ("{type: apprise, url: 'tgram://${TOKEN}'}",
     "config.yaml: channels.other.url: Apprise cannot read this tgram:// URL"),
    ("{type: apprise, url: 'nosuch://${TOKEN}@x'}",
     "config.yaml: channels.other.url: Apprise has no service nosuch://"),
    ("{type: apprise, url: '${TOKEN}'}", "config.yaml: channels.other.url: not an Apprise URL"),
    ("{type: email, url: 'smtp://u:${TOKEN}@h:25', from: alerts, to: [d@x.org]}",
     "config.yaml: channels.other.from: not an email address"),
    ("{type: email, url: 'smtp://u:${TOKEN}@h:25', from: a@x.org, to: [d@x.org, desk]}",
     "config.yaml: channels.other.to[1]: not an email address"),
    ("{type: email, url: 'smtp://u:${TOKEN}@h:25?tls=1', from: a@x.org, to: [d@x.org]}",
     "config.yaml: channels.other.url: unknown URL parameter 'tls' (known: starttls)"),
    ("{type: email, url: 'smtp://u:${TOKEN}@h:port', from: a@x.org, to: [d@x.org]}",
     "config.yaml: channels.other.url: malformed URL"),
    ("{type: slack, webhook: 'https:/${TOKEN}'}",
     "config.yaml: channels.other.webhook: malformed URL: no host"),
])
def test_a_channel_that_could_not_be_built_is_a_config_error(
        channel: str, expected: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    lines = errors(f"channels:\n  local: {{type: jsonl, path: a.jsonl}}\n  other: {channel}\n",
                   env={"TOKEN": "hunter2-secret"})
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert "hunter2" not in lines[0] and "hunter2" not in caplog.text  # Apprise logs URLs


def test_a_loadable_apprise_url_passes() -> None:
    config = parse_config("channels:\n  other: {type: apprise, url: 'json://localhost:9/hook'}\n",
                          env={})
    assert config.channels["other"].url.get_secret_value() == "json://localhost:9/hook"


# ---------------------------------------------------------------- messages that say what is wrong

@pytest.mark.parametrize("text, expected", [
    ("sources:\n - {name: a, kind: feed, url: 'http:/x.example'}\n",
     "config.yaml: sources[0].url: malformed URL: no host after 'http:' (write http://host/…)"),
    ("sources:\n - {name: a, kind: feed, url: 'https://'}\n",
     "config.yaml: sources[0].url: malformed URL: no host after 'https:'"),
    ("sources:\n - {name: a, kind: feed, url: 'https://x.org', tags: official}\n",
     "config.yaml: sources[0].tags: should be a list, e.g. [a, b]"),
    ("channels:\n  desk: {type: email, url: 'smtp://h', from: a@x.org, to: d@x.org}\n",
     "config.yaml: channels.desk.to: should be a list, e.g. [a, b]"),
    ("sources:\n", "config.yaml: sources: is empty: give it a value or remove the key"),
    ("crawl:\n", "config.yaml: crawl: is empty: give it a value or remove the key"),
    ("crawl: fast\n", "config.yaml: crawl: should be a mapping of keys"),
])
def test_the_message_says_what_is_wrong(text: str, expected: str) -> None:
    lines = errors(text)
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_an_unknown_source_name_blames_the_name_not_a_file() -> None:
    config = parse_config("sources:\n - {name: a, kind: feed, url: 'https://x.org'}\n", env={})
    with pytest.raises(NotFound) as caught:
        config.select_sources(["nope"])
    assert str(caught.value) == "no source named 'nope' (known: a)"
