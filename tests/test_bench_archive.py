"""Smoke test of the archive benchmark: a small run over the shared corpus, its JSON line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_corpus import CORPUS

pytestmark = [pytest.mark.bench, pytest.mark.skipif(CORPUS is None, reason="no shared corpus")]
REPO = Path(__file__).resolve().parents[1]


def test_bench_archive_small_run() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.archive", "--corpus", str(CORPUS),
                           "--limit", "20"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "archive" and result["pages"] == 20
    assert result["stored_mean"] < result["raw_mean"] and result["db_growth_per_page"] > 0
