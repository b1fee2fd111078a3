"""Smoke test of the reading room benchmark: a tiny generated database, a few requests per
page, its table and JSON line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.long(15)]
REPO = Path(__file__).resolve().parents[1]


def test_bench_web_small_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.web", "--articles", "2000",
                           "--stories", "200", "--sources", "10", "--requests", "3",
                           "--cache", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["bench"] == "web" and result["target_p95_ms"] == 100
    assert (result["articles"], result["stories"], result["sources"]) == (2000, 200, 10)
    assert result["failures"] == 0 and "generated in" in lines[0]
    assert result["anchor"]["select_1_ms"] > 0 and result["anchor"]["signin_ms"] > 0
    assert "today" in result["pages"]  # on main since the frame; the others as they land
    assert set(result["pages"]) | set(result["skipped"]) == {
        "today", "topic", "story", "article", "sources", "alerts", "query"}
    for figures in result["pages"].values():
        assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert result["met"] == (not result["skipped"] and all(
        p["p95_ms"] <= 100 for p in result["pages"].values()))
    assert any(line.startswith("today ") for line in lines)  # the table
    again = subprocess.run([sys.executable, "-m", "bench.web", "--articles", "2000",
                            "--stories", "200", "--sources", "10", "--requests", "1",
                            "--cache", str(tmp_path)], cwd=REPO, capture_output=True,
                           text=True, timeout=120, check=False)
    assert again.returncode == 0 and "; cached)" in again.stdout.splitlines()[0]
