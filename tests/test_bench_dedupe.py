"""Smoke test of the dedupe benchmark: a small run end to end, its JSON line and quality."""
from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench,  # a smoke run of a benchmark: `pytest -m "not bench"` skips it
              pytest.mark.skipif(not (find_spec("datasketch") and find_spec("rensa")),
                                 reason="the baselines (datasketch, rensa) are not installed")]

REPO = Path(__file__).resolve().parents[1]


def test_bench_dedupe_small_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.dedupe", "--n", "400", "--baseline-n", "100"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("bench", "n", "articles_per_s", "baseline_per_s", "ratio", "peak_rss_mb"):
        assert key in result, key
    assert result["bench"] == "dedupe"
    assert result["n"] == 400
    assert result["articles_per_s"] > 0
    assert result["baseline_per_s"] > 0
    assert result["peak_rss_mb"] > 0
    assert result["precision"] >= 0.95
    assert result["recall"] >= 0.95
