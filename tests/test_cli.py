"""The CLI contract: exit codes, one-line errors, the demo, the database commands."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from basis.secrets import Redactor
from storage.db import engine_of, open_database
from tests.conftest import Cli, cli_for, invoke, script_env, web_config
from tests.webserver import FixtureWeb

ROOT = Path(__file__).parent.parent


def run(*args: str, env: dict[str, str] | None = None,
        cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`mediawatch ARGS` run in this process, as a script in `cwd` would run it."""
    result = invoke(list(args), script_env(env), cwd)
    return subprocess.CompletedProcess(args, result.code, result.out, result.err)


def entry_point(*args: str, env: dict[str, str] | None = None,
                cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`python -m crawler ARGS` as a process of its own: the entry point itself."""
    return subprocess.run([sys.executable, "-m", "crawler", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=script_env(env))


def test_demo_runs_the_flow_offline(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = run("demo", "--keep", str(db), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "crawl summary" in result.stdout
    assert "国家安全部提醒" in result.stdout            # the statement
    assert "3,555 Chinese students applied" in result.stdout  # the asylum report
    tables = inspect(create_engine(f"sqlite:///{db}")).get_table_names()
    assert {"articles", "sightings", "sources", "crawl_runs"} <= set(tables)

    # what it says to explore next works as printed, without the mission config's secrets
    hint = result.stdout.rsplit("explore: mediawatch ", 1)[1].split()
    config = hint[hint.index("--config") + 1]
    assert Path(config) == db.with_suffix(".yaml")
    env = {k: v for k, v in os.environ.items()
           if k not in ("SMTP_USER", "SMTP_PASSWORD", "SLACK_WEBHOOK_URL")}
    shown = run(*hint[:hint.index("(or:")], env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    topics = run("--config", config, "topics", "list", "--json", env=env, cwd=tmp_path)
    assert topics.returncode == 0, topics.stderr
    assert {t["name"] for t in json.loads(topics.stdout)} == {"espionage-warnings",
                                                              "student-asylum"}
    sources = run("--config", config, "sources", "list", "--json", env=env, cwd=tmp_path)
    assert sorted(s["name"] for s in json.loads(sources.stdout)) == [
        "hk-daily", "mss-statements", "pacific-wire", "world-desk"]


@pytest.mark.parametrize("keep", ["config.db", "mediawatch.db", "."])
def test_demo_keep_refuses_a_path_that_exists(tmp_path: Path, keep: str) -> None:
    """`--keep config.db` would write config.yaml, `--keep mediawatch.db` into a real
    database: the demo refuses both, writing nothing."""
    (tmp_path / "config.yaml").write_text("sources: []\n", encoding="utf-8")
    (tmp_path / "mediawatch.db").write_bytes(b"production")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = run("demo", "--keep", keep, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: --keep {keep}: ")
    assert "exists" in result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_config_check_names_the_missing_variable_and_hides_secrets(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SMTP_USER", "SMTP_PASSWORD", "SLACK_WEBHOOK_URL")}
    result = entry_point("--config", str(ROOT / "config.yaml"), "config", "check", env=env)
    assert result.returncode == 2
    assert "channels.analysts.url: environment variable SMTP_USER is not set" in result.stderr
    assert "Traceback" not in result.stderr

    env |= {"SMTP_USER": "desk", "SMTP_PASSWORD": "s3cr3t-pw",
            "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/s3cr3tpath"}
    result = run("--config", str(ROOT / "config.yaml"), "--db", f"sqlite:///{tmp_path}/x.db",
                 "config", "check", env=env)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "s3cr3t" not in result.stdout + result.stderr


def test_unknown_config_key_exits_before_anything_runs(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("crawl:\n  concurency: 3\n")
    result = entry_point("--config", str(config), "crawl", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == \
        f"error: {config}: crawl: unknown key 'concurency' (did you mean 'concurrency'?)"
    assert not list(tmp_path.glob("*.db"))


def test_db_upgrade_creates_the_schema(tmp_path: Path, empty_db_url: str) -> None:
    cli = cli_for(tmp_path, empty_db_url)
    cli.write_config({})
    result = cli("db", "upgrade")
    assert result.code == 0, result.err
    assert "up to date" in result.out
    assert {"articles", "sightings", "stories", "topic_matches", "alerts", "crawl_runs",
            "sources"} <= set(inspect(create_engine(cli.db)).get_table_names())


def test_errors_are_one_line_and_details_come_with_verbose(cli: Cli) -> None:
    cli.write_config({})
    assert cli("db", "upgrade").code == 0
    missing = cli("articles", "show", "999")
    assert missing.code == 2 and missing.err.strip() == "error: no article with id 999"
    bad_db = Cli(cli.config, "postgresql+psycopg://nobody@127.0.0.1:1/none", cli.env)
    result = bad_db("articles", "list")
    assert result.code == 1
    assert result.err.count("\n") == 1 and result.err.startswith("error: cannot open database")
    assert "Traceback" not in result.err
    malformed = Cli(cli.config, "nonsense", cli.env)("articles", "list")  # a usage error
    assert malformed.code == 2 and malformed.err.startswith("error: --db: not a database URL")


READS = [("articles", "list"), ("articles", "show", "1"), ("articles", "search", "spy"),
         ("stories", "list"), ("stories", "show", "1"), ("topics", "list"),
         ("topics", "test", "--query", "spy"), ("alerts", "list"), ("sources", "list")]


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_read_command_needs_a_database_and_creates_none(tmp_path: Path,
                                                           args: tuple[str, ...]) -> None:
    (tmp_path / "config.yaml").write_text("sources: []\n", encoding="utf-8")
    missing = tmp_path / "data" / "mediawatch.db"
    result = run("--db", f"sqlite:///{missing}", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: no database at {missing} (run `mediawatch crawl` or " \
                            "`mediawatch run` first)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` and its files read-only; for root too (chattr +i), or the test is skipped."""
    paths = [*folder.iterdir(), folder]
    immutable = os.geteuid() == 0
    try:
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        if immutable and (shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", *map(str, paths)], capture_output=True).returncode != 0):
            pytest.skip("root, and no chattr +i here: nothing is read-only")
        yield
    finally:
        if immutable and shutil.which("chattr"):
            subprocess.run(["chattr", "-i", *map(str, paths)], capture_output=True)
        for path in paths:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_read_only_database_opens_for_reading(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    url = f"sqlite:///{folder / 'mediawatch.db'}"
    engine_of(open_database(url)).dispose()  # the schema, and no writer left
    (tmp_path / "config.yaml").write_text(
        "sources: [{name: wire, kind: feed, url: 'https://example.org/feed.xml'}]\n")
    with read_only(folder):
        for args in READS:
            result = run("--db", url, *args, "--json", cwd=tmp_path)
            assert result.returncode == (2 if "show" in args else 0), (args, result.stderr)
            assert "Traceback" not in result.stderr and "cannot open" not in result.stderr
        assert [p.name for p in folder.iterdir()] == ["mediawatch.db"]
        listed = run("--db", url, "sources", "list", "--json", cwd=tmp_path)
        assert [(s["name"], s["health"]) for s in json.loads(listed.stdout)] == [
            ("wire", "never polled")]  # configured, not polled yet


def test_a_config_file_that_is_not_utf8_says_how_to_fix_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes("sources: []\n# 国家安全部\n".encode("gbk"))
    result = run("--config", str(config), "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {config}: line 2: not UTF-8 (byte 0xb9: GBK? Big5?); " \
                            "save it as UTF-8\n"


@pytest.mark.parametrize("args", [
    ("articles", "search", ""), ("articles", "search", "  "),
    ("articles", "show", str(2**64)), ("stories", "show", str(2**63)),
    ("alerts", "retry", str(2**64)), ("topics", "test", "--query", "x", "--explain", str(2**64)),
    ("articles", "list", "--limit", str(2**64)), ("alerts", "list", "--limit", str(2**70)),
], ids=" ".join)
def test_an_empty_query_or_a_number_beyond_64_bits_is_a_usage_error(
        tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "config.yaml").write_text("sources: []\n", encoding="utf-8")
    result = run("--db", f"sqlite:///{tmp_path}/mediawatch.db", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "Error" not in result.stderr  # no OverflowError, no AttributeError


@pytest.mark.parametrize("command", [("articles", "list"), ("config", "check"),
                                     ("db", "upgrade")], ids=" ".join)
def test_an_unsupported_db_url_reads_as_in_the_config(tmp_path: Path,
                                                      command: tuple[str, ...]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("database: mysql://u@h/db\n", encoding="utf-8")
    in_config = run("--config", str(config), *command, cwd=tmp_path)
    config.write_text("sources: []\n", encoding="utf-8")
    on_line = run("--config", str(config), "--db", "mysql://u@h/db", *command, cwd=tmp_path)
    assert in_config.returncode == on_line.returncode == 2
    assert in_config.stderr.startswith(f"error: {config}: database: 'mysql' is not supported")
    assert on_line.stderr == in_config.stderr.replace(f"{config}: database:", "--db:")


def test_every_error_of_ours_descends_from_one_base_and_maps_to_its_exit_code() -> None:
    """One tree (basis.errors): each exception class the packages define is a
    MediawatchError, and the CLI maps usage errors to 2 and runtime failures to 1."""
    import importlib
    import inspect
    import pkgutil

    from basis.errors import MediawatchError, RuntimeFailure, UsageError
    from crawler.cli import _report

    ours = []
    for package in ("basis", "crawler", "spiders", "storage", "alerts"):
        root = importlib.import_module(package)
        for found in pkgutil.walk_packages(root.__path__, f"{package}."):
            if "migrations" in found.name or found.name.endswith("__main__"):
                continue
            module = importlib.import_module(found.name)
            ours += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                     if issubclass(cls, BaseException) and cls.__module__ == module.__name__]
    assert {cls.__name__ for cls in ours} >= {"ConfigError", "QuerySyntaxError", "NotFound",
                                              "DatabaseError", "DaemonError", "NotAFeed",
                                              "NotASitemap", "RefusedDestination"}
    strays = [cls for cls in ours if not issubclass(cls, (UsageError, RuntimeFailure))
              and cls is not MediawatchError and not cls.__name__.startswith("_")]
    assert strays == []
    by_name = {cls.__name__: cls for cls in ours}
    for error, code in ((by_name["NotFound"]("no topic named 'x'"), 2),
                        (by_name["ConfigError"]([("crawl", "unknown key")]), 2),
                        (by_name["QuerySyntaxError"]("a AND (", 7, "unclosed"), 2),
                        (by_name["DatabaseError"]("cannot open database"), 1),
                        (by_name["DaemonError"]("another `mediawatch run`"), 1),
                        (by_name["Undelivered"]("1 failed"), 1)):
        assert _report(error, Redactor(), verbose=False) == code, error


@pytest.mark.parametrize(("args", "reason"), [
    (("articles", "list", "--since", "soon"), "invalid duration 'soon'"),
    (("alerts", "list", "--status", "bogus"), "'bogus' is not one of 'pending'"),
    (("articles", "show", "abc"), "'abc' is not a valid integer"),
    (("articles", "frobnicate"), "No such command 'frobnicate'"),
    (("articles", "list", "--limit", "0"), "0 is not in the range 1<=x<="),
])
def test_bad_option_value_is_explained(cli: Cli, args: tuple[str, ...], reason: str) -> None:
    cli.write_config({})
    result = cli(*args)
    assert result.code == 2 and reason in result.err
    assert result.err.count("\n") == 1 and result.err.startswith("error: ")  # one line


def test_config_check_validates_channel_endpoints(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("channels:\n"
                      "  team: {type: slack, webhook: 'http://127.0.0.1:9/hook/secret-path'}\n"
                      "  desk: {type: email, url: 'smtp://u:pw@127.0.0.1:25', from: a@b.example,"
                      " to: [c@d.example]}\n")
    result = run("--config", str(config), "--db", f"sqlite:///{tmp_path}/x.db", "config", "check")
    assert result.returncode == 0, result.stderr
    assert "channels.team.webhook: host '127.0.0.1' is not hooks.slack.com" in result.stdout
    assert "channels.desk.url: the SMTP password would travel in clear" in result.stdout
    assert "secret-path" not in result.stdout and ":pw@" not in result.stdout

    config.write_text("channels:\n  desk: {type: email, url: 'smtp://127.0.0.1:notaport',"
                      " from: a@b.example, to: [c@d.example]}\n")
    result = run("--config", str(config), "--db", f"sqlite:///{tmp_path}/x.db", "config", "check")
    assert result.returncode == 2
    assert result.stderr == f"error: {config}: channels.desk.url: malformed URL (a bad port " \
                            "or a bad [IPv6] host)\n"


@pytest.mark.parametrize("command", [("config", "check"), ("crawl",)])
def test_a_channel_apprise_cannot_load_stops_before_anything_runs(
        tmp_path: Path, command: tuple[str, ...]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("channels:\n  other: {type: apprise, url: 'tgram://${TG_TOKEN}'}\n"
                      "  local: {type: jsonl, path: alerts.jsonl}\n")
    env = os.environ | {"TG_TOKEN": "hunter2-secret"}
    result = run("--config", str(config), "--db", f"sqlite:///{tmp_path}/x.db", *command,
                 env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {config}: channels.other.url: Apprise cannot read this " \
                            "tgram:// URL: a token, user or host is missing or malformed (see " \
                            "the Apprise wiki page for tgram://)\n"
    assert not list(tmp_path.glob("*.db"))


def test_an_unknown_source_on_the_command_line_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("sources:\n - {name: wire, kind: feed, url: 'https://x.example/f'}\n")
    result = run("--config", str(config), "--db", f"sqlite:///{tmp_path}/x.db", "crawl", "nope",
                 cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: no source named 'nope' (known: wire)\n"


def test_titles_from_the_web_cannot_drive_the_terminal(cli: Cli, web: FixtureWeb) -> None:
    """Escape sequences and bidi overrides in a feed's title and text are dropped from what
    the views print (piped output carries no styles, so any ESC would be the feed's)."""
    hostile = "Warning\x1b[2J\x1b]0;pwned\x07 to students \u202eabroad"
    feed = web.root / "feeds" / "_hostile.xml"
    feed.write_bytes(f'<rss version="2.0"><channel><title>h</title><item><title>{hostile}'
                     f'</title><link>/statements/hostile.html</link><description>{hostile} '
                     'body</description></item></channel></rss>'.encode())
    try:
        cli.write_config(web_config(web, {"name": "h", "kind": "feed", "follow": False,
                                          "url": "/feeds/_hostile.xml"}))
        assert cli("crawl").code == 0
        stored = cli("articles", "list", "--json").json()
        assert "\x1b" in stored[0]["title"]  # kept as published; only the views drop it
        for args in (("articles", "list"), ("articles", "show", str(stored[0]["id"])),
                     ("stories", "list")):
            out = cli(*args).out
            assert "Warning" in out and "to students" in out, args
            assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, args
    finally:
        feed.unlink()


def test_a_token_in_a_source_url_never_leaves_the_process(cli: Cli, web: FixtureWeb) -> None:
    """Printed, logged (-v), in --json and stored errors: masked; fetched: as it is."""
    secret = "FeedTok3nSecret"
    cli.env["FEED_TOKEN"] = secret
    cli.write_config(web_config(web, {"name": "tokfeed", "kind": "feed",
                                      "url": web.url("/feeds/members-only.xml?apikey=${FEED_TOKEN}")}))
    runs = [cli("-v", "crawl"), cli("crawl", "--json"), cli("sources", "list"),
            cli("sources", "check", "tokfeed", "--json")]
    listed = cli("sources", "list", "--json")
    assert [r.code for r in runs] == [1, 1, 0, 1]
    assert "polled tokfeed: failed (HTTP 404): HTTP 404 from" in runs[0].out
    assert web.hits("/feeds/members-only.xml")[0].path.endswith(f"?apikey={secret}")
    [source] = listed.json()
    assert source["url"].endswith("/feeds/members-only.xml?apikey=***")
    assert source["last_error"].endswith("/feeds/members-only.xml?apikey=***")
    for result in [*runs, listed]:
        assert secret not in result.out + result.err
    with create_engine(cli.db).connect() as connection:
        url, error = connection.execute(text("select url, last_error from sources")).one()
    assert url.endswith(secret) and secret not in error  # the error is stored masked


def test_sources_list_shows_a_source_as_configured_not_as_last_polled(
        cli: Cli, web: FixtureWeb) -> None:
    source = {"name": "wire", "kind": "feed", "url": web.url("/feeds/moved.xml")}
    cli.write_config(web_config(web, source))
    assert cli("crawl", "--no-alerts").code == 1  # 404: stored with its health
    source |= {"url": web.url("/sitemap.xml"), "kind": "sitemap"}
    cli.write_config(web_config(web, source))
    [listed] = cli("sources", "list", "--json").json()
    assert (listed["kind"], listed["url"], listed["consecutive_failures"]) == (
        "sitemap", web.url("/sitemap.xml"), 1)
