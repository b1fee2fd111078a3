"""Reading room benchmark (issue 17): how fast the web pages render on a big database.

Generates (once, cached by its sizes) a SQLite database through `storage.db.open_database`,
so every migration and index is there, with 200,000 articles in English and Chinese, 20,000
stories (one very big), 50 sources (some failing or silent), ~10% near-copies, 1-3
sightings an article, follow-up links, topic matches of 5 topics shaped as the ingest stores
them, a few thousand alerts and a week of crawl runs, first seen over 60 days. Then renders
every page of the reading room in process (`werkzeug.test.Client(ReadingRoom(…))`, no
token: open) — today, topic, story, article, sources, alerts, query, with filtered and
paged variants — warms each up and times N requests, and prints p50/p95 per page against
the target (100 ms p95), and the p95 of the CPU time each request used (on a machine busy
with other work, wall-clock times grow; the CPU time hardly does). The anchor, measured in
the same run on the same machine: a `SELECT 1` round trip through a session and the
sign-in page (a template, no database work). A page group's figures are those of its
slowest variant. A route the app does not have yet is skipped with a note; a page
answering 404 or 500 (or raising) is a failure. Last line one JSON object.

    python -m bench.web [--articles N] [--stories N] [--sources N] [--requests N] [--fresh]
                        [--as-is] [--cache DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text  # noqa: E402
from werkzeug.exceptions import MethodNotAllowed, NotFound  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from crawler.config.model import Config  # noqa: E402
from crawler.daemon.web import ReadingRoom  # noqa: E402
from crawler.daemon.web.app import ROUTES  # noqa: E402
from crawler.daemon.web.pages.today import SEEN_COOKIE  # noqa: E402
from storage.db import engine_of, open_database  # noqa: E402
from storage.models import (  # noqa: E402
    Alert,
    Article,
    CrawlRun,
    Sighting,
    Source,
    Story,
    StoryLink,
    TopicMatch,
)

TARGET_P95_MS = 100.0
GENERATOR = 2  # bump when the generated data changes: cached databases are rebuilt
STALE = timedelta(hours=12)  # a cached database older than this is made again: its data
# ends when it was made, and the pages' windows (24 hours, 7 days) count back from now
DAYS = 60
BATCH = 5000
GROUPS = ("today", "topic", "story", "article", "sources", "alerts", "query")

# (name, query, English keyword, Chinese keyword): each matched article holds its keyword
TOPICS = (("floods", "flood* OR 洪水", "flooding", "洪水"),
          ("election", "election OR 选举", "election", "选举"),
          ("vaccines", "vaccine* OR 疫苗", "vaccines", "疫苗"),
          ("tariffs", "tariff* OR 关税", "tariffs", "关税"),
          ("earthquake", "earthquake OR 地震", "earthquake", "地震"))
QUERY = "flood* AND (river OR dam)"  # the workbench's typical draft query
EN_WORDS = ("the a of to in and said on for with was by at from that government minister "
            "officials city people report police river dam rain week year market prices "
            "company workers school students hospital court council water road bridge "
            "province state national local public new first last two three million "
            "percent according statement spokesman announced on tuesday wednesday "
            "thursday friday agreed plans after before during amid despite following").split()
ZH_WORDS = ("政府 部长 官员 城市 人民 报告 警方 河流 水坝 下雨 本周 今年 市场 价格 公司 工人 学校 "
            "学生 医院 法院 议会 道路 桥梁 省 国家 地方 公共 新 第一 最后 两 三 百万 百分之 据 "
            "声明 发言人 宣布 周二 周三 周四 周五 同意 计划 之后 之前 期间 尽管 表示 记者 "
            "消息 发展 经济 社会 问题 工作 情况 影响 地区 方面").split()


# ---------------------------------------------------------------- the generated database

@dataclass(frozen=True)
class Sizes:
    articles: int
    stories: int
    sources: int

    @property
    def key(self) -> str:
        return f"web-g{GENERATOR}-a{self.articles}-s{self.stories}-o{self.sources}"


def source_names(count: int) -> list[str]:
    return [f"outlet-{i:02d}" for i in range(1, count + 1)]


def config_of(sizes: Sizes, token: str | None = None) -> Config:
    """The running config: the 5 topics and the sources of the generated database."""
    return Config.model_validate({
        "web": {"token": token} if token else {},
        "sources": [{"name": name, "kind": "feed", "url": f"https://{name}.example/feed.xml",
                     "expect_every": "1d" if i % 10 == 3 else None,
                     "language": "zh" if i % 3 == 0 else "en"}
                    for i, name in enumerate(source_names(sizes.sources))],
        "topics": [{"name": name, "query": query} for name, query, _, _ in TOPICS]})


def sentence(rng: random.Random, zh: bool, words: int, keyword: str | None = None) -> str:
    vocabulary = ZH_WORDS if zh else EN_WORDS
    chosen = rng.choices(vocabulary, k=words)
    if keyword is not None:
        chosen.insert(rng.randrange(len(chosen) + 1), keyword)
    return ("" if zh else " ").join(chosen)


def body(rng: random.Random, zh: bool, keyword: str | None) -> str:
    """~600 characters: a few sentences, the keyword (if any) in the second one."""
    end, size = ("。", 24) if zh else (". ", 16)
    parts = [sentence(rng, zh, size, keyword if i == 1 else None) for i in range(4 if zh else 6)]
    return end.join(parts) + end.strip()


def evidence(title: str, text_: str, keyword: str) -> dict[str, Any]:
    """A topic match's highlights as the ingest stores them (`Match.as_json`)."""
    spans = []
    for name, value in (("title", title), ("text", text_)):
        at = value.find(keyword)
        if at >= 0:
            spans.append([name, at, at + len(keyword), keyword])
    at = text_.find(keyword)
    start = max(0, at - 80)
    return {"snippet": ("…" if start else "") + text_[start:at + len(keyword) + 80] + "…",
            "spans": spans}


@dataclass
class Plan:
    """Article rows in id order (ids rise with first_seen_at) and their stories."""

    articles: list[dict[str, Any]] = field(default_factory=list)
    stories: list[dict[str, Any]] = field(default_factory=list)
    topic_of_story: dict[int, int] = field(default_factory=dict)


def plan(sizes: Sizes, rng: random.Random, now: datetime) -> Plan:
    """Who belongs where and when: story sizes follow a long tail (story 1 is big)."""
    weights = [1.0 / (rank ** 0.6) for rank in range(1, sizes.stories)]
    big = min(max(sizes.articles // 100, 10), sizes.articles // 2)  # 1% in one story
    members = [1] * sizes.stories
    members[0] = big
    for story in rng.choices(range(1, sizes.stories), weights=weights,
                             k=max(0, sizes.articles - sizes.stories - big + 1)):
        members[story] += 1
    result = Plan()
    start = now - timedelta(days=DAYS)
    seen: list[tuple[datetime, int]] = []
    for index, count in enumerate(members):
        story_id = index + 1
        began = start + timedelta(seconds=rng.uniform(0, DAYS * 86400 - 3600))
        spread = 86400 * (20 if index == 0 else rng.choice((0.2, 1, 3)))
        times = sorted(min(began + timedelta(seconds=rng.uniform(0, spread)), now)
                       for _ in range(count))
        times[0] = began
        seen.extend((moment, story_id) for moment in times)
        if rng.random() < 0.15 or index == 0:
            result.topic_of_story[story_id] = 0 if index == 0 else rng.randrange(len(TOPICS))
    seen.sort()
    seen = seen[:sizes.articles]
    first_of: dict[int, int] = {}
    originals_of: dict[int, list[int]] = {}
    stories: dict[int, list[datetime]] = {}
    for article_id, (moment, story_id) in enumerate(seen, start=1):
        source = rng.randrange(sizes.sources)
        zh = source % 3 == 0
        topic = result.topic_of_story.get(story_id)
        keyword = None if topic is None else TOPICS[topic][3 if zh else 2]
        title = sentence(rng, zh, 5 if zh else 8, keyword)
        earlier = originals_of.setdefault(story_id, [])
        copy_of = rng.choice(earlier) if earlier and rng.random() < 0.11 else None
        if copy_of is None:
            earlier.append(article_id)
        first_of.setdefault(story_id, article_id)
        stories.setdefault(story_id, []).append(moment)
        result.articles.append({
            "id": article_id, "story_id": story_id, "source_index": source, "zh": zh,
            "title": title, "text": body(rng, zh, keyword), "first_seen_at": moment,
            "duplicate_of": copy_of, "topic": topic, "keyword": keyword,
            "linked": first_of[story_id] if copy_of is None and article_id !=
            first_of[story_id] else None})
    for story_id, times in sorted(stories.items()):
        headline = next(a["title"] for a in result.articles[first_of[story_id] - 1:]
                        if a["story_id"] == story_id)
        result.stories.append({"id": story_id, "headline": headline,
                               "first_seen_at": times[0], "last_seen_at": times[-1]})
    return result


def batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def generate(sizes: Sizes, path: Path) -> None:
    """Fill a new database at `path` (all migrations run first)."""
    rng = random.Random(17)
    db = open_database(f"sqlite:///{path}")
    now = datetime.now(timezone.utc)
    layout = plan(sizes, rng, now)
    names = source_names(sizes.sources)
    engine = engine_of(db)
    with engine.begin() as connection:
        connection.execute(insert(Source.__table__), [source_row(i, name, rng, now)
                                                      for i, name in enumerate(names)])
        for chunk in batches(iter(layout.stories)):
            connection.execute(insert(Story.__table__), chunk)
        for chunk in batches(article_row(a, names) for a in layout.articles):
            connection.execute(insert(Article.__table__), chunk)
    with engine.begin() as connection:
        for chunk in batches(sightings(layout, names, rng)):
            connection.execute(insert(Sighting.__table__), chunk)
        for chunk in batches(matches(layout)):
            connection.execute(insert(TopicMatch.__table__), chunk)
        for chunk in batches({"article_id": a["id"], "linked_article_id": a["linked"],
                              "evidence": ["n:3555", "c:flood", "p:riverton"],
                              "score": 5.5} for a in layout.articles if a["linked"]):
            connection.execute(insert(StoryLink.__table__), chunk)
        for chunk in batches(alerts(layout, rng)):
            connection.execute(insert(Alert.__table__), chunk)
        for chunk in batches(runs(sizes, rng, now)):
            connection.execute(insert(CrawlRun.__table__), chunk)
    with engine.connect() as connection:  # no ANALYZE: the crawler never runs one either
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()


def source_row(index: int, name: str, rng: random.Random, now: datetime) -> dict[str, Any]:
    failing = index % 10 == 7
    silent = index % 10 == 3
    return {"id": index + 1, "name": name, "kind": "feed",
            "url": f"https://{name}.example/feed.xml", "official": index % 25 == 0,
            "last_polled_at": now - timedelta(minutes=rng.randrange(15)),
            "last_success_at": now - (timedelta(days=3) if failing else
                                      timedelta(minutes=rng.randrange(15))),
            "consecutive_failures": 6 if failing else 0,
            "last_error": "HTTP 503 Service Unavailable" if failing else None,
            "last_warning": None, "etag": None, "last_modified": None,
            "not_before": None, "reported_health": "failing" if failing else
            "silent" if silent else "ok"}


def article_row(article: dict[str, Any], names: list[str]) -> dict[str, Any]:
    name = names[article["source_index"]]
    url = f"https://{name}.example/news/{article['id']}.html"
    return {"id": article["id"], "url": url, "canonical_url": url,
            "source_id": article["source_index"] + 1, "title": article["title"],
            "text": article["text"], "summary": article["text"][:160],
            "language": "zh" if article["zh"] else "en",
            "published_at": article["first_seen_at"] - timedelta(minutes=20),
            "date_is_estimated": False, "first_seen_at": article["first_seen_at"],
            "text_hash": hashlib.sha256(article["text"].encode()).hexdigest(),
            "sketch": None, "story_id": article["story_id"],
            "duplicate_of": article["duplicate_of"], "title_key": article["title"][:200],
            "outlet": None, "capture_id": None, "next_check_at": None, "etag": None,
            "last_modified": None, "removed_at": None, "gone_at": None}


def sightings(layout: Plan, names: list[str], rng: random.Random
              ) -> Iterator[dict[str, Any]]:
    for article in layout.articles:
        first = article["source_index"]
        others = rng.sample(range(len(names)), k=min(len(names), 3))
        chosen = [first] + [s for s in others if s != first][:rng.randrange(3)]
        for number, source in enumerate(chosen):
            yield {"article_id": article["id"], "source_id": source + 1,
                   "url": f"https://{names[source]}.example/news/{article['id']}.html"
                   if number == 0 else f"https://{names[source]}.example/r/{article['id']}",
                   "seen_at": article["first_seen_at"] + timedelta(minutes=5 * number)}


def matches(layout: Plan) -> Iterator[dict[str, Any]]:
    for article in layout.articles:
        if article["topic"] is not None:
            yield {"article_id": article["id"], "topic": TOPICS[article["topic"]][0],
                   "highlights": evidence(article["title"], article["text"],
                                          article["keyword"]),
                   "matched_at": article["first_seen_at"] + timedelta(seconds=30)}


def alerts(layout: Plan, rng: random.Random) -> Iterator[dict[str, Any]]:
    matched = [a for a in layout.articles if a["topic"] is not None]
    count = min(len(matched), max(50, len(layout.articles) // 50))
    statuses = ("sent",) * 14 + ("pending", "failed", "failed", "sending")
    for number, article in enumerate(rng.sample(matched, k=count), start=1):
        status = rng.choice(statuses)
        created = article["first_seen_at"] + timedelta(minutes=1)
        yield {"id": number, "idempotency_key": f"bench:{number}", "kind": "new",
               "topic": TOPICS[article["topic"]][0],
               "channel": rng.choice(("slack", "email")), "story_id": article["story_id"],
               "article_id": article["id"], "status": status,
               "attempts": 3 if status == "failed" else 1, "created_at": created,
               "next_attempt_at": created + timedelta(minutes=10) if status in
               ("pending", "failed") else None,
               "claimed_at": None, "sent_at": created if status == "sent" else None,
               "last_error": "HTTP 500 from hooks.slack.com" if status == "failed" else None,
               "details": None}


def runs(sizes: Sizes, rng: random.Random, now: datetime) -> Iterator[dict[str, Any]]:
    """A week of polls every 15 minutes per source."""
    for index in range(sizes.sources):
        failing = index % 10 == 7
        for step in range(7 * 96):
            started = now - timedelta(minutes=15 * step)
            failed = failing and step < 6
            yield {"source_id": index + 1, "started_at": started,
                   "finished_at": started + timedelta(seconds=2),
                   "status": "failed" if failed else rng.choice(("ok", "unchanged")),
                   "http_status": 503 if failed else 200, "requests": 1, "items": 20,
                   "new_articles": rng.randrange(4), "known": 16, "errors": int(failed),
                   "error_class": "HTTPError" if failed else None,
                   "error": "HTTP 503" if failed else None}


def stale(path: Path, migrate: bool = True) -> bool:
    """Whether a cached database's newest article is older than STALE (or it is broken)."""
    try:
        engine = engine_of(open_database(f"sqlite:///{path}", migrate))
        with engine.connect() as connection:
            newest = connection.scalar(select(func.max(Article.first_seen_at)))
        engine.dispose()
    except Exception:  # noqa: BLE001 — a half-written or foreign file: made again
        return True
    return newest is None or datetime.now(timezone.utc) - newest > STALE


def database(sizes: Sizes, fresh: bool, folder: Path | None,
             migrate: bool = True) -> tuple[Path, float | None]:
    """The cached database of these sizes, generated if missing; → its path and the
    seconds generating it took (None: reused)."""
    folder = folder or Path(os.environ.get("MEDIAWATCH_BENCH_CACHE")
                            or Path(tempfile.gettempdir()) / "mediawatch-bench")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sizes.key}.db"
    if path.exists() and not fresh and not stale(path, migrate):
        return path, None
    building = folder / f"{sizes.key}.building.{os.getpid()}.db"
    started = time.perf_counter()
    generate(sizes, building)
    for leftover in folder.glob(path.name + "*"):
        leftover.unlink()
    building.replace(path)
    for leftover in folder.glob(building.name + "-*"):
        leftover.unlink()
    return path, time.perf_counter() - started


# ---------------------------------------------------------------- timing the pages

@dataclass
class Variant:
    group: str
    label: str
    urls: list[str]  # requested in turn (random ids: a different one each time)


def variants(db: Any, sizes: Sizes, rng: random.Random) -> list[Variant]:
    """The pages to time, with ids picked from the database."""
    with db() as session:
        big = session.scalar(select(Article.story_id).group_by(Article.story_id)
                             .order_by(func.count().desc()).limit(1))
        story_ids = rng.sample(range(1, sizes.stories + 1), k=min(sizes.stories, 200))
        top = session.scalar(select(func.max(Article.id)))
        article_ids = rng.sample(range(1, top + 1), k=min(top, 200))
        last_match = session.scalar(select(func.max(TopicMatch.id))) or 0
        matched = list(session.scalars(select(TopicMatch.article_id).where(TopicMatch.id.in_(
            rng.sample(range(1, last_match + 1), k=min(last_match, 100))))))
    topic, source = TOPICS[0][0], source_names(sizes.sources)[1]
    q = QUERY.replace(" ", "+").replace("(", "%28").replace(")", "%29")
    return [
        Variant("today", "/ (first visit: 24 h)", ["/"]),
        Variant("today", "/?since=7d", ["/?since=7d"]),
        Variant("today", "/?page=3", ["/?page=3"]),
        Variant("today", "/?topic&language=zh", [f"/?topic={topic}&language=zh"]),
        Variant("topic", f"/topics/{topic}", [f"/topics/{topic}"]),
        Variant("topic", "/topics/…?page=3", [f"/topics/{topic}?page=3"]),
        Variant("topic", "/topics/…?since=7d", [f"/topics/{topic}?since=7d"]),
        Variant("topic", "/topics/…?language=zh", [f"/topics/{topic}?language=zh"]),
        Variant("topic", "/topics/…?source=", [f"/topics/{topic}?source={source}"]),
        Variant("story", f"/stories/{big} (big)", [f"/stories/{big}"]),
        Variant("story", "/stories/ID (random)", [f"/stories/{i}" for i in story_ids]),
        Variant("article", "/articles/ID (random)", [f"/articles/{i}" for i in article_ids]),
        Variant("article", "/articles/ID (matched)", [f"/articles/{i}" for i in matched]),
        Variant("sources", "/sources", ["/sources"]),
        Variant("alerts", "/alerts", ["/alerts"]),
        Variant("alerts", "/alerts?page=3", ["/alerts?page=3"]),
        Variant("alerts", "/alerts?topic=", [f"/alerts?topic={topic}"]),
        Variant("query", "/query?q=…", [f"/query?q={q}"]),
        Variant("query", "/query?q=…&since=7d", [f"/query?q={q}&since=7d"]),
        Variant("query", "/query?q=…&language=zh", ["/query?q=%E6%B4%AA%E6%B0%B4&language=zh"]),
        Variant("query", "/query?q=… (error)", ["/query?q=flood+AND+%28"]),
    ]


def routed(url: str) -> bool:
    """Whether the app has a route for this address (else: not built yet, skipped)."""
    try:
        ROUTES.bind("localhost").match(url.split("?", 1)[0])
    except MethodNotAllowed:
        return True
    except NotFound:
        return False
    return True


def timed(call: Callable[[], Any], count: int, warmup: int,
          cpu: list[float] | None = None) -> list[float]:
    """Wall-clock ms of `count` calls after `warmup`; `cpu`: gets their CPU ms (this
    process's, which another process's load on the machine does not inflate)."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(count):
        started, used = time.perf_counter(), time.process_time()
        call()
        samples.append((time.perf_counter() - started) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - used) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass
class Result:
    variant: Variant
    samples: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    skipped: str | None = None
    failure: str | None = None


def measure(db: Any, sizes: Sizes, requests: int) -> tuple[list[Result], dict[str, float]]:
    config = config_of(sizes)
    client = Client(ReadingRoom(db, lambda: config))
    results = []
    for variant in variants(db, sizes, random.Random(5)):
        result = Result(variant)
        results.append(result)
        if not routed(variant.urls[0]):
            result.skipped = "no such route yet"
            continue
        turn = iter(range(10 ** 9))

        def get(variant: Variant = variant, turn: Iterator[int] = turn,
                result: Result = result) -> None:
            url = variant.urls[next(turn) % len(variant.urls)]
            client.delete_cookie(SEEN_COOKIE)  # Today since the last visit: a day, not 0 s
            try:
                response = client.get(url)
            except Exception as error:  # noqa: BLE001 — in process, a 500 raises: report it
                if result.failure is None:
                    result.failure = f"{url} raised {type(error).__name__}: {error}"
                return
            if response.status_code != 200 and result.failure is None:
                result.failure = f"{url} answered {response.status_code}: " \
                                 f"{response.get_data(as_text=True)[:300]!r}"
        result.samples = timed(get, requests, warmup=3, cpu=result.cpu)
    with db() as session:
        select_1 = timed(lambda: session.execute(text("SELECT 1")).scalar(), requests * 3, 5)
    locked_config = config_of(sizes, token="a-bench-token-long-enough")
    door = Client(ReadingRoom(db, lambda: locked_config))
    signin = timed(lambda: door.get("/signin?next=/"), requests, 3)
    anchor = {"select_1_ms": statistics.median(select_1), "signin_ms": statistics.median(signin)}
    return results, anchor


def summary(results: list[Result]) -> dict[str, dict[str, float]]:
    """Per page group, the figures of its slowest variant (by p95)."""
    pages: dict[str, dict[str, float]] = {}
    for result in results:
        if not result.samples:
            continue
        figures = {"p50_ms": round(statistics.median(result.samples), 2),
                   "p95_ms": round(p95(result.samples), 2),
                   "cpu_p95_ms": round(p95(result.cpu), 2)}
        group = result.variant.group
        if group not in pages or figures["p95_ms"] > pages[group]["p95_ms"]:
            pages[group] = figures
    return {group: pages[group] for group in GROUPS if group in pages}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=200_000)
    parser.add_argument("--stories", type=int, default=20_000)
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    parser.add_argument("--as-is", action="store_true", help="time the cached database at "
                        "the schema it has, without migrating it (to compare indexes: "
                        "downgrade a copy, run with --as-is, then without)")
    parser.add_argument("--cache", type=Path, help="where generated databases are kept "
                        "(default: $MEDIAWATCH_BENCH_CACHE or the temp folder)")
    args = parser.parse_args()
    sizes = Sizes(args.articles, min(args.stories, args.articles), max(args.sources, 3))
    path, generated = database(sizes, args.fresh, args.cache, migrate=not args.as_is)
    print(f"database   {path}  ({path.stat().st_size / 2 ** 20:.0f} MB; "
          + (f"generated in {generated:.1f} s)" if generated is not None else "cached)"))
    db = open_database(f"sqlite:///{path}", migrate=not args.as_is)  # newer migrations run
    results, anchor = measure(db, sizes, args.requests)
    print(f"anchor     SELECT 1 {anchor['select_1_ms']:.3f} ms, "
          f"sign-in page {anchor['signin_ms']:.2f} ms (medians)")
    print(f"{'page':<8} {'variant':<34} {'p50 ms':>8} {'p95 ms':>8} {'x sign-in':>9} "
          f"{'cpu p95':>8}")
    failures = []
    for result in results:
        name = f"{result.variant.group:<8} {result.variant.label:<34}"
        if result.skipped:
            print(f"{name} {'skipped: ' + result.skipped:>27}")
            continue
        p50, slow = statistics.median(result.samples), p95(result.samples)
        mark = "  OVER TARGET" if slow > TARGET_P95_MS else ""
        print(f"{name} {p50:8.1f} {slow:8.1f} {slow / anchor['signin_ms']:9.1f} "
              f"{p95(result.cpu):8.1f}{mark}")
        if result.failure:
            failures.append(result.failure)
            print(f"!!! FAILED: {result.failure}")
    for failure in failures:
        print(f"!!! BENCH FAILURE: {failure}", file=sys.stderr)
    pages = summary(results)
    skipped = sorted({r.variant.group for r in results if r.skipped} - set(pages))
    met = not failures and not skipped and all(p["p95_ms"] <= TARGET_P95_MS
                                               for p in pages.values())
    print(json.dumps({"bench": "web", "articles": sizes.articles, "stories": sizes.stories,
                      "sources": sizes.sources, "pages": pages,
                      "anchor": {k: round(v, 3) for k, v in anchor.items()},
                      "target_p95_ms": TARGET_P95_MS, "met": met, "skipped": skipped,
                      "failures": len(failures)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
