"""Archive cost benchmark (issue 18): what keeping the bytes of each article costs.

Stores every article page of the shared corpus (`html/manifest.csv`: real pages in English,
Chinese, Arabic, Japanese…) as an archived capture in a fresh SQLite database, through
`storage.archive.keep` (zlib, as the crawler stores them), and prints per page: raw bytes
(the anchor: what storing them uncompressed would cost), stored (compressed) bytes, and the
database file's growth, with the projection for 100,000 articles; last line one JSON object.

    python -m bench.archive [--corpus PATH] [--limit N]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from basis.clock import utcnow  # noqa: E402
from storage import archive  # noqa: E402
from storage.db import engine_of, open_database  # noqa: E402

PLACES = (os.environ.get("MEDIAWATCH_CORPUS"), Path(__file__).resolve().parents[2] / "shared"
          / "corpus", "/work/shared/corpus")


def corpus_pages(corpus: Path, limit: int | None) -> list[tuple[str, bytes]]:
    with open(corpus / "html" / "manifest.csv", newline="", encoding="utf-8") as rows:
        files = [(row["url"], corpus / "html" / row["html_file"]) for row in csv.DictReader(rows)]
    return [(url, path.read_bytes()) for url, path in files[:limit]]


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def measure(pages: list[tuple[str, bytes]], folder: Path) -> dict[str, float]:
    path = folder / "archive.db"
    db = open_database(f"sqlite:///{path}")
    checkpoint = text("PRAGMA wal_checkpoint(TRUNCATE)")
    with engine_of(db).connect() as connection:
        connection.execute(checkpoint)
    before = db_bytes(path)
    started = time.process_time()
    with db.begin() as session:
        stored = [len(archive.keep(session, archive.NewCapture(
            url, 200, (("Content-Type", "text/html"),), body, utcnow())).body)
            for url, body in pages]
    seconds = time.process_time() - started
    with engine_of(db).connect() as connection:
        connection.execute(checkpoint)
    raw = [len(body) for _, body in pages]
    return {"pages": len(pages), "raw_mean": statistics.mean(raw),
            "raw_median": statistics.median(raw), "stored_mean": statistics.mean(stored),
            "stored_median": statistics.median(stored), "ratio": sum(raw) / sum(stored),
            "db_growth_per_page": (db_bytes(path) - before) / len(pages),
            "ms_per_page": 1000 * seconds / len(pages)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="the shared corpus folder")
    parser.add_argument("--limit", type=int, help="only the first N pages")
    args = parser.parse_args()
    corpus = args.corpus or next((Path(p) for p in PLACES if p and
                                  (Path(p) / "html" / "manifest.csv").is_file()), None)
    if corpus is None:
        print("no corpus found: pass --corpus or set MEDIAWATCH_CORPUS", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        result = measure(corpus_pages(corpus, args.limit), Path(folder))
    kb = 1024
    print(f"pages            {result['pages']}")
    print(f"raw (anchor)     mean {result['raw_mean'] / kb:.1f} KB, "
          f"median {result['raw_median'] / kb:.1f} KB per page")
    print(f"stored (zlib)    mean {result['stored_mean'] / kb:.1f} KB, "
          f"median {result['stored_median'] / kb:.1f} KB per page: "
          f"{result['ratio']:.1f}x smaller")
    print(f"database growth  {result['db_growth_per_page'] / kb:.1f} KB per page: "
          f"{result['db_growth_per_page'] * 100_000 / kb ** 3:.2f} GB per 100,000 articles")
    print(f"time             {result['ms_per_page']:.2f} ms CPU per page (hash, compress, insert)")
    print(json.dumps({"bench": "archive", **{k: round(v, 2) for k, v in result.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
