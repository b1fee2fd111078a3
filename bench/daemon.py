"""Daemon benchmark: CPU per unchanged-feed poll and memory over time of `mediawatch run`.

Generates N small, realistic RSS 2.0 feeds (10 distinct items each: title, link, guid, date,
author, category, a description of 40-190 words; about 10 KB) in a temporary directory and
serves them from the fixture web server (`tests.webserver`: ETag / Last-Modified, 304 answers)
in a separate process, so that the server's CPU is never counted against the daemon. Then
runs the real daemon as its own process,

    python -m crawler --config CFG --db sqlite:///TMP/bench.db run --listen 127.0.0.1:PORT

with every source `kind: feed`, `every: 1m` (`--every`) and `follow: false` (only the feed
is fetched: the point is the cost of a poll), `crawl.allow_private: true` (loopback) and
`crawl.obey_robots: false` (no robots.txt request per poll to the one fixture host; a real
deployment fetches robots.txt once per host per crawler, so this hardly changes the cost);
no topics or channels but the alert latency's (3.). Log level INFO (the default of `run`:
one line per poll), its output to a file.

1. warm-up: wait until every source was polled once (a 200 that stores the 10 items, not
   "unchanged");
2. measure for `--minutes`: every ~10 s, read together the daemon's CPU time (utime + stime
   of /proc/PID/stat, every thread), its resident memory (/proc/PID/status VmRSS, peak VmHWM)
   and the polls finished so far, by outcome, from the daemon's log line per poll (written
   right after the poll is counted in /metrics); meanwhile probe /healthz every 5 s as a
   liveness probe would. The log is read rather than /metrics because /metrics is rendered in
   the reactor's thread pool, which the poll jobs fill during a burst of polls: a scrape can
   be answered long after the CPU was read (or not at all). /metrics is read once after the
   window, as a cross-check of the counts;
3. alert latency (`--alerts N`, 50 by default): the config also holds a topic and an email
   channel to a real SMTP server (aiosmtpd, in this process); after the window, N new items
   that the topic matches are added, one every `--alert-gap` seconds, each to another feed.
   The fixture server reports when it sent the response that carried each one, the SMTP
   server when its mail arrived: p50 and p95 of the difference over the N alerts (target p95
   ≤ 1 s), next to the anchor of one bare smtplib send to that server;
4. /healthz during a heavy poll (`--heavy N`, 300 by default): the anchor first, /healthz
   latency while the daemon is idle (40 probes 50 ms apart, from this process); then the
   last feed gets N new items at once and /healthz is probed every 50 ms until that poll's
   log line (written once its items are stored): the slowest answer. Storing (dedupe,
   matching, the database: 10-35 ms an item here) runs in a thread of its own; what holds
   the reactor is reading the big feed (the parse and the seen-filter of its links, some
   0.4 s for 300 items). Stored on the reactor, each item held /healthz up for its own
   storing: alike at these small items, very unlike for big article pages (see
   tests/test_storing.py);
5. SIGTERM the daemon and check that it exits with status 0.

CPU per unchanged poll = the daemon's CPU during the window / the unchanged polls finished in
it. Everything the process does in the window is charged to the polls: the scheduler, the
alert dispatch job (every 5 s), source health, the /healthz probes, the log line: an honest
upper bound on the cost of a poll (the table shows the CPU spent in stretches of the window
where no poll finished). Next to it, the anchor measured in the same run (in this process,
before the daemon starts): one bare `feedparser.parse` of one of the generated feeds, median
CPU time of many runs (`time.process_time`). Target: an unchanged poll (304) under 5 ms of
CPU; memory flat over the window.

Prints progress on stderr, a table, and as its last line one JSON object.

    python -m bench.daemon [--sources 500] [--minutes 3] [--every 1m] [--hosts 1]
                           [--alerts 50] [--alert-gap 0.5] [--heavy 300] [--seed 11]
                           [--keep DIR]
                           [--profile FILE]

`--hosts N` spreads the sources over N host names (`feeds-0001.bench.test` …) that the fixture
server answers as a forward proxy (`http_proxy` set for the daemon): each host is its own
Scrapy download slot (per-host concurrency, AutoThrottle), as with real outlets. By default
every source is on the fixture server's one loopback address.

`--profile FILE`: after the measured run, the daemon is started again on the same (warm)
database, every poll a 304, and cProfile is switched on (by signal, after start-up) for
another `--minutes` in its main thread and around every work item of its thread pool, each
timed by its thread's own CPU clock; the merged statistics go to FILE and a second table
shows where the CPU of a poll goes. The measured figures come from the unprofiled daemon.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.matching import EN_DOMAIN, EN_FUNCTION, Zipf, _pseudo_words  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 5.0  # CPU per unchanged poll
ITEMS = 10  # per feed
SAMPLE_EVERY = 10.0  # seconds between RSS / CPU samples in the window
PROBE_EVERY, PROBE_TIMEOUT = 5.0, 10.0  # /healthz, as a liveness probe would
QUICK_PROBES, QUICK_EVERY = 40, 0.05  # /healthz while idle (the heavy poll's anchor)
ANCHOR_RUNS = 200  # feedparser.parse runs of the anchor (the median is reported)
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
OUTLETS = ["Valley Courier", "Harbour Herald", "Meridian Times", "Asia Ledger", "Northern Post",
           "Capital Observer", "Strait Review", "Pacific Monitor", "Daily Sentinel",
           "Coastal Chronicle"]
SECTIONS = ["Politics", "World", "Security", "Technology", "Business", "Education", "Opinion"]
PROBE = re.compile(rb"mwprobe\d{4}")  # a new item the bench topic matches
_POLLS = re.compile(r'^mediawatch_polls_total\{source="([^"]+)",status="([^"]+)"\} (\S+)$')
_POLL_LINE = re.compile(r"mediawatch\.daemon: (\S+): (ok|warning|unchanged|failed|deferred) "
                        r"\(HTTP [^)]*\) .* in ([0-9.]+)s")


# ---------------------------------------------------------------- the feeds

class Words:
    """A Zipf-distributed English-like vocabulary (function words, news words, pseudo-words)."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"daemon/{seed}/words")
        domain = list(dict.fromkeys(EN_DOMAIN))
        pseudo = _pseudo_words(rng, 5000, set(domain) | set(EN_FUNCTION))
        background = pseudo[:]
        for word in domain:
            background.insert(rng.randrange(0, 1500), word)
        self.background = Zipf(background, s=1.0, offset=20)
        self.function = Zipf(EN_FUNCTION, s=0.9, offset=1)

    def sentence(self, rng: random.Random) -> str:
        n = rng.randint(8, 24)
        words = [f if rng.random() < 0.42 else b
                 for f, b in zip(self.function.draw(rng, n), self.background.draw(rng, n),
                                 strict=True)]
        return " ".join(words).capitalize() + "."

    def title(self, rng: random.Random) -> str:
        return " ".join(w.capitalize() for w in self.background.draw(rng, rng.randint(5, 10)))


def feed_xml(words: Words, seed: int, i: int, now: datetime, items: int = ITEMS) -> bytes:
    """Feed i: an outlet's RSS 2.0 with `items` distinct items, newest first (pure in seed,
    i)."""
    rng = random.Random(f"daemon/{seed}/feed/{i}")
    outlet = f"{rng.choice(OUTLETS)} {i}"
    host = f"news{i}.example.com"
    entries = []
    when = now - timedelta(minutes=rng.randint(5, 90))
    for j in range(items):
        title = words.title(rng)
        slug = "-".join(title.lower().split()[:6])
        link = f"https://{host}/2026/{rng.choice(SECTIONS).lower()}/{slug}-{i}-{j}.html"
        paragraphs = ["<p>" + " ".join(words.sentence(rng) for _ in range(rng.randint(2, 4)))
                      + "</p>" for _ in range(rng.randint(1, 2))]
        entries.append(
            "    <item>\n"
            f"      <title>{escape(title)}</title>\n"
            f"      <link>{link}</link>\n"
            f'      <guid isPermaLink="true">{link}</guid>\n'
            f"      <pubDate>{format_datetime(when)}</pubDate>\n"
            f"      <dc:creator>{escape(words.title(rng)[:30])}</dc:creator>\n"
            f"      <category>{rng.choice(SECTIONS)}</category>\n"
            f"      <description>{escape(''.join(paragraphs))}</description>\n"
            "    </item>\n")
        when -= timedelta(minutes=rng.randint(10, 240))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom">\n'
        "  <channel>\n"
        f"    <title>{escape(outlet)}</title>\n"
        f"    <link>https://{host}/</link>\n"
        f'    <atom:link href="https://{host}/feed.xml" rel="self" '
        'type="application/rss+xml"/>\n'
        f"    <description>Latest news from {escape(outlet)}</description>\n"
        "    <language>en</language>\n"
        f"    <lastBuildDate>{format_datetime(now)}</lastBuildDate>\n"
        "    <ttl>15</ttl>\n"
        + "".join(entries) +
        "  </channel>\n"
        "</rss>\n").encode()


def generate(root: Path, n: int, seed: int, items: int = ITEMS) -> list[str]:
    """Write feeds/src-NNNN.xml under root, `items` items each. → their paths, relative to
    root"""
    words, now = Words(seed), datetime.now(timezone.utc).replace(microsecond=0)
    paths = []
    for i in range(1, n + 1):
        path = f"feeds/src-{i:04d}.xml"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(feed_xml(words, seed, i, now, items))
        paths.append(path)
    return paths


# ---------------------------------------------------------------- the fixture server (child)

def serve(root: Path) -> int:
    """Serve root with tests.webserver until stdin closes; the first stdout line is the URL."""
    from tests import webserver

    # `serve_file` only answers files under the module's ROOT, whatever `start(root)` says
    webserver.ROOT = root
    plain_reply = webserver.Handler.reply

    def reply(handler: Any, status: int, body: bytes, *rest: Any) -> None:
        """Each probe in a body, with the time its response was sent (for the parent)."""
        plain_reply(handler, status, body, *rest)
        if status == 200:
            sent = time.time()
            for marker in set(PROBE.findall(body)):
                print(f"served {marker.decode()} {sent:.6f}", flush=True)

    webserver.Handler.reply = reply  # type: ignore[method-assign]
    web, server = webserver.start(root)
    print(web.base, flush=True)
    sys.stdin.read()  # the parent closes it (or dies)
    server.shutdown()
    return 0


def start_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "bench.daemon", "--serve", str(root)],
                               cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    base = process.stdout.readline().strip()
    if not base.startswith("http://"):
        process.kill()
        raise SystemExit(f"the fixture server did not start (said {base!r})")
    return process, base


class Served(threading.Thread):
    """The fixture server's `served PROBE TIME` lines: when the first response carrying
    each probe was sent (wall clock)."""

    def __init__(self, server: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.times: dict[str, float] = {}

    def run(self) -> None:
        assert self.server.stdout is not None
        for line in self.server.stdout:
            word, marker, when = (line.split() + ["", "", ""])[:3]
            if word == "served":
                self.times.setdefault(marker, float(when))


# ---------------------------------------------------------------- alert latency

class SmtpReceipts:
    """A real SMTP server (aiosmtpd) on loopback: when each probe first arrived in a mail."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.times: dict[str, float] = {}
        self.mails = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        import email.policy

        received = time.time()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = " ".join(part.get_content() for part in message.walk()
                        if part.get_content_maintype() == "text")
        for marker in set(PROBE.findall(text.encode())):
            self.times.setdefault(marker.decode(), received)
        self.mails += 1
        return "250 2.0.0 Ok: queued"

    def send_ms(self, runs: int = 20) -> float:
        """The anchor: median milliseconds of one plain smtplib send of a small mail here."""
        import smtplib

        times = []
        for n in range(runs):
            start = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
                client.sendmail("bench@mediawatch.test", ["desk@mediawatch.test"],
                                f"Subject: anchor {n}\r\n\r\nanchor\r\n")
            times.append(time.perf_counter() - start)
        self.mails -= runs
        return statistics.median(times) * 1000


def probe_item(words: Words, i: int, n: int, now: datetime) -> bytes:
    """A new item for feed i that the bench topic matches: probe n."""
    rng = random.Random(f"daemon/probe/{n}")
    link = f"https://news{i}.example.com/2026/probe/mwprobe{n:04d}.html"
    text = " ".join(words.sentence(rng) for _ in range(4))
    return ("    <item>\n"
            f"      <title>mwprobe{n:04d} {escape(words.title(rng))}</title>\n"
            f"      <link>{link}</link>\n"
            f'      <guid isPermaLink="true">{link}</guid>\n'
            f"      <pubDate>{format_datetime(now)}</pubDate>\n"
            f"      <description>mwprobe{n:04d} {escape(text)}</description>\n"
            "    </item>\n").encode()


@dataclass
class Latency:
    seconds: list[float]  # sorted: SMTP receipt − the response that brought the article
    injected: int
    missing: int  # probes served whose alert never arrived in time
    smtp_send_ms: float  # the anchor


def alert_latency(root: Path, feeds: list[str], count: int, gap: float, timeout: float,
                  served: Served, smtp: SmtpReceipts, say: Any) -> Latency:
    """Add `count` new matching items, one every `gap` seconds, each to another feed (newest
    first, as outlets do), then wait (up to `timeout` s after the last) for their alerts."""
    anchor, words = smtp.send_ms(), Words(0)
    markers = []
    for n in range(1, count + 1):
        i = (n - 1) * max(1, len(feeds) // count) % len(feeds)
        path = root / feeds[i]
        body = path.read_bytes()
        split = body.index(b"    <item>")
        staged = path.with_suffix(".tmp")  # replaced whole: never served half-written
        staged.write_bytes(body[:split] + probe_item(words, i + 1, n, datetime.now(timezone.utc))
                           + body[split:])
        staged.replace(path)
        markers.append(f"mwprobe{n:04d}")
        time.sleep(gap)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(m in smtp.times for m in markers):
        time.sleep(0.2)
    seconds = sorted(smtp.times[m] - served.times[m] for m in markers
                     if m in smtp.times and m in served.times)
    missing = sum(1 for m in markers if m not in smtp.times)
    say(f"  alerts: {len(seconds)} of {count} measured, {missing} missing")
    return Latency(seconds, count, missing, anchor)


# ---------------------------------------------------------------- a heavy poll

@dataclass
class Heavy:
    idle_s: list[float]  # sorted /healthz latencies while idle (the anchor)
    busy_s: list[float]  # sorted, while the heavy poll ran and stored its items
    items: int
    poll: Poll | None  # its log line (None: not seen in time)


def healthz_seconds(base: str) -> float:
    """One GET /healthz: seconds to its answer (PROBE_TIMEOUT when none came)."""
    start = time.monotonic()
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=PROBE_TIMEOUT) as reply:
            reply.read()
    except urllib.error.HTTPError:
        pass  # an answer all the same
    except OSError:
        return PROBE_TIMEOUT
    return time.monotonic() - start


def heavy_poll(root: Path, feeds: list[str], base: str, log: PollLog, items: int, seed: int,
               timeout: float, say: Any) -> Heavy:
    """/healthz latency while idle, then while the last feed's poll stores `items` new
    items (probed every QUICK_EVERY seconds until that poll's log line)."""
    idle = []
    for _ in range(QUICK_PROBES):
        idle.append(healthz_seconds(base))
        time.sleep(QUICK_EVERY)
    source, path = f"src-{len(feeds):04d}", root / feeds[-1]
    staged = path.with_suffix(".tmp")  # replaced whole: never served half-written
    staged.write_bytes(feed_xml(Words(seed), seed + 1, len(feeds), datetime.now(timezone.utc),
                                items))
    staged.replace(path)
    seen, busy, deadline = log.read(), [], time.monotonic() + timeout
    while (poll := next((p for p in log.polls[seen:] if p.source == source), None)) is None \
            and time.monotonic() < deadline:
        busy.append(healthz_seconds(base))
        time.sleep(QUICK_EVERY)
        log.read()
    say(f"  heavy poll: {poll.status if poll else 'not seen'}, /healthz max "
        f"{max(busy, default=0) * 1000:.0f} ms over {len(busy)} probes")
    return Heavy(sorted(idle), sorted(busy), items, poll)


# ---------------------------------------------------------------- profiling (child)

def profiled(out: Path, argv: list[str]) -> int:
    """Run the mediawatch CLI with cProfile switched on by SIGUSR1 and off by SIGUSR2: in the
    main thread (the reactor) and around every work item of the reactor's thread pool (poll
    jobs, scrapes, health checks), each timed by its own thread's CPU clock. The merged
    statistics go to `out` when the CLI returns."""
    import cProfile
    import pstats
    import threading

    from twisted.python import threadpool

    on = threading.Event()
    local = threading.local()
    profiles = [cProfile.Profile(time.thread_time)]  # [0]: the main thread's
    call_in_thread = threadpool.ThreadPool.callInThreadWithCallback

    def profiled_call(pool: Any, on_result: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        def work(*a: Any, **kw: Any) -> Any:
            if not on.is_set():
                return func(*a, **kw)
            profile = getattr(local, "profile", None)
            if profile is None:
                profile = local.profile = cProfile.Profile(time.thread_time)
                profiles.append(profile)
            profile.enable()
            try:
                return func(*a, **kw)
            finally:
                profile.disable()

        call_in_thread(pool, on_result, work, *args, **kwargs)

    def begin(*_: Any) -> None:
        on.set()
        profiles[0].enable()

    def end(*_: Any) -> None:
        on.clear()
        profiles[0].disable()

    threadpool.ThreadPool.callInThreadWithCallback = profiled_call  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, begin)
    signal.signal(signal.SIGUSR2, end)
    sys.argv = ["mediawatch", *argv]
    code = 0
    from crawler.cli import main

    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        end()
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(str(out))
    return code


def profile_summary(path: Path, polls: int, top: int = 20) -> list[tuple[str, str]]:
    """The functions with the most CPU, cumulative and own, per poll of the profiled run
    (start-up imports left out)."""
    import pstats

    entries = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in entries.values())
    per = 1000 / max(1, polls)

    def shown(key: tuple[str, int, str]) -> bool:
        file = key[0]
        return not (file in ("~", "<string>") or "importlib" in file or "threading.py" in file
                    or "/bench/daemon.py" in file or "/runpy.py" in file)

    rows = [("profile", f"{total:.1f} s CPU in all threads over the profiled run, "
                        f"{total * per:.2f} ms per poll; per poll below = CPU / {polls:,} polls")]
    for title, column in (("by cumulative CPU", 3), ("by own CPU", 2)):
        rows.append((f"  {title}", ""))
        ranked = sorted((kv for kv in entries.items() if shown(kv[0])),
                        key=lambda kv: kv[1][column], reverse=True)
        for (file, line, name), (_, calls, tt, ct, _) in ranked[:top]:
            where = f"{_short(file)}:{line}({name})"
            rows.append(("    " + (where if len(where) <= 64 else "…" + where[-63:]),
                         f"{(ct if column == 3 else tt) * per:6.2f} ms/poll "
                         f"(cum {ct:6.1f} s, own {tt:6.1f} s, {calls / max(1, polls):,.1f} "
                         "calls/poll)"))
    return rows


def _short(file: str) -> str:
    for marker in ("site-packages/", str(REPO) + "/", "/lib/python3."):
        if marker in file:
            rest = file.split(marker, 1)[1]
            return rest.split("/", 1)[1] if marker == "/lib/python3." else rest
    return file


# ---------------------------------------------------------------- measuring the daemon

@dataclass
class Sample:
    t: float  # seconds since the window started
    cpu_s: float
    sys_s: float  # of which in the kernel (stime)
    rss_mb: float
    hwm_mb: float
    polls: int  # polls finished so far (the log's count)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime + stime, stime) of a process (all its threads), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[12]) / CLK_TCK


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@dataclass
class Poll:
    source: str
    status: str  # ok, warning, unchanged, failed, deferred
    seconds: float  # wall, from the request injected to the poll stored


class PollLog:
    """The daemon's line per finished poll (`SOURCE: STATUS (HTTP n) … in 0.12s`, written
    right after its metrics are counted), read as the log grows: the polls are counted at the
    very moment the CPU time is read, without asking the daemon anything."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, b""
        self.polls: list[Poll] = []

    def read(self) -> int:
        """→ the polls finished so far"""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if m := _POLL_LINE.search(line.decode("utf-8", "replace")):
                self.polls.append(Poll(m[1], m[2], float(m[3])))
        return len(self.polls)


def sample(pid: int, t0: float, log: PollLog) -> Sample:
    cpu, kernel = cpu_seconds(pid)
    polls = log.read()
    rss, hwm = memory_mb(pid)
    return Sample(time.monotonic() - t0, cpu, kernel, rss, hwm, polls)


@dataclass
class Probe:
    t: float
    status: int | None  # None: no answer in time
    seconds: float


class Prober(threading.Thread):
    """GET /healthz every PROBE_EVERY seconds, as a liveness probe would."""

    def __init__(self, base: str, t0: float) -> None:
        super().__init__(daemon=True)
        self.base, self.t0 = base, t0
        self.probes: list[Probe] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(PROBE_EVERY):
            start = time.monotonic()
            try:
                with urllib.request.urlopen(f"{self.base}/healthz",
                                            timeout=PROBE_TIMEOUT) as reply:
                    status: int | None = reply.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = None
            self.probes.append(Probe(start - self.t0, status, time.monotonic() - start))


@dataclass
class Window:
    samples: list[Sample]
    polls: list[Poll]  # finished in the window
    probes: list[Probe]


def measure(daemon: subprocess.Popen[bytes], log: PollLog, base: str, window: float,
            logfile: Path, say: Any) -> Window:
    """CPU, memory and finished polls of the daemon, read together every SAMPLE_EVERY seconds
    over `window` seconds, and its /healthz probed meanwhile."""
    t0 = time.monotonic()
    samples = [sample(daemon.pid, t0, log)]
    prober = Prober(base, t0)
    prober.start()
    try:
        while (left := window - (time.monotonic() - t0)) > 0:
            time.sleep(min(SAMPLE_EVERY, left))
            alive(daemon, logfile)
            samples.append(sample(daemon.pid, t0, log))
            s = samples[-1]
            if time.monotonic() - t0 < window:
                say(f"  {s.t:5.0f} s: RSS {s.rss_mb:.1f} MB, CPU {s.cpu_s - samples[0].cpu_s:.1f}"
                    f" s, polls {s.polls - samples[0].polls}")
    finally:
        prober.done.set()
    return Window(samples, log.polls[samples[0].polls:samples[-1].polls], prober.probes)


@dataclass
class Scrape:
    by_status: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # to answer


def scrape(base: str, timeout: float = 30) -> Scrape:
    """The poll counters of the daemon's /metrics (rendered in its thread pool)."""
    start = time.monotonic()
    with urllib.request.urlopen(f"{base}/metrics", timeout=timeout) as reply:
        body = reply.read().decode()
    found = Scrape(seconds=time.monotonic() - start)
    for line in body.splitlines():
        if m := _POLLS.match(line):
            found.by_status[m[2]] = found.by_status.get(m[2], 0) + float(m[3])
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def feed_url(base: str, feed: str, i: int, hosts: int) -> str:
    """Source i's URL: on the fixture server itself, or on one of `hosts` host names that the
    fixture server answers as a forward proxy (`http_proxy`)."""
    return f"{base}/{feed}" if hosts == 1 else \
        f"http://feeds-{(i - 1) % hosts + 1:04d}.bench.test/{feed}"


def write_config(path: Path, base: str, feeds: list[str], every: str, hosts: int,
                 smtp_port: int | None = None) -> None:
    """The sources; with `smtp_port`, a topic matching the probes, alerting by email there."""
    import yaml

    document: dict[str, Any] = {
        "crawl": {"allow_private": True, "obey_robots": False},
        "sources": [{"name": f"src-{i:04d}", "kind": "feed",
                     "url": feed_url(base, feed, i, hosts), "every": every, "follow": False,
                     "language": "en"}
                    for i, feed in enumerate(feeds, 1)],
    }
    if smtp_port is not None:
        document["topics"] = [{"name": "bench-alerts", "query": "mwprobe*",
                               "channels": ["desk"]}]
        document["channels"] = {"desk": {
            "type": "email", "url": f"smtp://127.0.0.1:{smtp_port}",
            "from": "bench@mediawatch.test", "to": ["desk@mediawatch.test"]}}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def fail(message: str, log: Path | None = None) -> SystemExit:
    if log is not None:
        message += f"\n--- daemon log ({log}), last lines:\n{tail(log)}"
    return SystemExit(message)


def anchor_ms(body: bytes, runs: int = ANCHOR_RUNS) -> float:
    """Median CPU milliseconds of one bare `feedparser.parse` of body."""
    import feedparser

    for _ in range(5):
        feedparser.parse(body)
    times = []
    for _ in range(runs):
        t0 = time.process_time()
        feedparser.parse(body)
        times.append(time.process_time() - t0)
    return statistics.median(times) * 1000


def launch(command: list[str], log: Path, running: list[subprocess.Popen[bytes]],
           proxy: str | None = None) -> subprocess.Popen[bytes]:
    """Start a daemon (its output to `log`), remembered in `running`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAWATCH_")
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    if proxy:
        env["http_proxy"] = proxy
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   env=env)
    running.append(process)
    return process


def alive(daemon: subprocess.Popen[bytes], log: Path) -> None:
    if daemon.poll() is not None:
        raise fail(f"the daemon exited with status {daemon.returncode}", log)


def wait_up(daemon: subprocess.Popen[bytes], base: str, log: Path,
            timeout: float = 120) -> None:
    """Until the daemon's /metrics answers."""
    deadline = time.monotonic() + timeout
    while True:
        alive(daemon, log)
        try:
            scrape(base, timeout=5)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise fail(f"the daemon did not answer on /metrics in {timeout:.0f} s",
                           log) from None
            time.sleep(0.5)


def warm_up(daemon: subprocess.Popen[bytes], log: PollLog, logfile: Path, sources: int,
            timeout: float, say: Any) -> int:
    """Until every source was polled once with success (a 200 that stored its items); a
    failed poll is tried again at the source's next turn. → the failed polls"""
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    while True:
        alive(daemon, logfile)
        log.read()
        polled = len({p.source for p in log.polls if p.status in ("ok", "warning")})
        if polled >= sources:
            return sum(1 for p in log.polls if p.status == "failed")
        if time.monotonic() > deadline:
            raise fail(f"warm-up: only {polled} of {sources} sources polled in "
                       f"{timeout:.0f} s", logfile)
        if time.monotonic() - last_report >= 10:
            failed = sum(1 for p in log.polls if p.status == "failed")
            say(f"  warm-up: {polled}/{sources} sources polled"
                + (f", {failed} failed polls (tried again at their next turn)" if failed else ""))
            last_report = time.monotonic()
        time.sleep(0.5)


def count_lines(path: Path, text: str) -> int:
    with path.open(encoding="utf-8", errors="replace") as lines:
        return sum(1 for line in lines if text in line)


def stop(daemon: subprocess.Popen[bytes], log: Path) -> int:
    """SIGTERM. → the exit status"""
    daemon.send_signal(signal.SIGTERM)
    try:
        return daemon.wait(timeout=180)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
        raise fail("the daemon did not stop within 180 s of SIGTERM", log) from None


def cross_check(base: str, log: PollLog) -> str:
    """/metrics against the log, just after the window (its scrape is not in the window)."""
    try:
        found = scrape(base)
    except OSError as exc:
        return (f"no answer in 30 s ({exc}): the scrape is rendered in the reactor's thread "
                "pool, which the poll jobs can fill")
    log.read()
    logged = sum(1 for p in log.polls if p.status == "unchanged")
    return (f"answered in {found.seconds:.1f} s: mediawatch_polls_total{{status=\"unchanged\"}}"
            f" {found.by_status.get('unchanged', 0):,.0f} since start, log {logged:,}")


# ---------------------------------------------------------------- the run

def run(args: argparse.Namespace, work: Path) -> int:
    clock = time.monotonic
    t_start = clock()
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731

    say(f"generating {args.sources} feeds in {work}")
    root = work / "web"
    feeds = generate(root, args.sources, args.seed)
    sample_body = (root / feeds[0]).read_bytes()
    feed_kb = statistics.mean((root / f).stat().st_size for f in feeds) / 1024
    parse_ms = anchor_ms(sample_body)
    say(f"anchor: feedparser.parse of one {len(sample_body) / 1024:.1f} KB feed: "
        f"{parse_ms:.2f} ms CPU (median of {ANCHOR_RUNS})")

    server, base = start_server(root)
    served, smtp = Served(server), SmtpReceipts()
    served.start()
    smtp.controller.start()
    running: list[subprocess.Popen[bytes]] = []
    logfile = work / "daemon.log"
    profile_rows: list[tuple[str, str]] = []
    latency = Latency([], 0, 0, 0.0)
    try:
        config = work / "config.yaml"
        write_config(config, base, feeds, args.every, args.hosts,
                     smtp.port if args.alerts else None)
        proxy = base if args.hosts > 1 else None
        cli = ["--config", str(config), "--db", f"sqlite:///{work / 'bench.db'}", "run",
               "--listen"]
        listen = f"127.0.0.1:{free_port()}"
        daemon = launch([sys.executable, "-m", "crawler", *cli, listen], logfile, running,
                        proxy)
        wait_up(daemon, f"http://{listen}", logfile)
        rss_boot, _ = memory_mb(daemon.pid)
        say(f"daemon up (pid {daemon.pid}, {rss_boot:.0f} MB), warming up: every source "
            "polled once")

        # 1. warm-up
        log = PollLog(logfile)
        warmup_failed = warm_up(daemon, log, logfile, args.sources, args.warmup_timeout, say)
        given_up = count_lines(logfile, "poll given up")
        warmup_s = clock() - t_start
        say(f"warm-up done after {warmup_s:.0f} s; settling for {args.settle:g} s, then "
            f"measuring for {args.minutes:g} minutes")
        time.sleep(args.settle)  # the last first polls' items stored

        # 2. the window, the cross-check, 3. stop
        given_up_before = count_lines(logfile, "poll given up")
        window = measure(daemon, log, f"http://{listen}", args.minutes * 60, logfile, say)
        given_up_window = count_lines(logfile, "poll given up") - given_up_before
        checked = cross_check(f"http://{listen}", log)
        if args.alerts:
            say(f"alert latency: {args.alerts} new matching items, one every "
                f"{args.alert_gap:g} s, each alerting by email")
            latency = alert_latency(root, feeds, args.alerts, args.alert_gap,
                                    interval_seconds(args.every) + 30, served, smtp, say)
        heavy = Heavy([], [], 0, None)
        if args.heavy:
            say(f"/healthz while idle, then during a poll storing {args.heavy} new items")
            heavy = heavy_poll(root, feeds, f"http://{listen}", log, args.heavy, args.seed,
                               interval_seconds(args.every) + 60 + args.heavy * 0.2, say)
        code = stop(daemon, logfile)
        say(f"daemon stopped, exit status {code}")

        if args.profile:
            profile_rows = profile_phase(args, cli, work, running, say, proxy)
    finally:
        smtp.controller.stop()
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait()
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    # ------------------------------------------------------------ figures
    samples, polls = window.samples, window.polls
    first, last = samples[0], samples[-1]
    window_s = last.t - first.t
    statuses: dict[str, int] = {}
    for p in polls:
        statuses[p.status] = statuses.get(p.status, 0) + 1
    unchanged = statuses.get("unchanged", 0)
    cpu_s = last.cpu_s - first.cpu_s
    cpu_ms_per = cpu_s * 1000 / unchanged if unchanged else 0.0
    polls_per_s = len(polls) / window_s if window_s else 0.0
    walls = sorted(p.seconds for p in polls) or [0.0]
    expected = args.sources * window_s / interval_seconds(args.every)
    rss_start, rss_end = first.rss_mb, last.rss_mb
    rss_peak = max(s.hwm_mb for s in samples)
    slope = rss_slope(samples)
    met = unchanged > 0 and cpu_ms_per < TARGET_MS
    idle = [(b.cpu_s - a.cpu_s, b.t - a.t) for a, b in zip(samples, samples[1:], strict=False)
            if b.polls == a.polls]
    idle_cpu, idle_s = sum(c for c, _ in idle), sum(t for _, t in idle)
    probes = window.probes
    healthy = sum(1 for p in probes if p.status == 200)
    unhealthy = sum(1 for p in probes if p.status not in (200, None))
    no_answer = sum(1 for p in probes if p.status is None)
    others = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()) if k != "unchanged")
    rows = [
        ("sources", f"{args.sources:,} RSS feeds of {ITEMS} items (~{feed_kb:.1f} KB each), "
                    f"every {args.every}, follow: false, "
                    + ("one fixture host" if args.hosts == 1 else
                       f"{args.hosts} host names through the fixture server as a proxy")
                    + " (own process)"),
        ("warm-up", f"{warmup_s:.0f} s (start + every source's first poll, a 200 storing its "
                    f"items) + {args.settle:g} s; not measured; {warmup_failed} failed polls, "
                    f"{given_up} polls given up at crawl.poll_deadline"),
        ("window", f"{window_s:.1f} s"),
        ("polls in window", f"{len(polls):,} (expected ~{expected:,.0f}); unchanged (304) "
                            f"{unchanged:,}; others: {others or 'none'}; given up at "
                            f"crawl.poll_deadline: {given_up_window}"),
        ("polls/s", f"{polls_per_s:.2f}"),
        ("poll duration (wall)", f"p50 {pct(walls, 0.5):.2f} s, p90 {pct(walls, 0.9):.2f} s, "
                                 f"max {walls[-1]:.2f} s (request injected → stored)"),
        ("daemon CPU in window", f"{cpu_s:.2f} s ({cpu_s / window_s:.1%} of one core; every "
                                 f"thread, every job; {last.sys_s - first.sys_s:.2f} s of it "
                                 "in the kernel)"),
        ("  with no poll finishing", f"{idle_cpu:.2f} s CPU in {idle_s:.0f} s of the window "
                                     "(scheduler, dispatch job, idle reactor)"),
        ("CPU per unchanged poll", f"{cpu_ms_per:.2f} ms (the daemon's CPU in the window / "
                                   "unchanged polls finished in it)"),
        ("target < 5 ms", "met" if met else "MISSED"),
        ("anchor: feedparser.parse", f"{parse_ms:.2f} ms CPU (one bare parse of a "
                                     f"{len(sample_body) / 1024:.1f} KB feed, median of "
                                     f"{ANCHOR_RUNS}, this process)"),
        ("poll / parse", f"{cpu_ms_per / parse_ms:.2f}× (an unchanged poll costs this many "
                         "bare parses of its feed)" if parse_ms else "-"),
        ("RSS", f"after start {rss_boot:.1f} MB; window start {rss_start:.1f} MB, end "
                f"{rss_end:.1f} MB; peak (VmHWM) {rss_peak:.1f} MB"),
        ("RSS trend", f"{slope:+.2f} MB/min over the window "
                      f"({(rss_end - rss_start) * 1024 / max(1, len(polls)):+.2f} KB per poll)"),
        ("samples", "t: RSS, daemon CPU and polls since the window started"),
        *((f"  {s.t:4.0f} s", f"{s.rss_mb:7.1f} MB  {s.cpu_s - first.cpu_s:6.2f} s  "
                              f"{s.polls - first.polls:6,}") for s in samples),
        ("/healthz every 5 s", f"{len(probes)} probes: {healthy} ok, {unhealthy} failing, "
                               f"{no_answer} no answer in {PROBE_TIMEOUT:g} s; slowest "
                               f"{max((p.seconds for p in probes), default=0):.1f} s"),
        ("/metrics cross-check", checked),
        ("alert latency", f"p50 {pct(latency.seconds, 0.5):.2f} s, p95 "
                          f"{pct(latency.seconds, 0.95):.2f} s, max "
                          f"{max(latency.seconds, default=0):.2f} s over "
                          f"{len(latency.seconds)} alerts (the response that brought the "
                          f"article → its mail received by a local SMTP server); "
                          f"{latency.missing} of {latency.injected} never arrived"),
        ("target p95 ≤ 1 s", "met" if latency.seconds and pct(latency.seconds, 0.95) <= 1
                             and not latency.missing else "MISSED"),
        ("anchor: SMTP send", f"{latency.smtp_send_ms:.1f} ms (one bare smtplib send of a "
                              "small mail to the same server, median of 20, this process)"),
        ("/healthz during a heavy poll",
         f"max {max(heavy.busy_s, default=0) * 1000:.0f} ms, median "
         f"{pct(heavy.busy_s, 0.5) * 1000:.0f} ms over {len(heavy.busy_s)} probes "
         f"{QUICK_EVERY * 1000:.0f} ms apart, while one feed's poll stored {heavy.items} new "
         "items" + (f" ({heavy.poll.status}, {heavy.poll.seconds:.1f} s)" if heavy.poll
                    else " (its end not seen in time)")),
        ("anchor: /healthz idle", f"max {max(heavy.idle_s, default=0) * 1000:.0f} ms, median "
                                  f"{pct(heavy.idle_s, 0.5) * 1000:.0f} ms over "
                                  f"{len(heavy.idle_s)} probes, just before"),
        ("exit status", f"{code} after SIGTERM"),
    ]
    for table in (rows, profile_rows):
        width = max((len(k) for k, _ in table), default=0)
        for key, value in table:
            print(f"{key:<{width}}  {value}".rstrip())
    print(json.dumps({
        "bench": "daemon", "sources": args.sources, "polls": len(polls),
        "cpu_ms_per_unchanged_poll": round(cpu_ms_per, 3),
        "feedparser_parse_ms": round(parse_ms, 3),
        "rss_mb_start": round(rss_start, 1), "rss_mb_end": round(rss_end, 1),
        "rss_mb_peak": round(rss_peak, 1), "rss_mb_per_min": round(slope, 3),
        "unchanged_polls": unchanged, "polls_per_s": round(polls_per_s, 3),
        "poll_wall_p50_s": round(pct(walls, 0.5), 3), "window_s": round(window_s, 1),
        "every": args.every, "daemon_cpu_s": round(cpu_s, 2), "target_met": met,
        "healthz_ok": healthy, "healthz_probes": len(probes), "exit_code": code,
        "alert_latency_p50_s": round(pct(latency.seconds, 0.5), 3),
        "alert_latency_p95_s": round(pct(latency.seconds, 0.95), 3),
        "alerts_measured": len(latency.seconds), "alerts_missing": latency.missing,
        "smtp_send_ms": round(latency.smtp_send_ms, 2),
        "heavy_poll_items": heavy.items, "heavy_poll_seen": heavy.poll is not None,
        "healthz_heavy_max_ms": round(max(heavy.busy_s, default=0) * 1000, 1),
        "healthz_idle_max_ms": round(max(heavy.idle_s, default=0) * 1000, 1)}))
    return 0 if code == 0 else 1


def profile_phase(args: argparse.Namespace, cli: list[str], work: Path,
                  running: list[subprocess.Popen[bytes]], say: Any,
                  proxy: str | None) -> list[tuple[str, str]]:
    """The daemon again on the warm database (every poll a 304), cProfile on for a window.
    → the rows of the profile table (a failure here is reported, not raised)"""
    out = Path(args.profile).resolve()
    logfile = work / "daemon-profiled.log"
    listen = f"127.0.0.1:{free_port()}"
    daemon = launch([sys.executable, "-m", "bench.daemon", "--child-profile", str(out), "--",
                     *cli, listen], logfile, running, proxy)
    try:
        wait_up(daemon, f"http://{listen}", logfile)
        time.sleep(args.settle)
        say(f"profiling: the daemon restarted on the warm database (every poll a 304), "
            f"cProfile on for {args.minutes:g} minutes")
        log = PollLog(logfile)
        log.read()
        daemon.send_signal(signal.SIGUSR1)
        window = measure(daemon, log, f"http://{listen}", args.minutes * 60, logfile, say)
        daemon.send_signal(signal.SIGUSR2)
        code = stop(daemon, logfile)
    except (SystemExit, OSError) as exc:
        return [("profiling", f"failed: {exc}")]
    polls = len(window.polls)
    cpu = window.samples[-1].cpu_s - window.samples[0].cpu_s
    return [("profiled run", f"{polls:,} polls in its window, {cpu * 1000 / max(1, polls):.1f} "
                             f"ms CPU each under the profiler; exit status {code}; statistics "
                             f"in {out}"),
            *profile_summary(out, polls)]


def pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def interval_seconds(every: str) -> float:
    from crawler.daemon.schedule import interval_of

    return interval_of(every).total_seconds()


def rss_slope(samples: list[Sample]) -> float:
    """Least-squares slope of RSS over time, MB per minute."""
    if len(samples) < 2:
        return 0.0
    ts = [s.t / 60 for s in samples]
    ys = [s.rss_mb for s in samples]
    mt, my = statistics.mean(ts), statistics.mean(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var if var else 0.0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child-profile"]:  # the daemon under the profiler
        out, rest = argv[1], argv[2:]
        return profiled(Path(out), rest[1:] if rest[:1] == ["--"] else rest)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=500, help="feed sources")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the window")
    parser.add_argument("--every", default="1m", help="poll interval of every source")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--alerts", type=int, default=50,
                        help="new matching items added after the window, each measured from "
                             "the response that brought it to its mail's receipt (0: none)")
    parser.add_argument("--alert-gap", type=float, default=0.5,
                        help="seconds between two of those items")
    parser.add_argument("--heavy", type=int, default=300,
                        help="new items one feed gets at once at the end, /healthz probed "
                             "while its poll stores them (0: none)")
    parser.add_argument("--hosts", type=int, default=1,
                        help="spread the sources over this many host names (each its own "
                             "Scrapy download slot), served by the fixture server as an HTTP "
                             "proxy; 1: every source on the fixture server's own address")
    parser.add_argument("--warmup-timeout", type=float, default=900,
                        help="seconds allowed for every source's first poll")
    parser.add_argument("--settle", type=float, default=10,
                        help="seconds between the warm-up and the window")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it "
                                                  "(feeds, config, database, daemon log)")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the daemon under cProfile (all threads, CPU time) and "
                             "write the statistics to FILE")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    if args.sources < 1 or args.minutes <= 0 or args.hosts < 1 or args.alerts < 0 \
            or args.heavy < 0:
        parser.error("--sources, --minutes and --hosts must be positive, --alerts and "
                     "--heavy not negative")
    try:
        interval_seconds(args.every)
    except ValueError as exc:
        parser.error(f"--every: {exc}")
    return in_folder(args.keep, "mw-bench-daemon-", lambda work: run(args, work))


def in_folder(keep: Path | None, prefix: str, run: Callable[[Path], int]) -> int:
    """`run` in the folder `keep` (kept), else in a temporary one removed after."""
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        return run(keep.resolve())
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
