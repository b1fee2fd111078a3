"""The daemon's health site on a free port, for tests/test_health.py (a reactor runs once per
process, so each test serves from a process of its own): prints the port, serves until
SIGTERM.

    python tests/health_server.py --db URL --config PATH [--scheduler-dead]
"""
from __future__ import annotations

import argparse

from twisted.internet import reactor

from crawler.config import load_config
from crawler.daemon.metrics import Metrics
from crawler.daemon.site import listen, site
from crawler.engine.report import SourceReport
from storage.db import open_database

IN_FLIGHT = {"wire": 2}
POLL = SourceReport("wire", status="ok", http_status=200, requests=3, items=5, new=1, known=3,
                    duplicates=1, matches=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--scheduler-dead", action="store_true")
    args = parser.parse_args()
    db = open_database(args.db)
    metrics = Metrics(db, in_flight=lambda: dict(IN_FLIGHT))
    metrics.observe_poll(POLL, 0.42)
    served = site(db, load_config(args.config), metrics, lambda: not args.scheduler_dead)
    port = listen(reactor, served, "127.0.0.1:0")
    print(port.getHost().port, flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
