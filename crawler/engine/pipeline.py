"""The Scrapy side of storing (see crawler.engine.storing): a spider middleware that queues
each item the moment the spider yields it, and the item pipeline, which waits for it to be
stored. The crawl's `Storing` (`crawler.engine.shared.ITEMS`) runs its sink (the ingest
step, or `sources check`'s collector) in a thread of its own."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future

from crawler.engine.shared import ITEMS
from crawler.engine.storing import Storing


class QueueAtYield:
    """Reads a callback's whole output at once (the spider has parsed the response
    already), queues each item for storing as it is yielded, then hands Scrapy the requests
    first: the downloads go on whatever waits to be stored, and a poll's steps, counted as
    they end, end at once (its `done` does not wait for storing: see
    crawler.daemon.service's `start_poll`). The items follow, each handled once stored."""

    def __init__(self, storing: Storing) -> None:
        self.storing = storing

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> QueueAtYield:
        return cls(crawler.settings[ITEMS])

    async def process_spider_output(self, response: Response, result: AsyncIterator[Any]
                                    ) -> AsyncIterator[Any]:
        requests, items = [], []
        async for out in result:
            if isinstance(out, Request):
                requests.append(out)
            else:
                self.storing.put(out)
                items.append(out)
        for out in requests + items:
            yield out


class ItemPipeline:
    def __init__(self, storing: Storing, reactor: Any) -> None:
        self.storing, self.reactor = storing, reactor

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ItemPipeline:
        from twisted.internet import reactor  # the installed one (crawler.engine.reactor)

        return cls(crawler.settings[ITEMS], reactor)

    def open_spider(self) -> None:
        self.storing.open(self.reactor)

    def close_spider(self) -> None:
        """Scrapy closes the spider once every item is handled: the thread is idle."""
        self.storing.close()

    async def process_item(self, item: Any) -> Any:
        """Done once the item is stored: the scraper counts it in progress until then, and
        stops downloading ahead of a backlog (its slot's `needs_backout`)."""
        return await maybe_deferred_to_future(self.storing.stored(item))
