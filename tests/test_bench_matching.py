"""Smoke test of the matching benchmark: a small run end to end, its JSON line, and its
check that the matcher gives exactly what naive evaluation gives on the sampled articles."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench  # a smoke run of a benchmark: `pytest -m "not bench"` skips it

REPO = Path(__file__).resolve().parents[1]


def test_bench_matching_small_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.matching", "--rules", "300", "--articles", "600",
         "--naive-sample", "6"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]  # 1 when the matcher and naive differ
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["bench"] == "matching"
    assert (result["rules"], result["articles"], result["naive_sample"]) == (300, 600, 6)
    for key in ("articles_per_s", "naive_per_s", "scan_per_s", "prepare_per_s", "bound_per_s"):
        assert result[key] > 0, key
    assert any(line.startswith("naive (sample)") and "identical" in line for line in lines)
    matches = next(line for line in lines if line.startswith("matches"))
    assert matches.split()[1] != "0", matches  # the rules do match articles
