"""The near-duplicate index in memory vs shared through the database (`lsh_bands`): N
articles of bench/dedupe.py's generator (10% near-copies) stored one by one as the crawler
stores them (`repo.add_article` placed by `RecentArticles`, in one transaction each), on
SQLite and PostgreSQL, each run in a fresh process on a fresh database. Per run: RSS after
start-up and after the N articles, wall and CPU ms per article, and the duplicate
decisions against the generator's truth. Last line: one JSON object.

    python -m bench.shared_index [--n 20000] [--seed 7] [--backends sqlite,postgresql]

PostgreSQL: MEDIAWATCH_TEST_PG (an admin URL, as the tests use) names the server; a
database is created for each run and dropped after it.
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
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dedupe import World, rss_mb  # noqa: E402

PG_ADMIN = os.environ.get("MEDIAWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MODES = ("memory", "shared")


def run(url: str, shared: bool, n: int, seed: int) -> dict:
    """(A child process.) Store articles 1..n; → its figures."""
    from crawler.stages.dedupe import sketch
    from crawler.stages.normalize import text_fingerprint
    from crawler.stages.placement import RecentArticles
    from storage import repository as repo
    from storage.db import open_database

    db, world = open_database(url), World(seed)
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("bench", "feed", "https://bench.example/")])
    for i in range(1, 9):  # tables and patterns are built once per process
        sketch(world.article(i).text)
    recent, row_of, predicted = RecentArticles(shared=shared), {}, {}
    rss_start, wall, cpu = rss_mb()[0], 0.0, 0.0
    for i in range(1, n + 1):
        article = world.article(i)
        new = repo.NewArticle(
            url=f"https://bench.example/{i}", canonical_url=f"https://bench.example/{i}",
            seen_url=f"https://bench.example/{i}", title=f"Article {i}", text=article.text,
            summary="", language=article.lang, published_at=None, date_is_estimated=True,
            text_hash=text_fingerprint(article.text), title_key=None)
        t0, c0 = time.perf_counter(), time.process_time()
        row_of[i], predicted[i] = store(db, recent, new)
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
    truth = {i: row_of[world.article(i).original or i] for i in row_of}
    said = {i for i in row_of if predicted[i] != row_of[i]}
    copies = {i for i in row_of if truth[i] != row_of[i]}
    right = {i for i in said & copies if predicted[i] == truth[i]}
    return {"backend": url.split(":", 1)[0].split("+")[0], "index": "shared" if shared
            else "memory", "n": n, "rss_start_mb": round(rss_start, 1),
            "rss_end_mb": round(rss_mb()[0], 1), "sketches_in_memory": len(recent.copies),
            "wall_ms_per_article": round(wall * 1000 / n, 2),
            "cpu_ms_per_article": round(cpu * 1000 / n, 2),
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


def child(backend: str, mode: str, n: int, seed: int) -> dict:
    """One run in a fresh process, on a fresh database."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with tempfile.TemporaryDirectory() as folder:
        if backend == "sqlite":
            url = f"sqlite:///{folder}/bench.db"
        else:
            name = f"mw_bench_{uuid.uuid4().hex[:12]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        try:
            out = subprocess.run([sys.executable, "-m", "bench.shared_index", "--child", url,
                                  mode, "--n", str(n), "--seed", str(seed)], check=True,
                                 capture_output=True, text=True,
                                 cwd=Path(__file__).resolve().parents[1]).stdout
        finally:
            if backend != "sqlite":
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    return json.loads(out.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--child", nargs=2, metavar=("URL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run(args.child[0], args.child[1] == "shared", args.n, args.seed)))
        return 0
    runs = [child(backend, mode, args.n, args.seed)
            for backend in args.backends.split(",") for mode in MODES]
    print(f"{'backend':<11}{'index':<8}{'RSS start':>10}{'RSS end':>9}{'ms/article':>11}"
          f"{'CPU ms':>8}{'P':>7}{'R':>7}")
    for r in runs:
        print(f"{r['backend']:<11}{r['index']:<8}{r['rss_start_mb']:>10}{r['rss_end_mb']:>9}"
              f"{r['wall_ms_per_article']:>11}{r['cpu_ms_per_article']:>8}"
              f"{r['precision']:>7}{r['recall']:>7}")
    print(json.dumps({"bench": "shared_index", "n": args.n, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
