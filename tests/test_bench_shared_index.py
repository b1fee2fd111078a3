"""Smoke test of the shared-index benchmark: a small run on PostgreSQL, its JSON line, and
the two indexes deciding the same (precision and recall 1.00), the shared one holding no
sketch in memory."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench,  # a smoke run of a benchmark: `pytest -m "not bench"` skips it
              pytest.mark.long(20)]

REPO = Path(__file__).resolve().parents[1]


def test_bench_shared_index_small_run(pg_admin) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.shared_index", "--n", "60", "--m", "30", "--backends", "postgresql"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "shared_index" and result["n"] == 60
    runs = {r["index"]: r for r in result["runs"]}
    assert set(runs) == {"memory", "shared"}
    assert all((r["precision"], r["recall"]) == (1.0, 1.0) for r in runs.values())
    assert runs["memory"]["sketches_in_memory"] > 0 == runs["shared"]["sketches_in_memory"]
    assert all(r["wall_ms_per_article"] > 0 and r["rss_end_mb"] > 0 for r in runs.values())
