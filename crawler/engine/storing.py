"""Storing off the reactor. Extraction, dedupe, matching and storing take tens of
milliseconds an article: on the reactor thread they would hold up every download and the
daemon's `/healthz`. So the crawl's sink (the ingest step, or `sources check`'s collector)
runs in one thread of its own, one item at a time, in the order the spider yielded them.

Why that order has to be taken at the yield: Scrapy reads a callback's output ahead of its
item pipeline (a small queue per response) and works on several responses at once, so the
pipeline is not called in the order the items were yielded. A poll's last step (the spider's
`PollDone`) may then reach the pipeline before the last items of an earlier step of the same
poll, which still wait in that step's queue. Stored in that order, the poll's validators
would be kept before those items are stored: one that then fails to store is never read
again (the next poll is answered 304). Hence a spider middleware
(`crawler.engine.pipeline.QueueAtYield`) queues each item the moment it leaves the spider;
the item pipeline only waits for it to be stored (so the scraper, which counts items in
progress, does not download unboundedly ahead).

One thread for every source, not one per source: the ingest step shares state between
sources (the near-duplicate index, the report, a sighting of another source's link), and
SQLite has one writer anyway; a single thread stores exactly what the reactor stored before,
in the same order."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadable import isInIOThread
from twisted.python.threadpool import ThreadPool

from crawler.engine.report import CrawlReport
from crawler.engine.shared import Shared


class Storing(Shared):
    """The sink run in a worker thread: items in, Deferreds (fired on the reactor) out."""

    def __init__(self, sink: Callable[[Any], None], report: CrawlReport | None = None) -> None:
        self.sink = sink
        self.reactor: Any = None
        self.worker: ThreadPool | None = None
        self.queued: dict[int, tuple[Any, Deferred[Any]]] = {}  # id(item) → (item, stored),
        #                                                         until the pipeline asks
        self.pending: Counter[str] = Counter()  # per source: items queued, not yet stored
        self.waiters: dict[str, list[Deferred[None]]] = {}  # per source: see `settled`
        if report is not None:  # its listeners (progress bar, daemon, metrics): the reactor's
            report.notify = self.on_reactor

    def open(self, reactor: Any) -> None:
        self.reactor, self.worker = reactor, ThreadPool(1, 1, name="storing")
        self.worker.start()

    def close(self) -> None:
        """(At the spider's close: every item is stored, the thread is idle.)"""
        if self.worker is not None:
            self.worker.stop()

    def put(self, item: Any) -> None:
        """(The reactor.) Queue `item` for storing, behind every item queued before."""
        self.pending[item.source] += 1
        assert self.worker is not None, "storing before the spider opened"
        stored = deferToThreadPool(self.reactor, self.worker, self.sink, item)
        stored.addBoth(self._stored, item.source)
        self.queued[id(item)] = item, stored.addCallback(lambda _: item)

    def stored(self, item: Any) -> Deferred[Any]:
        """(The reactor.) → fires with `item` once it is stored (queued now if it was not:
        a start item, which no middleware sees)."""
        queued, _ = self.queued.get(id(item), (None, None))
        if queued is not item:
            self.put(item)
        return self.queued.pop(id(item))[1]

    def settled(self, source: str) -> Deferred[None]:
        """(The reactor.) → fires once every item of `source` queued so far is stored (at
        once if none waits). Cancelling it only stops the wait."""
        waiter: Deferred[None] = Deferred(lambda d: d.callback(None))
        if self.pending[source]:
            self.waiters.setdefault(source, []).append(waiter)
        else:
            waiter.callback(None)
        return waiter

    def _stored(self, result: Any, source: str) -> Any:
        self.pending[source] -= 1
        if not self.pending[source]:
            del self.pending[source]
            for waiter in self.waiters.pop(source, []):
                if not waiter.called:
                    waiter.callback(None)
        return result

    def on_reactor(self, call: Callable[..., None], *args: Any) -> None:
        """Run `call` on the reactor thread: now when already there, else next."""
        if isInIOThread() or self.reactor is None:
            call(*args)
        else:
            self.reactor.callFromThread(call, *args)

