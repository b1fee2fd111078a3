"""Scrapy extensions: the count of each source's requests, and AutoThrottle that learns from
304 answers too.

Scrapy's AutoThrottle lowers a server's delay only on a 200: error pages and redirects are
small and fast, and would make it hurry. A 304 is neither: it is the usual answer to the
daemon's conditional GET of an unchanged feed, and its latency is the server's real one.
Without this, a host whose feeds stopped changing keeps the delay of its last 200s, and
many feeds on one host are polled slower than their schedule.
"""
from __future__ import annotations

from scrapy import Spider, signals
from scrapy.core.downloader import Slot
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.extensions.throttle import AutoThrottle
from scrapy.http import Request, Response

from crawler.engine.report import CrawlReport
from crawler.engine.shared import REPORT


class RequestCounter:
    """Counts each source's requests, scheduled and done, into the crawl report (the
    progress bar and the summary's `requests`)."""

    def __init__(self, report: CrawlReport) -> None:
        self.report = report

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RequestCounter:
        report = crawler.settings.get(REPORT)
        if report is None:
            raise NotConfigured  # `sources check` counts nothing
        counter = cls(report)
        crawler.signals.connect(counter.scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(counter.done, signal=signals.request_left_downloader)
        return counter

    def scheduled(self, request: Request, spider: Spider) -> None:
        if request.meta.get("source") in self.report.sources:
            self.report.scheduled += 1
            self.report.changed()

    def done(self, request: Request, spider: Spider) -> None:
        source = request.meta.get("source")
        if source in self.report.sources:
            self.report.sources[source].requests += 1
            self.report.finished += 1
            self.report.changed()


class ConditionalAutoThrottle(AutoThrottle):
    def _adjust_delay(self, slot: Slot, latency: float, response: Response) -> None:
        if response.status != 304:
            super()._adjust_delay(slot, latency, response)
            return
        target = latency / self.target_concurrency  # as Scrapy does for a 200
        slot.delay = min(max(self.mindelay, target, (slot.delay + target) / 2), self.maxdelay)
