"""Shared fixtures: the local fixture web, databases (SQLite always, PostgreSQL where it
runs), and the `mediawatch` CLI run as a real subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from tests import webserver
from tests.receivers import slack_receiver, smtp_server  # noqa: F401 — shared fixtures

PG_ADMIN = os.environ.get("MEDIAWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("MEDIAWATCH_REQUIRE_PG") == "1"


@pytest.fixture(scope="session")
def _web_server() -> Iterator[webserver.FixtureWeb]:
    web, server = webserver.start()
    yield web
    server.shutdown()


@pytest.fixture
def web(_web_server: webserver.FixtureWeb) -> webserver.FixtureWeb:
    _web_server.log.clear()
    return _web_server


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


def _fresh_pg(pg_admin: Any) -> Iterator[str]:
    name = f"mw_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mediawatch.db'}"
    else:
        yield from _fresh_pg(request.getfixturevalue("pg_admin"))


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    """Runs `python -m crawler` (the `mediawatch` command) with a config file and database."""

    config: Path
    db: str
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120) -> Result:
        proc = subprocess.run([sys.executable, "-m", "crawler", "--config", str(self.config),
                               "--db", self.db, *args], capture_output=True, text=True,
                              timeout=timeout, env=self.env, cwd=self.config.parent)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def write_config(self, document: dict[str, Any]) -> None:
        self.config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")


def web_config(web: webserver.FixtureWeb, *sources: dict[str, Any], **crawl: Any) -> dict[str, Any]:
    return {"crawl": {"allow_private": True, "timeout": 5, **crawl},
            "sources": [dict(s, url=web.url(s["url"])) if s["url"].startswith("/") else s
                        for s in sources]}


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAWATCH_")}
    return Cli(tmp_path / "config.yaml", db_url, env)
