"""Engines, sessions and migrations. SQLite (WAL, busy timeout) is the embedded default;
the same code runs on PostgreSQL (`postgresql+psycopg://…`)."""
from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from basis.errors import RuntimeFailure, UsageError
from basis.secrets import mask_url

MIGRATIONS = Path(__file__).with_name("migrations")
BACKENDS = ("sqlite", "postgresql")  # what the models and migrations are written for
EXAMPLES = "sqlite:///mediawatch.db or postgresql+psycopg://user@host/name"
log = logging.getLogger(__name__)
WAIT_STEP, WAIT_NOTICE = 0.5, 10.0  # seconds: migration lock polled, waiting logged
MIGRATION_LOCK_KEY = 0x6D696772  # "migr": PostgreSQL's advisory lock around a migration


class DatabaseError(RuntimeFailure):
    """The database cannot be opened or migrated."""


class NoDatabase(UsageError):
    """A command that only reads was pointed at a SQLite file that does not exist."""


def check_url(url: str) -> str:
    """`url` if it names a supported backend whose driver is installed; else ValueError,
    whose message never repeats the URL (it may hold a password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: write {EXAMPLES}") from None
    if parsed.get_backend_name() not in BACKENDS:
        raise ValueError(f"{parsed.get_backend_name()!r} is not supported: "
                         f"use {EXAMPLES}")
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise ValueError(f"no driver for {parsed.drivername}:// is installed: use "
                         f"{EXAMPLES}") from None
    return url


# PostgreSQL and a client cut off from each other by the network: a new connection fails in
# 10 s, an open one within about 30 s on both sides (keepalives when idle, a timeout on
# unacknowledged sends), not after TCP's own minutes or hours — the server's side matters
# too: a dead client's transaction holds its locks (the shared index's) until it ends
PG_CONNECT_ARGS = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 10,
                   "keepalives_interval": 5, "keepalives_count": 4, "tcp_user_timeout": 30_000,
                   "options": "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 "
                              "-c tcp_keepalives_count=4 -c tcp_user_timeout=30000"}


def create_db_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True,
                         connect_args=PG_CONNECT_ARGS
                         if parsed.get_backend_name() == "postgresql" else {})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


def upgrade(engine: Engine) -> None:
    """Apply every pending migration (idempotent). On PostgreSQL one process at a time:
    the members of a deployment start together on a fresh database, and two migrations
    creating the same tables at once fail."""
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), "head")
        return
    with engine.connect() as lock:
        _wait_for_migrations(lock)
        try:
            if not is_current(engine):  # or another process migrated it meanwhile
                command.upgrade(alembic_config(engine), "head")
        finally:
            with suppress(SQLAlchemyError):  # a connection that died has released it
                lock.execute(text("select pg_advisory_unlock(:key)"),
                             {"key": MIGRATION_LOCK_KEY})


def _wait_for_migrations(lock: Connection) -> None:
    """Take the migration lock, saying every WAIT_NOTICE seconds why we wait: an index
    built on a big table can hold it for minutes."""
    waited = 0.0
    while not lock.scalar(text("select pg_try_advisory_lock(:key)"),
                          {"key": MIGRATION_LOCK_KEY}):
        if waited % WAIT_NOTICE == 0:
            log.warning("waiting for another process to finish migrating the database "
                        "(%.0f s so far)", waited)
        time.sleep(WAIT_STEP)
        waited += WAIT_STEP


def open_database(url: str, migrate: bool = True) -> sessionmaker[Session]:
    """An engine's session factory, with the schema brought up to date on first use."""
    try:
        engine = create_db_engine(url)
        if migrate and not is_current(engine):
            upgrade(engine)
    except Exception as exc:  # driver errors carry no common base: report them uniformly
        raise _cannot_open(url, exc) from exc
    return sessionmaker(engine, expire_on_commit=False)


def _cannot_open(url: str, exc: Exception) -> DatabaseError:
    return DatabaseError(f"cannot open database {display_url(url)}: "
                         f"{str(exc).splitlines()[0]}")


def open_for_reading(url: str) -> sessionmaker[Session]:
    """The session factory of a command that only reads. A SQLite file must exist (nothing
    is created) and opens read-only, so a file or folder the user may not write is fine;
    its schema is brought up to date first only when it is behind."""
    path = sqlite_path(url)
    if path is None:
        return open_database(url)
    if not path.is_file():
        raise NoDatabase(f"no database at {path} (run `mediawatch crawl` or "
                         "`mediawatch run` first)")
    engine = create_engine(url, creator=lambda: _connect_read_only(path))  # url: its pool
    try:
        current = is_current(engine)
    except Exception as exc:  # as in open_database
        raise _cannot_open(url, exc) from exc
    if not current:
        open_database(url)  # migrates, or says why it cannot
    return sessionmaker(engine, expire_on_commit=False)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for an in-memory one or another backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """`mode=ro`. In a folder it may not write, SQLite cannot create a WAL database's -shm
    file: then the file is read as immutable, which is safe when no -wal file shows that a
    writer has it open."""
    uri = path.resolve().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30,
                                 check_same_thread=False)
    try:
        connection.execute("PRAGMA schema_version")
    except sqlite3.OperationalError:
        connection.close()
        if path.with_name(f"{path.name}-wal").exists():
            raise
        connection = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
    return connection


def display_url(url: str) -> str:
    """The URL with its password hidden; one that does not parse is not shown at all."""
    try:
        make_url(url)
    except ArgumentError:
        return "(not a database URL)"
    return mask_url(url, endpoint=False)


def engine_of(db: sessionmaker[Session]) -> Engine:
    """The engine behind a session factory: Core statements on a plain connection skip
    the session's bookkeeping (the daemon's writes for every poll)."""
    return db.kw["bind"]  # type: ignore[no-any-return]
