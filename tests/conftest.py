"""Shared fixtures: the local fixture web (a scratch copy per test), databases (SQLite always,
PostgreSQL where it runs), and the `mediawatch` CLI, run in this process (its crawls on the
process's reactor, crawler.engine.reactor) as `python -m crawler` would run it."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from crawler.cli import main
from crawler.engine import reactor
from storage.db import engine_of, open_database
from tests import webserver
from tests.receivers import slack_receiver, smtp_server  # noqa: F401 — shared fixtures

reactor.install()  # before anything imports twisted.internet.reactor: the one Scrapy expects
PG_ADMIN = os.environ.get("MEDIAWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("MEDIAWATCH_REQUIRE_PG") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests first in each worker's share of the run (pytest-xdist deals the
    collection out in as many runs of tests as it has workers), the longest shared out
    first: none waits for the end, where it would run while the other workers sit idle."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    seconds = {item: mark.args[0] for item in items
               if (mark := item.get_closest_marker("long"))}
    shares: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for item in sorted(seconds, key=seconds.__getitem__, reverse=True):
        min(shares, key=lambda share: sum(map(seconds.__getitem__, share))).append(item)
    rest = [item for item in items if item not in seconds]
    cuts = [round(len(rest) * n / workers) for n in range(workers + 1)]
    items[:] = [item for n, share in enumerate(shares)
                for item in share + rest[cuts[n]:cuts[n + 1]]]


@pytest.fixture(scope="session")
def _web_server() -> Iterator[webserver.FixtureWeb]:
    web, server = webserver.start()
    yield web
    server.shutdown()


@pytest.fixture
def web(_web_server: webserver.FixtureWeb, tmp_path: Path) -> Iterator[webserver.FixtureWeb]:
    """The fixture web, served from a scratch copy a test may change."""
    _web_server.clear()
    _web_server.root = tmp_path / "web"
    shutil.copytree(webserver.ROOT, _web_server.root)
    yield _web_server
    _web_server.root = webserver.ROOT


@pytest.fixture(scope="session")
def pg_admin() -> Any:
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except Exception as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (MEDIAWATCH_REQUIRE_PG=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}")
    yield engine
    engine.dispose()


def fresh_pg(pg_admin: Any, template: str = "template1") -> Iterator[str]:
    """A new PostgreSQL database's URL (empty, or a copy of `template`), dropped after (a
    generator: wrap it with contextlib.contextmanager to use it in a `with`)."""
    name = f"mw_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# Migrating a database costs about 0.3 s of CPU (client and server): each worker migrates
# one per backend, and tests start from copies of it.
@pytest.fixture(scope="session")
def _sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "mediawatch.db"
    engine_of(open_database(f"sqlite:///{path}")).dispose()
    return path


@pytest.fixture(scope="session")
def _pg_migrated(pg_admin: Any) -> Iterator[str]:
    with contextmanager(fresh_pg)(pg_admin) as url:
        engine_of(open_database(url)).dispose()  # a template has no connection left
        yield url.rsplit("/", 1)[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each backend with no schema yet: for tests of migrating one."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mediawatch.db'}"
    else:
        yield from fresh_pg(request.getfixturevalue("pg_admin"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each backend, at the current schema (a copy of a migrated one)."""
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("_sqlite_migrated"), tmp_path / "mediawatch.db")
        yield f"sqlite:///{tmp_path / 'mediawatch.db'}"
    else:
        yield from fresh_pg(request.getfixturevalue("pg_admin"),
                            request.getfixturevalue("_pg_migrated"))


@dataclass
class Result:
    code: int
    out: str
    err: str
    raw: bytes = b""  # stdout's bytes (out is their UTF-8 reading)

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    """Runs the `mediawatch` command with a config file and database, in this process, in
    the config's folder and an environment without MEDIAWATCH_* variables (plus `env`)."""

    config: Path
    db: str
    env: dict[str, str]

    def __call__(self, *args: str) -> Result:
        return invoke(["--config", str(self.config), "--db", self.db, *args], self.env,
                      self.config.parent)

    def write_config(self, document: dict[str, Any]) -> None:
        self.config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")


def invoke(argv: list[str], env: dict[str, str], cwd: Path) -> Result:
    """`mediawatch ARGV` in this process, with exactly `env` as its environment."""
    changes: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    with chdir(cwd), CliRunner().isolation(env=changes | env) as (out, err, _):
        try:
            main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Result(code, out.getvalue().decode(errors="replace"), err.getvalue().decode(),
                  out.getvalue())


def web_config(web: webserver.FixtureWeb, *sources: dict[str, Any], **crawl: Any) -> dict[str, Any]:
    return {"crawl": {"allow_private": True, "timeout": 5, **crawl},
            "sources": [dict(s, url=web.url(s["url"])) if s["url"].startswith("/") else s
                        for s in sources]}


def cli_for(folder: Path, db: str) -> Cli:
    """The CLI with `folder/config.yaml` and the database `db`."""
    env = {k: v for k, v in script_env().items() if not k.startswith("MEDIAWATCH_")}
    return Cli(folder / "config.yaml", db, env)


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    return cli_for(tmp_path, db_url)


def script_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (or this process's) as a script whose output goes to a pipe has it: no terminal
    size (pytest-xdist's workers inherit one)."""
    return {k: v for k, v in (os.environ if env is None else env).items()
            if k not in ("COLUMNS", "LINES")}
