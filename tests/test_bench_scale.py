"""Smoke test of the scale-out benchmark: the single daemon and two members with the queue,
end to end on their own PostgreSQL and Redis, at a tiny size; its table and its JSON line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench,  # a smoke run of a benchmark: `pytest -m "not bench"` skips it
              pytest.mark.long(35)]

REPO = Path(__file__).resolve().parents[1]
RUN_KEYS = ("members", "polls_per_s", "lateness_p95_s", "lateness_p50_s",
            "cpu_ms_per_unchanged_poll", "rss_mb_max", "reclaimed")


def test_bench_scale_small_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--sources", "10", "--every", "2s", "--minutes",
         "0.06", "--members", "2", "--hosts", "2", "--settle", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["bench"] == "scale" and result["sources"] == 10
    assert result["single_cpu_ms_per_unchanged_poll"] > 0
    [run] = result["runs"]
    assert set(RUN_KEYS) <= set(run) and run["members"] == 2
    assert run["polls_per_s"] > 0 and run["cpu_ms_per_unchanged_poll"] > 0
    assert 0 <= run["lateness_p50_s"] <= run["lateness_p95_s"] < 2  # due every 2 s
    assert run["rss_mb_max"] > 0 and run["reclaimed"] == 0  # nobody died
    table = "\n".join(lines[:-1])
    for row in ("single daemon (the anchor: no queue)", "2 members", "CPU per unchanged poll",
                "lateness", "roles", "target CPU ≤ 1.3× single", "RSS flat"):
        assert row in table, row
    assert "leader" in table and "member" in table
