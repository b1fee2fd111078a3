"""The Scrapy item pipeline: a thin adapter that hands each item the spider yields to the
crawl's sink (`crawler.engine.shared.ITEMS`: the ingest step, or `sources check`'s
collector)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler

from crawler.engine.shared import ITEMS


class ItemPipeline:
    def __init__(self, sink: Callable[[Any], None]) -> None:
        self.sink = sink

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ItemPipeline:
        return cls(crawler.settings[ITEMS])

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        self.sink(item)
        return item
