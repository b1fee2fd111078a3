"""Storage on both SQLite and PostgreSQL: migrations, UTC times, one article per URL or text."""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from alerts.backtest import match_past
from alerts.query import parse_query
from alerts.topics import TopicRule, TopicSet
from storage import repository as repo
from storage.db import (
    MIGRATION_LOCK_KEY,
    alembic_config,
    create_db_engine,
    engine_of,
    is_current,
    open_database,
    upgrade,
)
from storage.models import Alert, AlertArticle, Article, Sighting, Source
from tests import events

TOKYO = timezone(timedelta(hours=9))


def new_article(url: str, body: str = "正文内容", seen: str | None = None,
                published: datetime | None = None) -> repo.NewArticle:
    return repo.NewArticle(url=url, canonical_url=url, seen_url=seen or url, title="标题",
                           text=body, summary="", language="zh", published_at=published,
                           date_is_estimated=published is None, text_hash=f"h:{body}")


@pytest.fixture
def db(db_url: str):
    factory = open_database(db_url)
    with factory.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("a", "feed", "https://a.example/f.xml"),
                                    repo.SourceDef("b", "feed", "https://b.example/f.xml")])
    return factory


def test_migrations_apply_once_and_are_idempotent(empty_db_url: str) -> None:
    engine = engine_of(open_database(empty_db_url))
    assert is_current(engine)
    open_database(empty_db_url)  # a second open finds nothing to do
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from alembic_version")).scalar() == 1


@pytest.mark.parametrize("empty_db_url", ["postgresql"], indirect=True)
def test_processes_opening_a_fresh_database_together_migrate_it_once(empty_db_url: str) -> None:
    """The members of a deployment start together (`docker compose up --scale`): each
    migrates in turn (an advisory lock), the later ones find nothing to do."""
    opening = [subprocess.Popen([sys.executable, "-c", "import sys; from storage.db import "
                                 "open_database; open_database(sys.argv[1])", empty_db_url],
                                stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in opening]
    assert [p.returncode for p in opening] == [0, 0, 0], errors
    assert is_current(engine_of(open_database(empty_db_url, migrate=False)))


@pytest.mark.parametrize("empty_db_url", ["postgresql"], indirect=True)
def test_a_process_waiting_for_another_s_migration_says_so(
        empty_db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = create_db_engine(empty_db_url)
    with engine.connect() as other:  # another process, migrating
        other.execute(text("select pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        waiting = ThreadPoolExecutor(1).submit(upgrade, engine)
        events.wait_for(lambda: "waiting for another process to finish migrating"
                        in caplog.text, "the wait logged")
        assert not waiting.done()
        other.execute(text("select pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    waiting.result(timeout=60)
    assert is_current(engine)
    engine.dispose()


def test_times_come_back_aware_utc(db) -> None:
    published = datetime(2026, 11, 27, 9, 0, tzinfo=TOKYO)
    with db.begin() as session:
        repo.add_article(session, new_article("https://a.example/1", published=published), "a")
    with db() as session:
        article = session.scalars(select(Article)).one()
        assert article.published_at == published
        assert article.published_at.utcoffset() == timedelta(0)
        assert article.published_at.hour == 0
        assert article.first_seen_at.tzinfo is not None


def test_naive_times_are_refused(db) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        with db.begin() as session:
            repo.add_article(session, new_article("https://a.example/n",
                                                  published=datetime(2026, 1, 1)), "a")


def test_one_article_per_canonical_url_or_identical_text(db) -> None:
    with db.begin() as session:
        first, created = repo.add_article(session, new_article("https://a.example/1"), "a")
        assert created
        again, created = repo.add_article(session, new_article("https://a.example/1"), "b")
        assert not created and again.id == first.id
        copy, created = repo.add_article(session, new_article(
            "https://b.example/copy", seen="https://b.example/copy?x=1"), "b")
        assert not created and copy.id == first.id
        other, created = repo.add_article(session, new_article("https://a.example/2", "另一篇"), "a")
        assert created and other.id != first.id
    with db() as session:
        assert session.scalar(select(func.count(Article.id))) == 2
        urls = set(session.scalars(select(Sighting.url).where(Sighting.article_id == first.id)))
        assert urls == {"https://a.example/1", "https://b.example/copy?x=1"}
        assert repo.is_known_url(session, "https://b.example/copy?x=1")
        assert not repo.is_known_url(session, "https://b.example/never")


def test_sighting_of_a_known_url_is_recorded_once(db) -> None:
    with db.begin() as session:
        repo.add_article(session, new_article("https://a.example/1"), "a")
    for _ in range(2):
        with db.begin() as session:
            repo.sighting_of_url(session, "https://a.example/1", "b")
    with db() as session:
        assert session.scalar(select(func.count(Sighting.id))) == 2
        assert not repo.sighting_of_url(session, "https://a.example/unknown", "b")


def test_source_state_survives_sync_and_resets_when_url_changes(db) -> None:
    with db.begin() as session:
        repo.record_poll(session, "a", None, ('"etag-1"', "Fri, 27 Nov 2026 01:00:00 GMT"))
        repo.record_failure(session, "b", "HTTP 500")
        repo.record_failure(session, "b", "HTTP 500")
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("a", "feed", "https://a.example/f.xml"),
                                    repo.SourceDef("b", "feed", "https://b.example/new.xml")])
    with db() as session:
        a, b = (session.scalars(select(Source).where(Source.name == n)).one() for n in "ab")
        assert a.etag == '"etag-1"' and a.last_success_at is not None
        assert b.consecutive_failures == 2 and b.last_error == "HTTP 500"
        assert b.etag is None and b.url.endswith("new.xml")


def test_crawl_runs_are_recorded_per_poll_and_pruned_by_age(db) -> None:
    now = datetime.now(timezone.utc)
    with db.begin() as session:
        for days in (10, 8, 1):
            repo.record_run(session, "a", now - timedelta(days=days), "unchanged", 304,
                            repo.RunTally(1, 0, 0, 0, 0))
    with db.begin() as session:
        assert repo.forget_runs(session, now - timedelta(days=7)) == 2
    with db() as session:
        runs = session.execute(text("SELECT source_id, status, http_status FROM crawl_runs"))
        source_id = session.scalar(select(Source.id).where(Source.name == "a"))
        assert runs.all() == [(source_id, "unchanged", 304)]


def test_migrations_keep_rows_that_point_at_rebuilt_tables(db_url: str, db) -> None:
    """Batch mode on SQLite rebuilds alerts and sources: with sightings and alert batches
    pointing at them, down to 0004 and up to head again keeps every row."""
    with db.begin() as session:
        article, _ = repo.add_article(session, new_article("https://a.example/1"), "a")
        repo.sighting_of_url(session, "https://a.example/1", "b")
        alert = Alert(idempotency_key="k", topic="t", channel="c", article_id=article.id,
                      story_id=article.story_id)
        session.add(alert)
        session.flush()
        session.add(AlertArticle(alert_id=alert.id, article_id=article.id))
    engine = engine_of(db)
    config = alembic_config(engine)
    command.downgrade(config, "0004")
    command.upgrade(config, "head")
    assert is_current(engine)
    with engine.connect() as conn:
        counts = [conn.execute(text(f"select count(*) from {table}")).scalar()
                  for table in ("articles", "sightings", "alerts", "alert_articles", "sources")]
    assert counts == [1, 2, 1, 1, 2]


def test_a_topic_removed_and_added_again_is_matched_against_the_past_again(db) -> None:
    def match(*names: str) -> dict[str, int]:
        rules = TopicSet([TopicRule(name, parse_query("正文")) for name in names])
        return match_past(db, rules, now - timedelta(days=30), 10**6, {}, {},
                          timedelta(days=2), now)

    now = datetime.now(timezone.utc)
    with db.begin() as session:
        repo.add_article(session, new_article("https://a.example/1"), "a")
    assert match("t") == {"t": 1}
    assert match("t") == {}  # matched once
    assert match("u") == {"u": 1}  # t removed …
    with db.begin() as session:
        repo.add_article(session, new_article("https://a.example/2", "正文二"), "a")
    assert match("t", "u") == {"t": 1}  # … and back: the article stored meanwhile matches


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_processes_claim_different_rechecks_on_postgresql(db_url: str) -> None:
    """`mediawatch crawl` beside `run`: a statement due again is claimed by one of them
    (on SQLite one writer at a time already makes it so)."""
    db, now = open_database(db_url), datetime.now(timezone.utc)
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("a", "feed", "https://a.example/f.xml")])
        for n in (1, 2):
            article, _ = repo.add_article(session, new_article(f"https://a.example/{n}",
                                                               f"正文{n}"), "a")
            article.next_check_at = now
    with db() as first, db() as second:
        mine = repo.claim_checks(first, ["a"], now, timedelta(minutes=30), limit=1)
        theirs = repo.claim_checks(second, ["a"], now, timedelta(minutes=30), limit=1)
        assert len(mine) == len(theirs) == 1 and mine[0].article_id != theirs[0].article_id


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_members_adding_the_same_sources_at_once_both_start(db_url: str) -> None:
    """Daemons starting together each sync the config's sources: the second insert of a
    name waits for the first and then leaves it, instead of failing the start."""
    db = open_database(db_url)
    sources = [repo.SourceDef("wire", "feed", "https://wire.example/f"),
               repo.SourceDef("mss", "feed", "https://mss.example/f", official=True)]
    first = db()
    repo.sync_sources(first, sources)  # inserted, not yet committed
    second = ThreadPoolExecutor(1).submit(_sync_and_commit, db, sources)
    first.commit()
    first.close()
    second.result(timeout=30)
    with db() as session:
        rows = session.execute(select(Source.name, Source.official).order_by(Source.name)).all()
    assert [tuple(row) for row in rows] == [("mss", True), ("wire", False)]
    engine_of(db).dispose()


def _sync_and_commit(db: sessionmaker[Session], sources: list[repo.SourceDef]) -> None:
    with db.begin() as session:
        repo.sync_sources(session, sources)
