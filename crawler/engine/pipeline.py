"""The Scrapy item pipeline: a thin adapter that hands each item the spider yields to the
crawl's sink (`crawler.engine.shared.ITEMS`: the ingest step, or `sources check`'s
collector) in a worker thread of its own. Extraction, dedupe, matching and storing take tens
of milliseconds an article: on the reactor thread they would hold up every download and the
daemon's `/healthz`. One thread, so items are still stored one at a time, in the order the
spider yielded them; a poll ends (its `PollDone.done` fires, on the reactor) only once its
last item is stored."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadable import isInIOThread
from twisted.python.threadpool import ThreadPool

from crawler.engine.report import CrawlReport
from crawler.engine.shared import ITEMS, REPORT
from spiders.items import PollDone


class ItemPipeline:
    def __init__(self, sink: Callable[[Any], None], reactor: Any,
                 report: CrawlReport | None = None) -> None:
        self.sink, self.reactor = sink, reactor
        self.worker = ThreadPool(1, 1, name="ingest")
        if report is not None:  # its listeners (progress bar, metrics) run on the reactor
            report.notify = self.on_reactor

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ItemPipeline:
        from twisted.internet import reactor  # the installed one (crawler.engine.reactor)

        return cls(crawler.settings[ITEMS], reactor, crawler.settings.get(REPORT))

    def open_spider(self) -> None:
        self.worker.start()

    def close_spider(self) -> None:
        """Scrapy closes the spider once every item is handled: the thread is idle."""
        self.worker.stop()

    async def process_item(self, item: Any) -> Any:
        await maybe_deferred_to_future(
            deferToThreadPool(self.reactor, self.worker, self.sink, item))
        if isinstance(item, PollDone) and item.done is not None and not item.done.called:
            item.done.callback(item.source)  # (not given up meanwhile)
        return item

    def on_reactor(self, call: Callable[..., None], *args: Any) -> None:
        """Run `call` on the reactor thread: now when already there, else next."""
        if isInIOThread():
            call(*args)
        else:
            self.reactor.callFromThread(call, *args)
