"""The own service instances of tests/services.py: they start, stop and come back on the same
port with what was committed, and leave nothing behind."""
from __future__ import annotations

from pathlib import Path

import redis
from sqlalchemy import create_engine, text

from tests.services import own_postgres, own_redis


def test_own_redis_stops_and_comes_back_on_its_port(tmp_path: Path) -> None:
    with own_redis(tmp_path) as server:
        assert server.port != 6379
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        server.stop()
        assert not server.up()
        server.start()
        assert client.ping()  # the same URL, nothing kept (no persistence)
        assert client.dbsize() == 0
    assert not server.up()


def test_own_postgres_restarts_keeping_commits_and_is_removed_after(tmp_path: Path) -> None:
    with own_postgres(tmp_path) as server:
        assert server.port != 5432
        engine = create_engine(server.url, pool_pre_ping=True)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (n int)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        server.restart()
        with engine.connect() as conn:  # the old pooled connection is found dead, replaced
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
        engine.dispose()
        folder = server.folder
    assert not server.up() and not folder.exists()
    assert (tmp_path / "postgres.log").exists()
