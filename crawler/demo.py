"""`mediawatch demo`: the bundled sample news web, served on loopback and run through the
whole flow into a fresh SQLite database."""
from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from alerts.backtest import backtest
from alerts.query import parse_query
from alerts.topics import TopicRule
from crawler import views
from crawler.alerting import dispatcher
from crawler.config import Config, ConsoleChannel, CrawlSettings, Source, Topic
from crawler.report import CrawlReport
from crawler.runner import run_crawl
from storage import repository as repo
from storage.db import open_database

SITE = Path(__file__).with_name("demo_site")

TOPICS = (
    Topic(name="espionage-warnings",
          query='("state security" OR 国家安全部 OR 国安部) AND (student* OR 留学生) '
                'AND (spy* OR espionage OR 间谍 OR 策反)',
          channels=("console",)),
    Topic(name="student-asylum", query="(student* OR 留学生) AND (asylum OR 庇护)",
          channels=("console",)),
)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve a folder on a free loopback port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def demo_config(base: str, database: str) -> Config:
    def feed(name: str, path: str, **extra: Any) -> Source:
        return Source(name=name, kind="feed", url=f"{base}{path}", every="10m", **extra)

    return Config(
        database=database,
        # the sample web is dated November 2026: alert on all of it, whenever the demo runs
        crawl=CrawlSettings(allow_private=True, per_domain=4, backfill=timedelta(days=36500)),
        sources=(feed("mss-statements", "/feeds/mss.xml", language="zh", tags=("official",)),
                 feed("world-desk", "/feeds/world.atom", tags=("press",)),
                 feed("pacific-wire", "/feeds/wire.xml", tags=("press",)),
                 feed("hk-daily", "/feeds/hk.xml", tags=("press",))),
        topics=TOPICS,
        channels={"console": ConsoleChannel(type="console")},
    )


def run_demo(console: Console, keep: Path | None, verbose: bool) -> CrawlReport:
    workdir = Path(tempfile.mkdtemp(prefix="mediawatch-demo-"))
    db_path = keep or workdir / "demo.db"
    database = f"sqlite:///{db_path.resolve()}"
    with serve(SITE) as base:
        config = demo_config(base, database)
        console.print(Rule("mediawatch demo"))
        console.print(f"sample news web: {base}/  ({len(config.sources)} feeds)")
        console.print(f"database:        {db_path}")
        db = open_database(database)
        with views.CrawlProgress(console) as progress:
            report = run_crawl(config, db, on_change=progress.update, verbose=verbose)
    console.print(views.crawl_summary(report))
    console.print(Rule("alerts, as the console channel delivers them"))
    delivered = dispatcher(config, db).deliver_due()
    console.print(f"{delivered.sent} alerts sent, {delivered.failed} failed")
    with db() as session:
        articles = list(repo.list_articles(session))
        console.print(views.articles_table(articles))
        console.print(views.stories_table(repo.list_stories(session)))
        for topic in config.topics:
            rule = TopicRule(topic.name, parse_query(topic.query))
            hits = backtest(session, rule, None, {}, limit=20)["hits"]
            console.print(Rule(f"topic {topic.name}: {len(hits)} articles"))
            console.print(Text(topic.query, style="dim"))
            views.print_hits(console, hits)
    console.print(f"\nexplore: mediawatch --db sqlite:///{db_path} articles show "
                  f"{articles[-1].id if articles else 1}  (or: stories list, topics list)")
    return report
