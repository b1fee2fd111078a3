"""The near-duplicate index in memory vs shared through the database (`lsh_bands`), on
SQLite and PostgreSQL. A database is filled with N articles of bench/dedupe.py's generator
(10% near-copies) first seen over the last 29 days, with their sketches and band keys, as
the crawler leaves them. Then, in a fresh process per index: the crawler's first placement
(the in-memory index loads every sketch of the window; the shared one nothing), RSS before
and after it, and M more articles of the generator stored one by one as the ingest step
stores them (`repo.add_article` placed by `RecentArticles`, one transaction each): wall and
CPU ms per article, their duplicate decisions against the generator's truth, and RSS at
the end. Last line: one JSON object.

    python -m bench.shared_index [--n 20000] [--m 500] [--seed 7] [--backends sqlite,postgresql]

PostgreSQL: MEDIAWATCH_TEST_PG (an admin URL, as the tests use) names the server; a
database is created for each backend and dropped after it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dedupe import CHUNK, World, rss_mb  # noqa: E402

PG_ADMIN = os.environ.get("MEDIAWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MODES = ("memory", "shared")
SPAN = timedelta(days=29)  # within the 30-day window


def fill(url: str, n: int, seed: int) -> dict:
    """(A child process.) Articles 1..n stored with their sketches and band keys, first
    seen over the last 29 days, copies under their originals."""
    from sqlalchemy import insert, text

    from basis.clock import utcnow
    from crawler.stages.dedupe import band_keys, dump_sketch, sketch
    from crawler.stages.normalize import text_fingerprint
    from storage import repository as repo
    from storage.db import open_database
    from storage.models import Article

    db, world, now = open_database(url), World(seed), utcnow()
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("bench", "feed", "https://bench.example/")])
        source_id = repo.source_by_name(session, "bench").id
    for start in range(1, n + 1, CHUNK):
        rows, bands = [], []
        for i in range(start, min(n + 1, start + CHUNK)):
            article, seen = world.article(i), now - SPAN * (1 - i / n) - timedelta(hours=1)
            minhash = sketch(article.text)
            rows.append({"id": i, "url": f"https://bench.example/{i}",
                         "canonical_url": f"https://bench.example/{i}", "source_id": source_id,
                         "title": f"Article {i}", "text": article.text, "summary": "",
                         "language": article.lang, "published_at": seen,
                         "date_is_estimated": True, "first_seen_at": seen,
                         "text_hash": text_fingerprint(article.text),
                         "sketch": dump_sketch(minhash) if minhash else None,
                         "duplicate_of": article.original})
            if minhash is not None:
                bands.append((i, seen, band_keys(minhash)))
        with db.begin() as session:
            session.execute(insert(Article), rows)
            repo.add_bands(session, bands)
    with db.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("select setval(pg_get_serial_sequence('articles', 'id'), :n)"),
                            {"n": n})
    return {"filled": n}


def run(url: str, shared: bool, n: int, m: int, seed: int) -> dict:
    """(A child process.) The first placement, then articles n+1..n+m; → the figures."""
    from basis.clock import utcnow
    from crawler.stages.dedupe import sketch
    from crawler.stages.normalize import text_fingerprint
    from crawler.stages.placement import RecentArticles
    from storage import repository as repo
    from storage.db import open_database

    db, world = open_database(url), World(seed)
    for i in range(1, 9):  # tables and patterns are built once per process
        sketch(world.article(i).text)
    recent, row_of, predicted = RecentArticles(shared=shared), {}, {}
    rss_start, t0 = rss_mb()[0], time.perf_counter()
    with db() as session:
        recent.sync(session, utcnow())
    first_s, rss_synced = time.perf_counter() - t0, rss_mb()[0]
    wall = cpu = 0.0
    for i in range(n + 1, n + m + 1):
        article = world.article(i)
        new = repo.NewArticle(
            url=f"https://bench.example/{i}", canonical_url=f"https://bench.example/{i}",
            seen_url=f"https://bench.example/{i}", title=f"Article {i}", text=article.text,
            summary="", language=article.lang, published_at=None, date_is_estimated=True,
            text_hash=text_fingerprint(article.text), title_key=None)
        t0, c0 = time.perf_counter(), time.process_time()
        row_of[i], predicted[i] = store(db, recent, new)
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
    truth = {i: row_of.get(world.article(i).original or i, world.article(i).original)
             for i in row_of}  # (an original among the first n: its id is its number)
    said = {i for i in row_of if predicted[i] != row_of[i]}
    copies = {i for i in row_of if truth[i] != row_of[i]}
    right = {i for i in said & copies if predicted[i] == truth[i]}
    return {"backend": url.split(":", 1)[0].split("+")[0], "index": "shared" if shared
            else "memory", "n": n, "m": m, "rss_start_mb": round(rss_start, 1),
            "first_placement_s": round(first_s, 2), "rss_after_first_mb": round(rss_synced, 1),
            "rss_end_mb": round(rss_mb()[0], 1), "sketches_in_memory": len(recent.copies),
            "wall_ms_per_article": round(wall * 1000 / m, 2),
            "cpu_ms_per_article": round(cpu * 1000 / m, 2),
            "precision": round(len(right) / max(1, len(said)), 4),
            "recall": round(len(right) / max(1, len(copies)), 4)}


def store(db, recent, new) -> tuple[int, int]:  # noqa: ANN001
    """As the ingest step stores an article (`crawler.engine.ingest.Ingest.store`).
    → (its id, its original's id)"""
    from basis.clock import utcnow
    from storage import repository as repo

    assessed = []
    with db.begin() as session:

        def place() -> repo.Placement:
            assessed.append(recent.assess(session, new, "bench", utcnow()))
            return assessed[0].placement

        stored, created = repo.add_article(session, new, "bench", place)
        found = stored.id, stored.duplicate_of or stored.id
    if created:
        recent.remember(stored, "bench", assessed[0])
    return found


def backend_runs(backend: str, n: int, m: int, seed: int) -> list[dict]:
    """Fill a fresh database, then one run per index on a copy of it (each index stores
    the same M articles into the same N)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for mode in MODES:
            name = f"mw_bench_{uuid.uuid4().hex[:12]}"
            url = f"sqlite:///{folder}/{name}.db" if backend == "sqlite" else \
                PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            if backend != "sqlite":
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                child(["--fill", url], n, m, seed)
                runs.append(child(["--child", url, mode], n, m, seed))
            finally:
                if backend != "sqlite":
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    return runs


def child(args: list[str], n: int, m: int, seed: int) -> dict:
    """One step in a fresh process (so its RSS is its own). → its JSON line"""
    out = subprocess.run([sys.executable, "-m", "bench.shared_index", *args, "--n", str(n),
                          "--m", str(m), "--seed", str(seed)], check=True, capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parents[1]).stdout
    return json.loads(out.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--m", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--child", nargs=2, metavar=("URL", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--fill", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fill:
        print(json.dumps(fill(args.fill, args.n, args.seed)))
        return 0
    if args.child:
        print(json.dumps(run(args.child[0], args.child[1] == "shared", args.n, args.m,
                             args.seed)))
        return 0
    runs = [r for backend in args.backends.split(",")
            for r in backend_runs(backend, args.n, args.m, args.seed)]
    print(f"{'backend':<11}{'index':<8}{'RSS start':>10}{'1st place':>10}{'RSS then':>9}"
          f"{'RSS end':>9}{'ms/article':>11}{'CPU ms':>8}{'P':>7}{'R':>7}")
    for r in runs:
        print(f"{r['backend']:<11}{r['index']:<8}{r['rss_start_mb']:>10}"
              f"{r['first_placement_s']:>9}s{r['rss_after_first_mb']:>9}{r['rss_end_mb']:>9}"
              f"{r['wall_ms_per_article']:>11}{r['cpu_ms_per_article']:>8}"
              f"{r['precision']:>7}{r['recall']:>7}")
    print(json.dumps({"bench": "shared_index", "n": args.n, "m": args.m, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
