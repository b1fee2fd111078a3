"""AutoThrottle that learns from 304 answers too.

Scrapy's AutoThrottle lowers a server's delay only on a 200: error pages and redirects are
small and fast, and would make it hurry. A 304 is neither: it is the usual answer to the
daemon's conditional GET of an unchanged feed, and its latency is the server's real one.
Without this, a host whose feeds stopped changing keeps the delay of its last 200s, and
many feeds on one host are polled slower than their schedule.
"""
from __future__ import annotations

from scrapy.core.downloader import Slot
from scrapy.extensions.throttle import AutoThrottle
from scrapy.http import Response


class ConditionalAutoThrottle(AutoThrottle):
    def _adjust_delay(self, slot: Slot, latency: float, response: Response) -> None:
        if response.status != 304:
            super()._adjust_delay(slot, latency, response)
            return
        target = latency / self.target_concurrency  # as Scrapy does for a 200
        slot.delay = min(max(self.mindelay, target, (slot.delay + target) / 2), self.maxdelay)
