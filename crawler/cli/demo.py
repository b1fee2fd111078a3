"""What `mediawatch demo` does: the bundled sample news web, served on loopback and run
through the whole flow into a fresh SQLite database."""
from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from alerts.backtest import backtest
from alerts.channels import open_channels
from alerts.dispatcher import Dispatcher
from alerts.query import parse_query
from alerts.topics import TopicRule
from basis.errors import UsageError
from crawler.cli import views
from crawler.config import load_config
from crawler.engine.report import CrawlReport
from crawler.engine.runner import run_crawl
from storage import repository as repo
from storage.db import open_database

SITE = Path(__file__).with_name("demo_site")

# The demo's own config.yaml, written next to its database so that the CLI can explore
# what it crawled ({base}: the sample web on a free loopback port).
CONFIG = """\
# mediawatch demo: the bundled sample news web, crawled once by `mediawatch demo`
database: "{database}"
crawl:
  allow_private: true      # the sample web is served on loopback
  per_domain: 4
  backfill: 36500d         # the sample web is dated November 2026: alert on all of it
sources:
  - {{name: mss-statements, kind: feed, url: "{base}/feeds/mss.xml", every: 10m,
     language: zh, tags: [official]}}
  - {{name: world-desk, kind: feed, url: "{base}/feeds/world.atom", every: 10m, tags: [press]}}
  - {{name: pacific-wire, kind: feed, url: "{base}/feeds/wire.xml", every: 10m, tags: [press]}}
  - {{name: hk-daily, kind: feed, url: "{base}/feeds/hk.xml", every: 10m, tags: [press]}}
topics:
  - name: espionage-warnings
    query: >-
      ("state security" OR 国家安全部 OR 国安部) AND (student* OR 留学生)
      AND (spy* OR espionage OR 间谍 OR 策反)
    channels: [console]
  - name: student-asylum
    query: (student* OR 留学生) AND (asylum OR 庇护)
    channels: [console]
channels:
  console: {{type: console}}
"""


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


def refuse_existing(keep: Path) -> None:
    """`--keep PATH` names a new database: the demo writes its own sources, articles and
    config (PATH with .yaml), never over a real database or config.yaml."""
    if keep.exists() or keep.is_symlink() or not keep.name:  # `.`, `/`, a folder: no file
        raise UsageError(f"--keep {keep}: it exists; the demo writes a new database and "
                         "config and never overwrites one: choose a new path")
    config_path = keep.with_suffix(".yaml")
    if config_path == keep:
        raise UsageError(f"--keep {keep}: name the database file (e.g. demo.db); the demo "
                         "writes its config next to it, as a .yaml file")
    if config_path.exists() or config_path.is_symlink():
        raise UsageError(f"--keep {keep}: {config_path} exists; the demo writes a new "
                         "database and config and never overwrites one: choose a new path")


def run_demo(console: Console, keep: Path | None, verbose: bool) -> CrawlReport:
    if keep:
        refuse_existing(keep)
    db_path = keep or Path(tempfile.mkdtemp(prefix="mediawatch-demo-")) / "demo.db"
    config_path = db_path.with_suffix(".yaml")
    with serve(SITE) as base:
        config_path.write_text(CONFIG.format(base=base, database=f"sqlite:///{db_path.resolve()}"),
                               encoding="utf-8")
        config = load_config(config_path)
        console.print(Rule("mediawatch demo"))
        console.print(f"sample news web: {base}/  ({len(config.sources)} feeds)")
        console.print(f"database:        {db_path}")
        console.print(f"config:          {config_path}")
        db = open_database(config.database)
        with views.CrawlProgress(console) as progress:
            report = run_crawl(config, db, on_change=progress.update, verbose=verbose)
    console.print(views.crawl_summary(report))
    console.print(Rule("alerts, as the console channel delivers them"))
    dispatcher = Dispatcher(db, open_channels(config.channels), config.alert_controls(),
                            story_url=config.web.story_url)
    delivered = dispatcher.deliver_due()
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
    console.print(f"\nexplore: mediawatch --config {config_path} articles show "
                  f"{articles[-1].id if articles else 1}  (or: stories list, topics list, "
                  "topics test student-asylum)")
    return report
