"""Scale-out benchmark: 1, 2 and 3 members of one deployment (`queue:` on PostgreSQL + Redis)
against N feed sources, next to the single-process daemon measured in the same run.

Generates N small RSS feeds (`--items` each, none by default: the point is the unchanged
polls after the first; with items, each first poll stores them, a corpus) and serves them
from the fixture web server in its own process (bench.daemon's machinery), spread over
`--hosts` host names that the server answers as a forward proxy (each host its own download
slot and politeness budget, as real outlets).
Starts its own PostgreSQL and Redis (tests/services.py: never the shared ones) with one fresh
database, then:

1. the anchor: one `mediawatch run` without `queue:` polls every source once (the warm-up,
   every first poll a 200, storing its items if any), then is measured for `--minutes`: from then on
   every poll is unchanged (a 304);
2. for each count in `--members` (1,2,3): that many `mediawatch run` processes with `queue:`
   on the same (warm) database and a Redis started empty; after `--settle` seconds (by
   default one interval and 5 s: the sources that fell due while no daemon ran are back on
   their schedule), measured for `--minutes`, then stopped with SIGTERM.
   (The anchor is measured `--settle` seconds after its warm-up, 5 by default.)

Every source is `every: 1m` (`--every`), `follow: false`, `daemon.startup_spread` one
interval (first polls spread evenly), `crawl.poll_deadline: 30s`, `obey_robots: false`.

Per run, over its window:
  polls/s                  crawl_runs finished in the window / its length
  lateness p50/p95         a poll's crawl_runs.started_at − the time its source was due: each
                           daemon runs under a thin wrapper (`--member`) that writes down the
                           scheduled time of every poll job its APScheduler runs (only the
                           leader's with a queue); a poll is matched to its source's latest
                           due time before it started
  CPU ms / unchanged poll  the members' CPU time (utime + stime, /proc/PID/stat, every thread)
                           over the window / the unchanged polls finished in it; everything a
                           member does is charged to the polls (scheduling, offering, Redis
                           round trips, dispatch ticks, /healthz). Redis' own CPU is shown
                           beside it, not added
  RSS                      each member's at the window's start and end (MB)
  reclaimed                mediawatch_polls_reclaimed_total summed over the members

Targets: CPU per unchanged poll with the queue ≤ 1.3× the single daemon's; p95 lateness ≤ 5 s
with 3 members; RSS flat (each member within 10% of its window-start RSS). Prints progress on
stderr, a table per run, and as its last line one JSON object.

    python -m bench.scale [--sources 3000] [--minutes 3] [--every 1m] [--members 1,2,3]
                          [--hosts 100] [--items 0] [--settle S] [--keep DIR]
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.daemon import (  # noqa: E402
    REPO,
    cpu_seconds,
    fail,
    feed_url,
    free_port,
    generate,
    in_folder,
    interval_seconds,
    launch,
    memory_mb,
    pct,
    start_server,
    wait_up,
)

CPU_RATIO_TARGET = 1.3  # CPU per unchanged poll with the queue, × the single daemon's
LATENESS_TARGET_S = 5.0  # p95, with 3 members
RSS_FLAT = 0.10  # a member's RSS at the window's end within this share of its start
_RECLAIMED = re.compile(r"^mediawatch_polls_reclaimed_total (\S+)$", re.M)
Say = Callable[[str], None]


# ---------------------------------------------------------------- the member (child)

def member_main(due_file: Path, argv: list[str]) -> int:
    """`mediawatch ARGV`, writing `poll:NAME EPOCH` to `due_file` for every poll job its
    APScheduler runs (EPOCH: the time the job was scheduled at, jitter included)."""
    import apscheduler.executors.twisted as executor

    from crawler.cli import main

    out, lock = due_file.open("a", buffering=1, encoding="utf-8"), threading.Lock()
    plain = executor.run_job

    def run_job(job: Any, store: str, run_times: list[datetime], logger: str) -> Any:
        if job.id.startswith("poll:"):
            with lock:
                out.write(f"{job.id} {run_times[-1].timestamp():.3f}\n")
        return plain(job, store, run_times, logger)

    executor.run_job = run_job  # type: ignore[assignment]
    try:
        main(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def due_times(files: list[Path]) -> dict[str, list[float]]:
    """Source → the sorted times its polls were due, from the members' due files."""
    found: dict[str, list[float]] = {}
    for path in files:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                job, _, when = line.partition(" ")
                if when:
                    found.setdefault(job.removeprefix("poll:"), []).append(float(when))
    return {name: sorted(times) for name, times in found.items()}


# ---------------------------------------------------------------- members

@dataclass
class Member:
    process: subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:PORT
    log: Path
    due: Path


def write_config(path: Path, base: str, feeds: list[str], every: str, hosts: int,
                 queue: str | None) -> None:
    import yaml

    document: dict[str, Any] = {
        "crawl": {"allow_private": True, "obey_robots": False, "poll_deadline": "30s"},
        "daemon": {"startup_spread": every},
        "sources": [{"name": f"src-{i:04d}", "kind": "feed",
                     "url": feed_url(base, feed, i, hosts), "every": every, "follow": False,
                     "language": "en"} for i, feed in enumerate(feeds, 1)]}
    if queue:
        document["queue"] = queue
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def start_members(count: int, label: str, config: Path, db: str, work: Path, proxy: str | None,
                  running: list[subprocess.Popen[bytes]]) -> list[Member]:
    members = []
    for n in range(1, count + 1):
        listen = f"127.0.0.1:{free_port()}"
        stem = work / f"{label.replace(' ', '-')}-{n}"
        log, due = stem.with_suffix(".log"), stem.with_suffix(".due")
        process = launch([sys.executable, "-m", "bench.scale", "--member", str(due), "--",
                          "--config", str(config), "--db", db, "run", "--listen", listen],
                         log, running, proxy)
        members.append(Member(process, f"http://{listen}", log, due))
    for member in members:
        wait_up(member.process, member.base, member.log)
    return members


def stop_members(members: list[Member]) -> list[int]:
    for member in members:
        member.process.send_signal(signal.SIGTERM)
    codes = []
    for member in members:
        try:
            codes.append(member.process.wait(timeout=90))
        except subprocess.TimeoutExpired:
            member.process.kill()
            codes.append(member.process.wait())
    return codes


def get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def role_of(member: Member) -> str:
    status, body = get(f"{member.base}/healthz")
    try:
        return str(json.loads(body).get("role", "?")) if status else "down"
    except ValueError:
        return "?"


def reclaimed_by(members: list[Member]) -> int:
    total = 0.0
    for member in members:
        status, body = get(f"{member.base}/metrics", timeout=30)
        if status == 200 and (m := _RECLAIMED.search(body)):
            total += float(m[1])
    return int(total)


# ---------------------------------------------------------------- the database

def crawl_runs(db: str, since: float) -> list[tuple[str, float, float | None, str]]:
    """(source, started, finished, status) of the polls started since `since` (epoch)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "select s.name, r.started_at, r.finished_at, r.status from crawl_runs r "
                "join sources s on s.id = r.source_id where r.started_at >= :since"),
                {"since": datetime.fromtimestamp(since, timezone.utc).replace(tzinfo=None)})
            return [(name, _epoch(started), _epoch(finished) if finished else None, status)
                    for name, started, finished, status in rows]
    finally:
        engine.dispose()


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def warm_up(db: str, sources: int, members: list[Member], since: float, timeout: float,
            say: Say) -> None:
    """Until every source had a poll that stored its items (ok or warning)."""
    deadline = time.monotonic() + timeout
    while True:
        for member in members:
            if member.process.poll() is not None:
                raise fail(f"a daemon exited with status {member.process.returncode}",
                           member.log)
        polled = {name for name, _, _, status in crawl_runs(db, since)
                  if status in ("ok", "warning")}
        if len(polled) >= sources:
            return
        if time.monotonic() > deadline:
            raise fail(f"warm-up: only {len(polled)} of {sources} sources polled in "
                       f"{timeout:.0f} s", members[0].log)
        say(f"  warm-up: {len(polled)}/{sources} sources polled")
        time.sleep(2)


# ---------------------------------------------------------------- one run

@dataclass
class Run:
    label: str
    members: int  # 0: the single daemon, no queue
    window_s: float = 0.0
    polls: int = 0
    unchanged: int = 0
    others: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    lateness: list[float] = field(default_factory=list)  # sorted, seconds
    unmatched: int = 0  # polls with no due time before them
    rss: list[tuple[float, float]] = field(default_factory=list)  # per member: start, end
    reclaimed: int = 0
    roles: list[str] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)

    @property
    def polls_per_s(self) -> float:
        return self.polls / self.window_s if self.window_s else 0.0

    @property
    def cpu_ms_per_poll(self) -> float:
        return self.cpu_s * 1000 / self.unchanged if self.unchanged else 0.0

    @property
    def rss_flat(self) -> bool:
        return all(end <= start * (1 + RSS_FLAT) for start, end in self.rss)


def measure(run: Run, members: list[Member], db: str, window: float, redis_pid: int | None,
            say: Say) -> None:
    """CPU and RSS of every member (and Redis' CPU) at both ends of the window; the polls
    that finished in it, from crawl_runs; their lateness against the due times."""
    pids = [m.process.pid for m in members]
    cpu0 = [cpu_seconds(pid)[0] for pid in pids]
    rss0 = [memory_mb(pid)[0] for pid in pids]
    redis0 = cpu_seconds(redis_pid)[0] if redis_pid else 0.0
    t0 = time.time()
    while (left := window - (time.time() - t0)) > 0:
        time.sleep(min(10.0, left))
        for member in members:
            if member.process.poll() is not None:
                raise fail(f"a member exited with status {member.process.returncode}",
                           member.log)
        say(f"  {time.time() - t0:5.0f} s of {window:.0f}")
    cpu1 = [cpu_seconds(pid)[0] for pid in pids]
    rss1 = [memory_mb(pid)[0] for pid in pids]
    t1 = time.time()
    run.redis_cpu_s = cpu_seconds(redis_pid)[0] - redis0 if redis_pid else 0.0
    run.window_s, run.cpu_s = t1 - t0, sum(cpu1) - sum(cpu0)
    run.rss = list(zip(rss0, rss1, strict=True))
    run.roles = [role_of(m) for m in members]
    run.reclaimed = reclaimed_by(members) if run.members else 0
    time.sleep(1)  # the polls finished at t1 are stored
    dues = due_times([m.due for m in members])
    lateness = []
    for name, started, finished, status in crawl_runs(db, t0 - 120):
        if finished is None or not t0 <= finished <= t1:
            continue
        run.polls += 1
        if status == "unchanged":
            run.unchanged += 1
        else:
            run.others[status] = run.others.get(status, 0) + 1
        times = dues.get(name, [])
        at = bisect.bisect_right(times, started + 0.001) - 1
        if at < 0:
            run.unmatched += 1
        else:
            lateness.append(started - times[at])
    run.lateness = sorted(lateness)


def run_members(run: Run, config: Path, db: str, work: Path, proxy: str | None,
                window: float, settle: float, redis_pid: int | None, sources: int,
                warmup_timeout: float, running: list[subprocess.Popen[bytes]],
                say: Say) -> None:
    started = time.time()
    members = start_members(max(run.members, 1), run.label, config, db, work, proxy, running)
    say(f"{run.label}: {len(members)} daemon(s) up (pids "
        f"{', '.join(str(m.process.pid) for m in members)})")
    try:
        if run.members == 0:
            warm_up(db, sources, members, started, warmup_timeout, say)
            say(f"  warm-up done in {time.time() - started:.0f} s")
        say(f"  settling {settle:.0f} s, then measuring {window:.0f} s")
        time.sleep(settle)
        measure(run, members, db, window, redis_pid, say)
    finally:
        run.exit_codes = stop_members(members)


# ---------------------------------------------------------------- report

def rows_of(run: Run, single: Run | None) -> list[tuple[str, str]]:
    lat = run.lateness
    ratio = run.cpu_ms_per_poll / single.cpu_ms_per_poll if single and \
        single.cpu_ms_per_poll else 0.0
    rows = [
        ("run", run.label + ("" if run.members else " (the anchor: no queue)")),
        ("window", f"{run.window_s:.1f} s"),
        ("polls", f"{run.polls:,} finished, {run.polls_per_s:.2f}/s; unchanged {run.unchanged:,}"
                  + "".join(f", {k} {v}" for k, v in sorted(run.others.items()))),
        ("lateness", f"p50 {pct(lat, 0.5):.2f} s, p95 {pct(lat, 0.95):.2f} s, max "
                     f"{max(lat, default=0):.2f} s over {len(lat):,} polls"
                     + (f" ({run.unmatched} without a due time before them)"
                        if run.unmatched else "")),
        ("CPU per unchanged poll", f"{run.cpu_ms_per_poll:.2f} ms (members' CPU "
                                   f"{run.cpu_s:.1f} s / unchanged polls)"
                                   + (f"; {ratio:.2f}× the single daemon's" if ratio else "")),
        ("RSS per member", ", ".join(f"{a:.0f} → {b:.0f} MB" for a, b in run.rss)
                           + ("  (flat)" if run.rss_flat else "  (GROWING)")),
        ("exit status", ", ".join(map(str, run.exit_codes)) + " after SIGTERM"),
    ]
    if run.members:
        rows[4:4] = [("Redis CPU per poll", f"{run.redis_cpu_s * 1000 / max(run.polls, 1):.3f} "
                                            "ms (not in the figure above)")]
        rows += [("roles", ", ".join(run.roles)), ("reclaimed polls", str(run.reclaimed))]
    if run.members and single:
        rows.append((f"target CPU ≤ {CPU_RATIO_TARGET}× single",
                     "met" if 0 < ratio <= CPU_RATIO_TARGET else "MISSED"))
    if run.members == 3:
        rows.append((f"target p95 lateness ≤ {LATENESS_TARGET_S:g} s",
                     "met" if lat and pct(lat, 0.95) <= LATENESS_TARGET_S else "MISSED"))
    return rows


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print()


def summary(args: argparse.Namespace, single: Run, runs: list[Run]) -> dict[str, Any]:
    return {
        "bench": "scale", "sources": args.sources, "every": args.every, "hosts": args.hosts,
        "runs": [{"members": r.members, "polls_per_s": round(r.polls_per_s, 3),
                  "lateness_p95_s": round(pct(r.lateness, 0.95), 3),
                  "lateness_p50_s": round(pct(r.lateness, 0.5), 3),
                  "cpu_ms_per_unchanged_poll": round(r.cpu_ms_per_poll, 3),
                  "rss_mb_max": round(max((max(p) for p in r.rss), default=0.0), 1),
                  "rss_mb": [[round(a, 1), round(b, 1)] for a, b in r.rss],
                  "reclaimed": r.reclaimed,
                  "redis_cpu_ms_per_poll": round(r.redis_cpu_s * 1000 / max(r.polls, 1), 3),
                  "polls": r.polls, "unchanged": r.unchanged} for r in runs],
        "single_cpu_ms_per_unchanged_poll": round(single.cpu_ms_per_poll, 3),
        "single_polls_per_s": round(single.polls_per_s, 3),
        "single_lateness_p95_s": round(pct(single.lateness, 0.95), 3),
        "single_rss_mb_max": round(max((max(p) for p in single.rss), default=0.0), 1)}


# ---------------------------------------------------------------- the whole run

def run(args: argparse.Namespace, work: Path) -> int:
    from tests.services import own_postgres, own_redis

    say: Say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    interval = interval_seconds(args.every)
    say(f"generating {args.sources} feeds in {work}")
    feeds = generate(work / "web", args.sources, args.seed, args.items)
    server, base = start_server(work / "web")
    proxy = base if args.hosts > 1 else None
    running: list[subprocess.Popen[bytes]] = []
    single, runs = Run("single daemon", 0), [Run(f"{n} member{'s' * (n > 1)}", n)
                                             for n in args.members]
    try:
        with own_postgres(work) as postgres, own_redis(work) as redis:
            say(f"own PostgreSQL on {postgres.port}, own Redis on {redis.port}")
            plain, queued = work / "single.yaml", work / "queue.yaml"
            write_config(plain, base, feeds, args.every, args.hosts, None)
            write_config(queued, base, feeds, args.every, args.hosts, redis.url)
            run_members(single, plain, postgres.url, work, proxy, args.minutes * 60,
                        5 if args.settle is None else args.settle, None, args.sources,
                        args.warmup_timeout, running, say)
            print_table(rows_of(single, None))
            for each in runs:
                redis.stop()  # each run from an empty queue: nothing left by the last one
                redis.start()
                assert redis.process is not None
                run_members(each, queued, postgres.url, work, proxy, args.minutes * 60,
                            interval + 5 if args.settle is None else args.settle,
                            redis.process.pid, args.sources, args.warmup_timeout, running, say)
                print_table(rows_of(each, single))
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait()
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=10)
    flat = single.rss_flat and all(r.rss_flat for r in runs)
    print(f"RSS flat (each member within {RSS_FLAT:.0%} over its window): "
          + ("met" if flat else "MISSED"))
    print(json.dumps(summary(args, single, runs)))
    return 0 if all(code == 0 for r in (single, *runs) for code in r.exit_codes) else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--member"]:  # a daemon under the due-time wrapper
        rest = argv[2:]
        return member_main(Path(argv[1]), rest[1:] if rest[:1] == ["--"] else rest)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=3000, help="feed sources")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of each window")
    parser.add_argument("--every", default="1m", help="poll interval of every source")
    parser.add_argument("--members", default="1,2,3",
                        help="member counts to run with the queue, comma-separated")
    parser.add_argument("--hosts", type=int, default=100,
                        help="host names the sources are spread over (1: the fixture "
                             "server's own address)")
    parser.add_argument("--items", type=int, default=0,
                        help="items per feed: each first poll stores them (a corpus; its "
                             "warm-up costs ~35 ms of CPU an article)")
    parser.add_argument("--settle", type=float,
                        help="seconds before a window: after the anchor's warm-up (default "
                             "5), after the members' start (default: one interval and 5 s)")
    parser.add_argument("--warmup-timeout", type=float, default=900)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args(argv)
    try:
        args.members = [int(n) for n in args.members.split(",")]
        interval_seconds(args.every)
    except ValueError as exc:
        parser.error(str(exc))
    if args.sources < 1 or args.minutes <= 0 or min(args.members) < 1 or args.hosts < 1:
        parser.error("--sources, --minutes, --members and --hosts must be positive")
    os.chdir(REPO)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # members and servers stopped
    return in_folder(args.keep, "mw-bench-scale-", lambda work: run(args, work))


if __name__ == "__main__":
    sys.exit(main())
