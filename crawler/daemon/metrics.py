"""Prometheus metrics of the daemon: counters fed by each finished poll, the requests in
flight sampled from the scheduler, and gauges read from the database at scrape time (the
alert outbox, source health). Everything lives in the instance's own registry."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from crawler.engine.report import SourceReport
from storage.models import Alert, Source

log = logging.getLogger(__name__)

ALERT_STATUSES = ("pending", "sending", "sent", "failed")
POLL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what `render` writes


def http_class(status: int | None) -> str:
    """`2xx` … `5xx`; `none` when no response came (a connection error, a timeout)."""
    return f"{status // 100}xx" if status is not None and 100 <= status < 600 else "none"


class Metrics:
    """`in_flight()` gives the requests outstanding per source; `sample()` reads it (the
    health site calls it on the reactor thread before each render)."""

    def __init__(self, db: sessionmaker[Session],
                 in_flight: Callable[[], Mapping[str, int]] = dict,
                 queue_depth: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.in_flight = in_flight
        self.sampled: set[str] = set()  # sources in_flight() has named
        self.children: dict[tuple[Any, tuple[str, ...]], Any] = {}  # see `child`
        self.flight = Gauge("mediawatch_source_in_flight", "Requests of a source outstanding",
                            ["source"], registry=self.registry)
        self.polls = Counter("mediawatch_polls", "Polls of a source, by outcome",
                             ["source", "status"], registry=self.registry)
        self.responses = Counter("mediawatch_http_responses",
                                 "Polls by HTTP status class of the source's response",
                                 ["source", "class"], registry=self.registry)
        self.articles = Counter("mediawatch_articles",
                                "Articles found, by outcome (new, known, duplicate)",
                                ["source", "outcome"], registry=self.registry)
        self.matches = Counter("mediawatch_matches", "Topic matches of new articles",
                               ["source"], registry=self.registry)
        self.poll_seconds = Histogram("mediawatch_poll_seconds", "Duration of a poll",
                                      ["source"], buckets=POLL_BUCKETS, registry=self.registry)
        self.role = Gauge("mediawatch_role", "This daemon's role in its deployment (1: its "
                          "role now; a daemon without `queue` leads itself)", ["role"],
                          registry=self.registry)
        self.lead(True)
        self.claimed = Counter("mediawatch_polls_claimed",
                               "Polls this member took from the queue and started",
                               registry=self.registry)
        self.reclaimed = Counter("mediawatch_polls_reclaimed",
                                 "Of those, polls taken over from a member that did not "
                                 "finish them", registry=self.registry)
        self.registry.register(_Stored(db))
        if queue_depth is not None:
            self.registry.register(_Queue(queue_depth))

    def lead(self, leading: bool) -> None:
        self.role.labels("leader").set(int(leading))
        self.role.labels("member").set(int(not leading))

    def observe_poll(self, tally: SourceReport, seconds: float) -> None:
        """Count one finished poll of a source."""
        source, child = tally.name, self.child
        child(self.polls, source, tally.status).inc()
        if tally.status != "deferred":  # a deferred poll sent no request
            child(self.responses, source, http_class(tally.http_status)).inc()
        for outcome, count in (("new", tally.new), ("known", tally.known),
                               ("duplicate", tally.duplicates)):
            child(self.articles, source, outcome).inc(count)
        child(self.matches, source).inc(tally.matches)
        child(self.poll_seconds, source).observe(seconds)

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, kept: a dictionary lookup per poll, not a locked call."""
        key = (metric, labels)
        found = self.children.get(key)
        if found is None:
            found = self.children[key] = metric.labels(*labels)
        return found

    def sample(self) -> None:
        """Read `in_flight()` into its gauge; a source it no longer names reads 0."""
        counts = self.in_flight()
        self.sampled.update(counts)
        for source in self.sampled:
            self.flight.labels(source).set(counts.get(source, 0))

    def render(self) -> bytes:
        """The Prometheus text format; reads the database (call it off the reactor)."""
        return generate_latest(self.registry)


class _Queue(Collector):
    """The deployment's queue depth, read from Redis at scrape time (none while it is down)."""

    def __init__(self, depth: Callable[[], int]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[Metric]:
        from redis import RedisError  # only a daemon with `queue` has this collector

        try:
            depth = self.depth()
        except RedisError as exc:
            log.warning("metrics: the queue (Redis) is unreachable: %s", exc)
            return
        yield GaugeMetricFamily("mediawatch_queue_depth", "Polls offered and not yet "
                                "finished in the deployment: waiting, or taken and running",
                                value=depth)


class _Stored(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, db: sessionmaker[Session]) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("mediawatch_database_up",
                               "Whether the database answered this scrape")
        try:
            yield from self.stored()
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", str(exc).splitlines()[0])
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
        yield up

    def stored(self) -> list[Metric]:
        with self.db() as session:
            alerts = session.execute(select(Alert.channel, Alert.status, func.count())
                                     .group_by(Alert.channel, Alert.status)).all()
            sources = session.execute(select(Source.name, Source.consecutive_failures,
                                             Source.last_success_at)
                                      .order_by(Source.name)).all()
        counts = {(channel, status): count for channel, status, count in alerts}
        outbox = GaugeMetricFamily("mediawatch_alerts",
                                   "Alerts in the outbox by channel and status "
                                   "(pending: the channel's queue)", labels=["channel", "status"])
        for channel in sorted({channel for channel, _ in counts}):
            for status in sorted({*ALERT_STATUSES, *(s for c, s in counts if c == channel)}):
                outbox.add_metric([channel, status], counts.get((channel, status), 0))
        failures = GaugeMetricFamily("mediawatch_source_consecutive_failures",
                                     "Failed polls of a source since its last success",
                                     labels=["source"])
        success = GaugeMetricFamily("mediawatch_source_last_success_timestamp_seconds",
                                    "When a source was last polled successfully",
                                    labels=["source"])
        for name, failed, last_success in sources:
            failures.add_metric([name], failed or 0)
            if last_success is not None:
                success.add_metric([name], last_success.timestamp())
        return [outbox, failures, success]
