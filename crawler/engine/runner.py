"""One-off crawls: config + database → one Scrapy crawl of the chosen sources → report."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session, sessionmaker

from basis.clock import utcnow
from basis.urls import canonical_url
from crawler.config import Config, Source
from crawler.engine.report import CrawlReport
from spiders.items import SourceSpec
from storage import repository as repo
from storage.models import Source as SourceRow


def sync_config(config: Config, db: sessionmaker[Session]) -> None:
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef(s.name, s.kind, s.url)
                                    for s in config.sources])


def source_specs(sources: Sequence[Source], db: sessionmaker[Session],
                 backfill: timedelta) -> list[SourceSpec]:
    with db() as session:
        state = {s.name: s for s in repo.list_sources(session, [s.name for s in sources])}
    return [spec_for(s, state[s.name], backfill) for s in sources]


def spec_for(source: Source, state: SourceRow | Row[Any], backfill: timedelta) -> SourceSpec:
    """What the spider needs of a source; on its first poll, entries dated before the
    backfill window are not followed."""
    return SourceSpec(source.name, source.kind, source.url, source.follow, source.language,
                      state.etag, state.last_modified, source.links, source.next_page,
                      source.max_pages, not_before=state.not_before,
                      since=utcnow() - backfill if state.last_success_at is None else None)


def run_crawl(config: Config, db: sessionmaker[Session], names: Sequence[str] = (),
              on_change: Callable[[CrawlReport], None] | None = None,
              verbose: bool = False) -> CrawlReport:
    """Crawl the named sources (all when none) once, in this process."""
    from scrapy.crawler import CrawlerProcess  # Scrapy and extraction load only to crawl

    from alerts.topics import TopicSet
    from crawler.alerting import alert_policies
    from crawler.engine.pipeline import Ingest
    from crawler.engine.settings import scrapy_settings
    from crawler.stages.placement import RecentArticles
    from spiders.source import SourceSpider

    sources = config.select_sources(names)
    sync_config(config, db)
    report = CrawlReport.for_sources([s.name for s in sources])
    if on_change:
        report.on_change = on_change

    process = CrawlerProcess(scrapy_settings(config.crawl, verbose))
    crawler = process.create_crawler(SourceSpider)
    crawler.ingest = Ingest(db, report, {s.name: s.language for s in sources},
                            {s.name: s.tags for s in config.sources},
                            TopicSet.compile(config.topics, config.aliases),
                            alert_policies(config), config.crawl.backfill,
                            RecentArticles(config.dedupe))
    process.crawl(crawler, sources=source_specs(sources, db, config.crawl.backfill),
                  seen=_seen_in(db), redact=config.redactor())
    process.start()
    return report


def check_source(config: Config, db: sessionmaker[Session], name: str,
                 verbose: bool = False) -> list[Any]:
    """Poll one source now, unconditionally, without following its links or storing
    anything. → the items the spider yielded (what a crawl would work on)"""
    from scrapy.crawler import CrawlerProcess

    from crawler.engine.settings import scrapy_settings
    from spiders.source import SourceSpider

    sources = config.select_sources([name])
    sync_config(config, db)
    spec = replace(source_specs(sources, db, config.crawl.backfill)[0], etag=None,
                   last_modified=None, follow=False, not_before=None)
    process = CrawlerProcess(scrapy_settings(config.crawl, verbose)
                             | {"ITEM_PIPELINES": {"crawler.engine.runner.Collect": 100}})
    crawler = process.create_crawler(SourceSpider)
    crawler.collected = []
    process.crawl(crawler, sources=[spec], seen=_seen_in(db), redact=config.redactor())
    process.start()
    return crawler.collected


class Collect:
    """An item pipeline that keeps what the spider yields (for `sources check`)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    @classmethod
    def from_crawler(cls, crawler: Any) -> Collect:
        return cls(crawler.collected)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        self.items.append(item)
        return item


def _seen_in(db: sessionmaker[Session]) -> Callable[[str], bool]:
    """The persistent seen-filter: whether a URL is stored (or was seen) already."""

    def seen(url: str) -> bool:
        with db() as session:
            return repo.is_known_url(session, canonical_url(url))

    return seen
