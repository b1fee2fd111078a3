"""One-off crawls: config + database → one Scrapy crawl of the chosen sources → report."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from crawler.config import Config, Source
from crawler.normalize import canonical_url
from crawler.report import CrawlReport
from spiders.items import SourceSpec
from storage import repository as repo


def sync_config(config: Config, db: sessionmaker[Session]) -> None:
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef(s.name, s.kind, s.url)
                                    for s in config.sources])


def source_specs(sources: Sequence[Source], db: sessionmaker[Session]) -> list[SourceSpec]:
    with db() as session:
        state = {s.name: s for s in repo.list_sources(session)}
    return [SourceSpec(s.name, s.kind, s.url, s.follow, s.language,
                       state[s.name].etag, state[s.name].last_modified) for s in sources]


def run_crawl(config: Config, db: sessionmaker[Session], names: Sequence[str] = (),
              on_change: Callable[[CrawlReport], None] | None = None,
              verbose: bool = False) -> CrawlReport:
    """Crawl the named sources (all when none) once, in this process."""
    from scrapy.crawler import CrawlerProcess  # Scrapy and extraction load only to crawl

    from alerts.topics import TopicSet
    from crawler.alerting import alert_policies
    from crawler.memory import RecentArticles
    from crawler.pipeline import Ingest
    from crawler.settings import scrapy_settings
    from spiders.source import SourceSpider

    sources = config.select_sources(names)
    sync_config(config, db)
    report = CrawlReport.for_sources([s.name for s in sources])
    if on_change:
        report.on_change = on_change

    def seen(url: str) -> bool:
        with db() as session:
            return repo.is_known_url(session, canonical_url(url))

    process = CrawlerProcess(scrapy_settings(config.crawl, verbose))
    crawler = process.create_crawler(SourceSpider)
    crawler.ingest = Ingest(db, report, {s.name: s.language for s in sources},
                            {s.name: s.tags for s in config.sources},
                            TopicSet.compile(config.topics, config.aliases),
                            alert_policies(config), config.crawl.backfill,
                            RecentArticles(config.dedupe))
    process.crawl(crawler, sources=source_specs(sources, db), seen=seen)
    process.start()
    return report
