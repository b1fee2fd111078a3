"""`mediawatch run`: one process, one Twisted reactor, one long-lived Scrapy crawler into which
every scheduled poll is injected as a request (an unchanged feed costs one conditional GET,
no new crawler). APScheduler jobs poll the sources, re-check official statements, and run
alert dispatch, digests, source health and retention; a commit that queued alerts wakes the
dispatch at once (its tick is the safety net). One daemon per database (a lock), unless
`queue` is set: then every daemon on the database is a member of one deployment, one of
them leads (crawler.daemon.deployment), and polls go through the queue; SIGTERM/SIGINT stop
cleanly, SIGHUP reloads the config (an invalid one is rejected and the
running one kept)."""
from __future__ import annotations

import fcntl
import gc
import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from scrapy import signals
from scrapy.crawler import CrawlerRunner
from scrapy.utils.defer import deferred_from_coro
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from alerts.backtest import match_past
from alerts.channels import open_channels
from alerts.digest import send_digests
from alerts.dispatcher import Dispatcher
from alerts.outbox import on_queued
from basis.clock import utcnow
from basis.errors import RuntimeFailure
from basis.secrets import Redactor
from crawler.config import Config, ConfigError, load_config
from crawler.daemon.deployment import Member
from crawler.daemon.metrics import Metrics
from crawler.daemon.schedule import first_run, interval_of, may_poll, trigger_for
from crawler.daemon.site import listen, parse_address, site
from crawler.daemon.watchdog import check_sources
from crawler.daemon.web import is_loopback
from crawler.engine import reactor
from crawler.engine.fetchguard import install_resolver
from crawler.engine.ingest import Ingest, Rules, rechecked_sources
from crawler.engine.report import CrawlReport, SourceReport
from crawler.engine.settings import scrapy_settings
from crawler.engine.shared import ITEMS, REPORT
from crawler.engine.sources import (
    due_rechecks,
    seen_in,
    source_specs,
    spec_for,
    sync_config,
)
from crawler.engine.storing import Storing
from spiders.items import Recheck, SourceSpec
from spiders.source import SourceSpider
from storage import archive
from storage import repository as repo
from storage.db import engine_of, open_database

log = logging.getLogger("mediawatch.daemon")
RUN_HISTORY = timedelta(days=7)  # the crawl_runs table: one row per poll
PG_LOCK_KEY = 0x6D656469  # "medi": the advisory lock of `mediawatch run`
ABANDON_AFTER = 4  # crawl.poll_deadline: a poll still running then is forgotten


class DaemonError(RuntimeFailure):
    """The daemon cannot start (the message says why and what to do)."""


@contextmanager
def database_lock(url: str) -> Iterator[None]:
    """Held while the daemon runs: a second `mediawatch run` on the same database refuses
    to start instead of polling everything twice."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        with open(f"{parsed.database}.lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DaemonError(f"another `mediawatch run` is using {parsed.database} "
                                  f"(lock {lock.name} held); one daemon per database") from None
            yield
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(url)
        with engine.connect() as connection:
            if not connection.scalar(text("select pg_try_advisory_lock(:key)"),
                                     {"key": PG_LOCK_KEY}):
                raise DaemonError(f"another `mediawatch run` is using database "
                                  f"{parsed.database!r} on {parsed.host}; one daemon per database")
            yield
        engine.dispose()
    else:
        yield


def run_daemon(config_path: Path, db_url: str | None, listen: str | None,
               redactor: Redactor | None = None) -> int:
    """Run until SIGTERM/SIGINT; `redactor` (the log filter) learns the secrets of each
    config loaded. → the exit code"""
    reactor.install()  # before APScheduler's Twisted scheduler imports one
    config = load_run_config(config_path, db_url)
    db = open_database(config.database)
    if config.queue:  # a member: leadership is elected, not refused
        return Daemon(config_path, db_url, config, db, listen, redactor or Redactor()).run()
    with database_lock(config.database):
        return Daemon(config_path, db_url, config, db, listen, redactor or Redactor()).run()


def restart_needed(old: Config, new: Config) -> list[str]:
    """The changed keys a reload cannot apply: the database, and the crawl settings the
    crawler was built with (all but `backfill` and `poll_deadline`, read at each poll)."""
    keys = [f"crawl.{key}" for key in type(new.crawl).model_fields
            if key not in ("backfill", "poll_deadline")
            and getattr(old.crawl, key) != getattr(new.crawl, key)]
    return keys + [key for key in ("database", "queue")
                   if getattr(old, key) != getattr(new, key)]


def load_run_config(config_path: Path, db_url: str | None) -> Config:
    """The config `run` uses: the file's, on `db_url` if given (then `queue` is checked
    against it: the file's own check saw another database)."""
    config = load_config(config_path)
    if db_url:
        config = config.model_copy(update={"database": db_url})
    if problem := config.queue_problem():
        raise ConfigError([("queue", f"{problem} (the database in use: "
                                     f"{'--db or MEDIAWATCH_DB' if db_url else 'the default'})")],
                          str(config_path))
    return config


class Daemon:
    def __init__(self, config_path: Path, db_url: str | None, config: Config,
                 db: sessionmaker[Session], listen: str | None, redactor: Redactor) -> None:
        from apscheduler.schedulers.twisted import TwistedScheduler  # imports the reactor

        self.reactor: Any = reactor.install()
        self.config_path, self.db_url, self.config, self.db = config_path, db_url, config, db
        self.channels = open_channels(config.channels)  # once per config: a bad one logs once
        self.dispatcher = Dispatcher(db, self.channels, config.alert_controls(),
                                     story_url=self.story_url)
        self.dispatching = self.dispatch_again = False  # (the reactor) see `wake`
        on_queued(db, lambda: self.reactor.callFromThread(self.wake))
        self.listen = listen
        self.redactor = redactor  # masks the secrets of every config loaded, old and new
        redactor.add(config.secrets)
        self.report = CrawlReport.for_sources([s.name for s in config.sources])
        self.report.rolling, self.report.on_poll = True, self.poll_finished
        self.ingest = Ingest(db, self.report, Rules.of(config))
        self.storing = Storing(self.ingest, self.report)  # in a thread of its own, in order
        self.polling: dict[str, Any] = {}  # source → its poll's Deferred (reactor thread)
        self.given_up: set[str] = set()  # of those, past crawl.poll_deadline
        with db() as session:  # sources whose health is not ok: checked after every poll
            self.unwell = {s.name for s in repo.list_sources(session)
                           if s.reported_health not in (None, "ok")}
        self.member = None if config.queue is None else Member(
            config.queue, config.database, PG_LOCK_KEY, config.crawl.concurrency,
            self.reactor, self.claimed,
            self.poll_spec, self.start_poll, self.lead, self.step_down)
        self.leading = self.member is None  # without a queue, it is the only daemon
        self.terms = 0  # leadership changes: a schedule read for an old term is dropped
        self.metrics = Metrics(db, in_flight=self.in_flight, queue_depth=self.member and
                               self.member.queue.depth)
        self.metrics.lead(self.leading)
        self.scheduler = TwistedScheduler(
            reactor=self.reactor, timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.stopping = False
        self.port: IListeningPort | None = None
        self.ended: Deferred[None] = Deferred()  # fires once the daemon has stopped

    # ------------------------------------------------------------ lifecycle

    def run(self) -> int:
        # first of all: a signal during start-up is handled once the reactor runs
        signal.signal(signal.SIGTERM, lambda *_: self.reactor.callFromThread(self.stop))
        signal.signal(signal.SIGINT, lambda *_: self.reactor.callFromThread(self.stop))
        signal.signal(signal.SIGHUP, lambda *_: self.reactor.callFromThread(self.reload))
        self.start()
        self.ended.addBoth(lambda _: self.reactor.stop())
        gc.freeze()  # what start-up loaded lives as long as the process: no GC passes over it
        self.reactor.run(installSignalHandlers=False)
        log.info("stopped")
        return 0

    def start(self) -> None:
        """(The reactor, or before it runs.) Open the crawler and schedule the jobs; the
        daemon runs until `ended` fires (`run` stops the reactor then)."""
        sync_config(self.config, self.db)
        self.match_past_in_background(self.config, self.ingest.rules)
        settings = scrapy_settings(self.config.crawl, queue=self.config.queue, queue_prefix=(
            self.member.queue.prefix if self.member else "")) | {
            "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",  # no fingerprint growth
            "LOG_LEVEL": "WARNING", ITEMS: self.storing, REPORT: self.report}
        install_resolver(settings, self.reactor)
        runner = CrawlerRunner(settings)
        self.crawler: Any = runner.create_crawler(SourceSpider)
        self.crawler.signals.connect(self.crawler_ready, signal=signals.spider_opened)
        finished = runner.crawl(self.crawler, sources=source_specs(
            self.config.sources, self.db, self.config.crawl.backfill), seen=seen_in(self.db),
            daemon=True, redact=self.redactor)
        finished.addBoth(self.crawler_ended)
        self.reactor.suggestThreadPoolSize(max(10, len(self.config.sources) // 10))
        self.schedule(self.config)
        if self.member is not None:
            self.member.start()
        if self.listen:
            self.serve()
        log.info("running: %d sources, %d topics (pid %d)", len(self.config.sources),
                 len(self.config.topics), os.getpid())

    def serve(self) -> None:
        loopback = is_loopback(parse_address(self.listen)[0])
        self.port = listen(self.reactor, site(
            self.db, lambda: self.config, self.metrics, lambda: self.scheduler.running,
            loopback, role=lambda: "leader" if self.leading else "member",
            redis_alive=self.member and self.member.queue.ping), self.listen)
        log.info("health and metrics on http://%s/healthz", self.listen)
        if loopback or self.config.web.token:
            log.info("the reading room on http://%s/", self.listen)
        else:
            log.warning("the web pages are not served: %s is beyond loopback and web.token "
                        "is not set (set it, from the environment, to serve them)",
                        self.listen)

    def story_url(self, story_id: int) -> str | None:
        """The story's page for alerts, from the running config (a reload may change it)."""
        return self.config.web.story_url(story_id)

    def stop(self, grace: float = 30.0) -> None:
        """Stop scheduling; let polls and sends in flight finish (up to `grace` seconds)."""
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping: %d polls in flight", len(self.polling))
        if self.member is not None:
            self.member.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + grace

        def wait() -> None:  # for the polls in flight, not those given up (cut at once)
            if set(self.polling) - self.given_up and time.monotonic() < deadline:
                self.reactor.callLater(0.2, wait)
            else:  # downloads still hanging are cut at the deadline
                for poll in list(self.polling.values()):
                    poll.cancel()
                stopped = deferred_from_coro(self.crawler.stop_async())
                stopped.addTimeout(max(deadline - time.monotonic(), 1.0), self.reactor)
                stopped.addBoth(self._end)

        wait()

    def crawler_ready(self) -> None:
        """Polls are scheduled once the crawler can take them: a request injected before
        its spider is open is refused."""
        if not self.stopping:
            self.scheduler.start()
            if self.member is not None:
                self.member.start_polling()

    def crawler_ended(self, result: Any) -> None:
        if not self.stopping:  # the crawler should never end on its own
            log.error("the crawler stopped unexpectedly: %s", result)
            self.stopping = True
            self._end(result)

    def _end(self, _: Any) -> None:
        if self.port is not None:
            self.port.stopListening()
        if not self.ended.called:
            self.ended.callback(None)

    def reload(self) -> None:
        """SIGHUP: a valid new config replaces the running one; an invalid one is refused."""
        try:
            config = load_run_config(self.config_path, self.db_url)
        except ConfigError as exc:
            log.error("config reload refused, the running config stays: %s", exc)
            return
        self.redactor.add(config.secrets)
        sync_config(config, self.db)
        for source in config.sources:
            self.report.tally(source.name)  # its requests are counted from the first
        self.ingest.rules = rules = Rules.of(config)
        self.match_past_in_background(config, rules)
        self.crawler.spider.sources = {spec.name: spec for spec in source_specs(
            config.sources, self.db, config.crawl.backfill)}
        previous, self.config, self.channels = self.config, config, open_channels(config.channels)
        self.dispatcher = Dispatcher(self.db, self.channels, config.alert_controls(),
                                     story_url=self.story_url)
        self.scheduler.remove_all_jobs()
        self.schedule(config)
        log.info("config reloaded: %d sources, %d topics", len(config.sources),
                 len(config.topics))
        if later := restart_needed(previous, config):
            log.warning("%s changed: the running crawler keeps the old value until a restart",
                        ", ".join(later))

    def match_past_in_background(self, config: Config, rules: Rules) -> None:
        """(The reactor.) Match new topics against the past in a thread: polls, alerts and
        /healthz go on meanwhile; articles stored from now on are matched by `rules`."""
        with self.db() as session:
            up_to = repo.last_article_id(session)
        deferToThread(self.match_past, config, rules, up_to).addErrback(
            lambda failure: log.error("matching the topics against stored articles failed "
                                      "(retried at the next start or reload): %s",
                                      failure.getErrorMessage()))

    def match_past(self, config: Config, rules: Rules, up_to: int) -> None:
        """A topic added or changed is matched against the articles stored within
        `dedupe.retention`; only those newer than `crawl.backfill` alert."""
        now = utcnow()
        matched = match_past(self.db, rules.topics, now - config.dedupe.retention, up_to,
                             rules.source_tags, rules.policies, rules.backfill, now)
        for topic, count in matched.items():
            log.info("topic %s matched against the articles stored within %s: %d matches",
                     topic, config.dedupe.retention, count)

    # ------------------------------------------------------------ jobs

    def schedule(self, config: Config) -> None:
        """Every member's jobs, and the leader's if it leads."""
        self.scheduler.add_job(self.dispatch_tick, IntervalTrigger(
            seconds=config.daemon.dispatch_every.total_seconds()), id="dispatch",
            next_run_time=utcnow())
        if self.leading:
            self.schedule_leader(config)

    def schedule_leader(self, config: Config, last: dict[str, datetime | None] | None = None
                        ) -> None:
        """The leader's jobs: the poll schedule (from the database, as at a fresh start:
        overdue sources run once, spread; `last`: each source's last poll, if read
        already), digests, health, retention, re-checks. (A job already there — a reload
        while a new leader read its schedule — is replaced.)"""
        now = utcnow()
        last = self.last_polls() if last is None else last
        add = partial(self.scheduler.add_job, replace_existing=True)
        for source in config.sources:
            add(self.poll_job, trigger_for(source.every), args=[source.name],
                id=f"poll:{source.name}", next_run_time=first_run(
                    source.every, last.get(source.name), now, config.daemon.startup_spread))
        add(self.digest_job, CronTrigger.from_crontab(config.digest.cron, timezone="UTC"),
            id="digest")
        add(self.health_job, IntervalTrigger(
            seconds=config.daemon.health_every.total_seconds()), id="health")
        add(self.retention_job, CronTrigger(hour=3, timezone="UTC"), id="retention")
        add(self.recheck_job, IntervalTrigger(
            seconds=config.daemon.recheck_every.total_seconds()), id="recheck",
            next_run_time=now)

    def last_polls(self) -> dict[str, datetime | None]:
        with self.db() as session:
            return {s.name: s.last_polled_at for s in repo.list_sources(session)}

    def lead(self) -> None:
        """(The reactor.) This member was elected: it runs the schedule from now on."""
        log.info("leading the deployment (member %s)", self.member and self.member.name)
        self.leading = True
        self.terms += 1
        self.metrics.lead(True)
        self._schedule_as_leader(self.terms)

    def _schedule_as_leader(self, term: int) -> None:
        """(The reactor.) The schedule is read in a thread (the database may be slow to
        answer at a failover); jobs are added if this member still leads in this term."""
        if self.stopping or self.terms != term or not self.leading:
            return

        def read_again(failure: Failure) -> None:
            log.error("the schedule could not be read (retried in 2 s): %s",
                      failure.getErrorMessage().splitlines()[0])
            self.reactor.callLater(2.0, self._schedule_as_leader, term)

        def schedule(last: dict[str, datetime | None]) -> None:
            if not self.stopping and self.terms == term and self.leading:
                self.schedule_leader(self.config, last)

        deferToThread(self.last_polls).addCallbacks(schedule, read_again)

    def step_down(self) -> None:
        """(The reactor.) The lock is lost: the leader's jobs stop (its polls run on)."""
        self.leading = False
        self.terms += 1
        self.metrics.lead(False)
        for job in self.scheduler.get_jobs():
            if job.id != "dispatch":
                job.remove()

    def poll_job(self, name: str) -> None:
        """(A pool thread.) Poll a source now unless its backoff or Retry-After holds — or,
        in a deployment, offer the poll to the members. The thread does not wait for the
        poll: the reactor tracks it (see `start_poll`)."""
        if self.member is not None:
            self.member.offer(name)
            return
        if spec := self.poll_spec(name):
            self.reactor.callFromThread(self.start_poll, spec)

    def poll_spec(self, name: str, offered_at: datetime | None = None) -> SourceSpec | None:
        """(A thread.) The poll to run, from the source's stored state; None when the source
        is not (or no longer) configured, its backoff or Retry-After holds, or it was
        polled since `offered_at` (an offer made twice)."""
        source = next((s for s in self.config.sources if s.name == name), None)
        if source is None or self.stopping:
            return None
        with engine_of(self.db).connect() as connection:
            state = repo.poll_state(connection, name)
        if offered_at is not None and state.last_polled_at is not None \
                and state.last_polled_at >= offered_at:
            return None
        if not may_poll(utcnow(), state.last_polled_at, state.consecutive_failures,
                        interval_of(source.every), state.not_before):
            return None
        return spec_for(source, state, self.config.crawl.backfill)

    def start_poll(self, spec: SourceSpec) -> Deferred[Any] | None:
        """(The reactor.) Inject one poll into the running crawler. → its `done` Deferred,
        which fires when the poll has ended and everything it yielded is stored (None: not
        started). Never two polls of one source at once: a poll whose downloads are not
        over at `crawl.poll_deadline` is given up (counted as a failure) but holds its
        source until it ends — at the latest ABANDON_AFTER deadlines, when it is forgotten
        (a lost request: never seen here, but a source must not stop being polled because
        of one). A backlog of storing delays the next poll of the source; it does not give
        this one up."""
        if spec.name in self.polling or self.stopping:
            return None
        done: Deferred[Any] = Deferred()  # the spider fires it when the downloads are over
        self.polling[spec.name] = done
        self.crawler.engine.crawl(self.crawler.spider.poll(spec, done))
        deadline = self.config.crawl.poll_deadline.total_seconds()
        given_up = self.reactor.callLater(deadline, self.poll_given_up, spec.name)
        abandoned = self.reactor.callLater(deadline * ABANDON_AFTER, self.poll_abandoned,
                                           spec.name, done)
        done.addBoth(_cancelling, given_up)
        done.addCallback(lambda _: self.storing.settled(spec.name))
        done.addBoth(self._unmark, spec.name, done, abandoned)
        return done

    def claimed(self, reclaimed: bool) -> None:
        """(The consumer's thread.) This member took a poll from the queue."""
        self.metrics.claimed.inc()
        if reclaimed:
            self.metrics.reclaimed.inc()

    def recheck_job(self) -> None:
        """(A pool thread.) Fetch the official statements due again (for edits and
        deletions, see crawler.stages.recheck) through the running crawler."""
        if self.stopping:
            return
        due = due_rechecks(self.db, rechecked_sources(self.config))
        if due:
            self.reactor.callFromThread(self.start_rechecks, due)

    def start_rechecks(self, due: list[Recheck]) -> None:
        """(The reactor.)"""
        if not self.stopping:
            for spec in due:
                self.crawler.engine.crawl(self.crawler.spider.recheck(spec))

    def _unmark(self, result: Any, name: str, done: Deferred[Any], abandoned: Any) -> Any:
        _cancelling(None, abandoned)
        if self.polling.get(name) is done:
            del self.polling[name]
            self.given_up.discard(name)
        if isinstance(result, Failure) and result.check(CancelledError):
            if self.stopping:
                log.warning("%s: poll cut short by the stop", name)
            return None  # (abandoned: logged there)
        return result

    def poll_given_up(self, name: str) -> None:
        """(The reactor.) A poll still running at `crawl.poll_deadline`: a failure."""
        if self.stopping:
            return
        log.error("%s: poll given up after %s (crawl.poll_deadline); it holds its source "
                  "until its requests end", name, self.config.crawl.poll_deadline)
        self.given_up.add(name)
        deferToThread(self._record_given_up, name).addErrback(
            lambda failure: log.error("%s: the poll given up could not be recorded: %s",
                                      name, failure.getErrorMessage()))

    def _record_given_up(self, name: str) -> None:
        with self.db.begin() as session:
            repo.record_failure(session, name, "poll given up at crawl.poll_deadline "
                                               f"({self.config.crawl.poll_deadline})")

    def poll_abandoned(self, name: str, done: Deferred[Any]) -> None:
        """(The reactor.) A poll that never ended: its source may be polled again."""
        log.error("%s: poll abandoned after %d× crawl.poll_deadline: a request of it never "
                  "ended", name, ABANDON_AFTER)
        done.cancel()

    def poll_finished(self, tally: SourceReport) -> None:
        """(The reactor, from the pipeline.) A poll ended: metrics, a log line, and the
        source's health checked (in a pool thread)."""
        seconds = (utcnow() - tally.started_at).total_seconds()
        self.metrics.observe_poll(tally, seconds)
        if tally.status == "failed" or tally.name in self.unwell:
            deferToThread(self.health_job, [tally.name])
        level = logging.WARNING if tally.status == "failed" else logging.INFO
        log.log(level, "%s: %s (HTTP %s) new %d known %d duplicates %d in %.2fs%s", tally.name,
                tally.status, tally.http_status or "-", tally.new, tally.known,
                tally.duplicates, seconds, f": {tally.message}" if tally.message else "")

    def in_flight(self) -> dict[str, int]:
        """Polls in progress per source (for /metrics)."""
        return {name: 1 for name in self.polling}

    def dispatch_tick(self) -> None:
        """(A pool thread.) The safety net: due retries, held alerts whose time came."""
        self.reactor.callFromThread(self.wake)

    def wake(self) -> None:
        """(The reactor.) Deliver due alerts now, in a pool thread; one delivery at a time,
        and one more right after it when woken meanwhile."""
        if self.stopping:
            return
        if self.dispatching:
            self.dispatch_again = True
            return
        self.dispatching = True
        deferToThread(self.dispatch_job).addBoth(self._dispatched)

    def _dispatched(self, result: Any) -> None:
        if isinstance(result, Failure):
            log.error("alert delivery failed: %s", result.getTraceback())
        self.dispatching = False
        if self.dispatch_again:
            self.dispatch_again = False
            self.wake()

    def dispatch_job(self) -> None:
        self._log_lines(self.dispatcher.deliver_due().lines)

    def digest_job(self) -> None:
        self._log_lines(send_digests(self.db, self.channels, story_url=self.story_url).lines)

    def health_job(self, names: list[str] | None = None) -> None:
        for name, was, now in check_sources(self.config, self.db, utcnow(), names):
            log.warning("source %s: %s → %s (operator alert queued)", name, was, now)
            if now == "ok":
                self.unwell.discard(name)
            else:
                self.unwell.add(name)

    def retention_job(self) -> None:
        now = utcnow()
        with self.db.begin() as session:
            sketches = repo.forget_sketches(session, now - self.config.dedupe.retention)
            runs = repo.forget_runs(session, now - RUN_HISTORY)
            captures = archive.forget(session, now - self.config.archive_retention)
        log.info("retention: %d sketches older than %s, %d crawl runs older than %s and %d "
                 "archived responses older than %s dropped", sketches,
                 self.config.dedupe.retention, runs, RUN_HISTORY, captures,
                 self.config.archive_retention)


    @staticmethod
    def _log_lines(lines: list[str]) -> None:
        for line in lines:
            log.info("%s", line)


def _cancelling(result: Any, timer: Any) -> Any:
    """(A callback.) Cancel `timer` if still pending; pass `result` on."""
    if timer.active():
        timer.cancel()
    return result
