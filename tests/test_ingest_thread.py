"""Ingest runs in a worker thread, not on the reactor: while an article is being stored (here:
held on purpose) the daemon still answers `/healthz` and downloads another source's feed,
and a poll ends only once its last item is stored."""
from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from crawler.daemon.service import Daemon
from crawler.engine.ingest import Ingest
from crawler.engine.reactor import run_on_reactor
from spiders.items import ArticleSeen, PollDone
from tests import events
from tests.conftest import Cli, web_config
from tests.receivers import free_port
from tests.test_daemon import STATEMENTS, in_process
from tests.webserver import FixtureWeb

QUICK = {"name": "quick", "kind": "feed", "url": "/feeds/dates.xml", "every": "1h"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_held_ingest_holds_up_neither_healthz_nor_another_sources_download(
        cli: Cli, web: FixtureWeb, monkeypatch: pytest.MonkeyPatch) -> None:
    held, release = threading.Event(), threading.Event()
    order: list[str] = []  # what happened, in order
    article, poll_done, unmark = Ingest.article, Ingest.poll_done, Daemon._unmark

    def slow_article(self: Ingest, item: ArticleSeen, tally: Any) -> None:
        if item.source == "statements" and not release.is_set():
            held.set()
            events.happened()
            assert release.wait(60), "never released"
        article(self, item, tally)

    def stored_poll(self: Ingest, item: PollDone, tally: Any) -> None:
        poll_done(self, item, tally)
        order.append(f"stored {item.source}")

    def ended_poll(self: Daemon, result: Any, name: str) -> Any:
        order.append(f"ended {name}")
        return unmark(self, result, name)

    monkeypatch.setattr(Ingest, "article", slow_article)
    monkeypatch.setattr(Ingest, "poll_done", stored_poll)
    monkeypatch.setattr(Daemon, "_unmark", ended_poll)
    config = web_config(web, STATEMENTS, backfill="36500d")
    config["daemon"] = {"startup_spread": "1s"}
    cli.write_config(config)
    base = f"127.0.0.1:{free_port()}"
    with in_process(cli, listen=base) as service:
        events.wait_for(held.is_set, "an article's ingest to start")
        assert requests.get(f"http://{base}/healthz", timeout=10).status_code == 200
        config["sources"] += web_config(web, QUICK)["sources"]
        cli.write_config(config)
        run_on_reactor(service.reload)  # the reactor is free: this returns
        events.wait_for(lambda: web.hits("/feeds/dates.xml"), "another source's download")
        assert not release.is_set() and "stored statements" not in order
        release.set()
        events.wait_for(lambda: "ended statements" in order and "ended quick" in order,
                        "both polls to end")
    assert order.index("stored statements") < order.index("ended statements")
    assert order.index("stored quick") < order.index("ended quick")
