"""The Twisted reactor that Scrapy runs on. A reactor cannot be started twice in a process,
so one-off crawls (the CLI, the demo, a test that crawls many times) share one that runs in
a background thread for the life of the process: `run_on_reactor` hands it a job and waits
for the result. The daemon instead runs the reactor in its main thread (`install` only)."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from scrapy.utils.reactor import install_reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"  # Scrapy's default
T = TypeVar("T")
_lock = threading.Lock()


def install() -> Any:
    """The process's reactor, installed on first use: the asyncio one Scrapy expects."""
    install_reactor(REACTOR)  # no-op when it is installed already
    from twisted.internet import reactor  # the installed one: importable only after install

    return reactor


def run_on_reactor(job: Callable[[], Deferred[T] | T]) -> T:
    """Run `job` on the reactor thread and wait for its result (a Deferred's, if it returns
    one); its exception is raised here."""
    reactor = _background()
    result: Future[T] = Future()

    def start() -> None:
        done = maybeDeferred(job)
        done.addCallbacks(result.set_result, lambda failure: _fail(result, failure))

    reactor.callFromThread(start)
    return result.result()


def _fail(result: Future[Any], failure: Failure) -> None:
    result.set_exception(failure.value)


def _background() -> Any:
    """The reactor, running in a daemon thread (started on first use)."""
    reactor = install()
    with _lock:
        if not reactor.running:
            started = threading.Event()
            reactor.callWhenRunning(started.set)
            threading.Thread(target=_run, args=(reactor,), name="reactor", daemon=True).start()
            started.wait()
    return reactor


def _run(reactor: Any) -> None:
    asyncio.set_event_loop(reactor._asyncioEventloop)  # Scrapy's coroutines look for it here
    reactor.run(installSignalHandlers=False)
