"""One-off crawls: config + database → one Scrapy crawl of the chosen sources, on the
process's reactor (crawler.engine.reactor) → its report."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from scrapy.crawler import CrawlerRunner
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred

from crawler.config import Config
from crawler.engine import reactor
from crawler.engine.fetchguard import install_resolver
from crawler.engine.ingest import Ingest, Rules, rechecked_sources
from crawler.engine.report import CrawlReport
from crawler.engine.settings import scrapy_settings
from crawler.engine.shared import ITEMS, REPORT, Shared
from crawler.engine.sources import due_rechecks, seen_in, source_specs, sync_config
from crawler.engine.storing import Storing
from spiders.items import Recheck, SourceSpec
from spiders.source import SourceSpider


def run_crawl(config: Config, db: sessionmaker[Session], names: Sequence[str] = (),
              on_change: Callable[[CrawlReport], None] | None = None,
              verbose: bool = False) -> CrawlReport:
    """Crawl the named sources (all when none) once, and re-check their statements that
    are due; wait for it to end."""
    sources = config.select_sources(names)
    sync_config(config, db)
    report = CrawlReport.for_sources([s.name for s in sources])
    if on_change:
        report.on_change = on_change
    ingest = Ingest(db, report, Rules.of(config))
    rechecks = due_rechecks(db, rechecked_sources(config) & {s.name for s in sources})
    _crawl(scrapy_settings(config.crawl, verbose) | {ITEMS: Storing(ingest, report),
                                                     REPORT: report},
           source_specs(sources, db, config.crawl.backfill), db, config, rechecks)
    return report


def check_sources(config: Config, db: sessionmaker[Session], names: Sequence[str] = (),
                  verbose: bool = False) -> dict[str, list[Any]]:
    """Poll the named sources (all when none) now, in one crawl, unconditionally, without
    following their links or storing anything. → per source, in config order, the items
    the spider yielded (what a crawl would work on)"""
    sources = config.select_sources(names)
    sync_config(config, db)
    specs = [replace(spec, etag=None, last_modified=None, follow=False, not_before=None)
             for spec in source_specs(sources, db, config.crawl.backfill)]
    collected = Collected()
    _crawl(scrapy_settings(config.crawl, verbose) | {ITEMS: Storing(collected)}, specs, db,
           config)
    found: dict[str, list[Any]] = {source.name: [] for source in sources}
    for item in collected:
        found[item.source].append(item)
    return found


def _crawl(settings: dict[str, Any], specs: list[SourceSpec], db: sessionmaker[Session],
           config: Config, rechecks: list[Recheck] | None = None) -> None:
    """One crawl of `specs` (and `rechecks`) on the process's reactor."""

    def crawl() -> Deferred[None]:
        install_resolver(settings, reactor.install())
        return CrawlerRunner(settings).crawl(SourceSpider, sources=specs, seen=seen_in(db),
                                             redact=config.redactor(), rechecks=rechecks or ())

    reactor.run_on_reactor(crawl)


class Collected(Shared, list[Any]):
    """Where `sources check` keeps the items the spider yields."""

    def __call__(self, item: Any) -> None:
        self.append(item)
