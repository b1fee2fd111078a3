"""The near-duplicate index shared through PostgreSQL (`lsh_bands`): the labeled set placed
as in memory, no sketch held by the process, two processes placing copies of one new story
at the same moment agreeing on one original, articles stored before the index existed
found, and retention."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from crawler.stages.placement import RecentArticles
from storage import repository as repo
from storage.db import open_database
from storage.models import Article, LshBand
from tests.test_dedupe import BY_ID, FIXTURES, TRUE_ORIGINAL, labeled_sources, pair_scores, store

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
ORIGINAL, COPY = BY_ID["zh-typhoon-orig"], BY_ID["zh-typhoon-farm-kuaixun"]


@pytest.fixture
def db(db_url: str):
    return labeled_sources(open_database(db_url))


def bands(db) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(LshBand))


def test_the_labeled_set_through_the_shared_index_holds_no_sketch_in_memory(db) -> None:
    """Duplicate pairs P = R = 1.00, as with the in-memory index, though the process holds
    no sketch: every candidate comes from the database."""
    recent, row_of = RecentArticles(), {}
    for article in FIXTURES:
        row_of[article["id"]] = store(db, recent, article)[0].id
    assert recent.shared and len(recent.copies) == 0
    with db() as session:
        stored = {a.id: a for a in session.scalars(select(Article))}
    original = {key: stored[row].duplicate_of or row for key, row in row_of.items()}
    assert pair_scores(TRUE_ORIGINAL.get, original.get) == (1.0, 1.0, [])
    assert bands(db) == 32 * len(stored)


def test_two_processes_placing_copies_of_one_new_story_at_once_agree_on_one_original(
        db, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first holds the story's band locks (its transaction still open) until the
    second is seen waiting on them in pg_locks; then the second finds the first stored."""
    first_locked = threading.Event()
    lock_bands = repo.lock_bands

    def locking(session, keys) -> None:
        lock_bands(session, keys)
        if threading.current_thread().name.startswith("first"):
            first_locked.set()
            wait_until(lambda: second.done() or waiting_on_bands(db) > 0, "the second to wait")

    def place(name: str, article: dict) -> Article:
        threading.current_thread().name = name
        if name == "second":
            assert first_locked.wait(30)
        return store(db, RecentArticles(), article)[0]

    monkeypatch.setattr(repo, "lock_bands", locking)
    with ThreadPoolExecutor(2) as pool:
        second = pool.submit(place, "second", COPY)  # (named in `locking`)
        first = pool.submit(place, "first", ORIGINAL)
        a, b = first.result(timeout=60), second.result(timeout=60)
    assert (a.duplicate_of, b.duplicate_of) == (None, a.id)


def waiting_on_bands(db) -> int:
    with db() as session:
        return session.scalar(text("select count(*) from pg_locks where locktype = 'advisory' "
                                   "and classid = :space and not granted and database = "
                                   "(select oid from pg_database where datname = current_database())"),
                              {"space": repo.LSH_LOCKS})


def wait_until(ready, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_articles_stored_before_the_shared_index_are_found(db) -> None:
    first, _ = store(db, RecentArticles(shared=False), ORIGINAL)  # an older version's
    assert bands(db) == 0
    copy, created = store(db, RecentArticles(), COPY)
    assert created and copy.duplicate_of == first.id and bands(db) == 64


def test_a_fill_that_fails_is_tried_again(db, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL restarted while the older articles were put in: the next sync puts them
    in, instead of leaving them out of the index for the life of the process."""
    first, _ = store(db, RecentArticles(shared=False), ORIGINAL)
    real, calls = repo.add_bands, []

    def fails_once(session: Session, rows: list) -> None:
        calls.append(len(rows))
        if len(calls) == 1:
            raise OperationalError("insert into lsh_bands", {}, ConnectionError("restarted"))
        return real(session, rows)

    monkeypatch.setattr(repo, "add_bands", fails_once)
    index = RecentArticles()
    with pytest.raises(OperationalError):
        store(db, index, COPY)
    copy, created = store(db, index, COPY)
    assert created and copy.duplicate_of == first.id


def test_retention_forgets_the_bands_with_the_sketches(db) -> None:
    store(db, RecentArticles(), ORIGINAL)
    with db.begin() as session:
        assert repo.forget_sketches(session, datetime.now(timezone.utc) + timedelta(days=1)) == 1
    assert bands(db) == 0
    copy, created = store(db, RecentArticles(), COPY)
    assert created and copy.duplicate_of is None
