"""Smoke test of the daemon benchmark: a small run end to end (a real daemon against generated
feeds on the fixture server), its table and its JSON line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench,  # a smoke run of a benchmark: `pytest -m "not bench"` skips it
              pytest.mark.long(40)]

REPO = Path(__file__).resolve().parents[1]
REQUIRED = ("bench", "sources", "polls", "cpu_ms_per_unchanged_poll", "feedparser_parse_ms",
            "rss_mb_start", "rss_mb_end", "alert_latency_p50_s", "alert_latency_p95_s",
            "alerts_measured", "smtp_send_ms", "healthz_heavy_max_ms", "healthz_idle_max_ms")


def test_bench_daemon_small_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.daemon", "--sources", "10", "--minutes", "0.2",
         "--every", "5s", "--settle", "2", "--alerts", "6", "--alert-gap", "0.2", "--heavy", "40"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    for key in REQUIRED:
        assert key in result, key
    assert result["bench"] == "daemon"
    assert result["sources"] == 10
    assert result["polls"] > 0
    assert result["unchanged_polls"] > 0  # after the warm-up every poll is a 304
    assert result["cpu_ms_per_unchanged_poll"] > 0
    assert result["feedparser_parse_ms"] > 0
    assert result["rss_mb_start"] > 0 and result["rss_mb_end"] > 0
    assert result["exit_code"] == 0  # the daemon stopped cleanly on SIGTERM
    assert result["alerts_measured"] == 6 and result["alerts_missing"] == 0
    assert 0 < result["alert_latency_p50_s"] <= result["alert_latency_p95_s"]
    assert result["smtp_send_ms"] > 0
    assert result["heavy_poll_items"] == 40 and result["heavy_poll_seen"]
    assert result["healthz_heavy_max_ms"] > 0 and result["healthz_idle_max_ms"] > 0
    table = "\n".join(lines[:-1])
    for row in ("CPU per unchanged poll", "anchor: feedparser.parse", "samples", "/healthz",
                "alert latency", "anchor: SMTP send", "/healthz during a heavy poll",
                "anchor: /healthz idle"):
        assert row in table, row
