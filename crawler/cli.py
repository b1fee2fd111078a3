"""The `mediawatch` command (the CLI contract in DESIGN.md): tables for people, `--json` for
scripts, exit 0 on success and one readable line on failure (`-v` for details)."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from basis.clock import utcnow
from basis.secrets import Redactor
from crawler import views
from crawler.config import DEFAULT_PATH, Config, ConfigError, load_config, parse_duration
from crawler.report import CrawlReport
from crawler.views import Text
from storage import db as database
from storage import repository as repo
from storage.models import Alert

if TYPE_CHECKING:
    from alerts.dispatcher import DispatchReport
    from alerts.topics import TopicRule


class Failure(click.ClickException):
    """A failure the user can act on: printed as one line (by `main`), exit code 1."""


@dataclass
class Context:
    config_path: Path
    db_url: str | None
    verbose: bool
    redactor: Redactor  # masks the config's secrets in output and logs, once it is loaded

    @cached_property
    def config(self) -> Config:
        config = load_config(self.config_path)
        self.redactor.add(config.secrets)
        return config

    @cached_property
    def db(self) -> sessionmaker[Session]:
        return database.open_database(self.db_url or self.config.database)

    @cached_property
    def console(self) -> Console:
        wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ  # piped: no wrapping
        return Console(width=160 if wide else None, highlight=False)


pass_ctx = click.make_pass_decorator(Context)
COUNT = click.IntRange(min=1)  # --limit


def emit_json(document: Any) -> None:
    """Print one JSON document, the config's secrets masked in every string of it."""
    ctx = click.get_current_context().find_object(Context)
    click.echo(json.dumps(ctx.redactor.deep(document) if ctx else document,
                          ensure_ascii=False, indent=2))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              default=DEFAULT_PATH, envvar="MEDIAWATCH_CONFIG", show_default=True,
              help="Configuration file.")
@click.option("--db", "db_url", envvar="MEDIAWATCH_DB", metavar="URL",
              help="Database URL (overrides `database:` in the config).")
@click.option("-v", "--verbose", is_flag=True, help="Show crawl logs and error details.")
@click.version_option(package_name="mediawatch")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, db_url: str | None, verbose: bool) -> None:
    """mediawatch: watch feeds and pages, keep one copy of every story, alert on topics."""
    redactor = ctx.obj if isinstance(ctx.obj, Redactor) else Redactor()  # main()'s
    configure_logging(verbose, redactor)
    ctx.obj = Context(config_path, db_url, verbose, redactor)


# HTTP clients of the channels: their request lines carry a webhook's or bot's secret path
SECRET_CHATTER = ("urllib3", "requests", "apprise")


def configure_logging(verbose: bool, redactor: Redactor) -> None:
    """Warnings on stderr; Scrapy's own chatter only with -v, except errors in our code;
    the channels' HTTP chatter never; secrets masked in every line."""
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        handler.addFilter(_quiet_scrapy)
    handler.addFilter(redactor)
    logging.getLogger().addHandler(handler)
    for name in SECRET_CHATTER:
        logging.getLogger(name).setLevel(logging.WARNING)


def _quiet_scrapy(record: logging.LogRecord) -> bool:
    """Fetch failures already reach the crawl summary; keep errors raised in our code."""
    if record.name.startswith(("scrapy.", "twisted", "py.warnings")):
        return record.name.startswith("scrapy.core.scraper") and record.levelno >= logging.ERROR
    return True


# ---------------------------------------------------------------- crawl

@cli.command()
@click.argument("sources", nargs=-1)
@click.option("--no-alerts", is_flag=True, help="Store and match, but do not deliver alerts.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def crawl(ctx: Context, sources: tuple[str, ...], no_alerts: bool, as_json: bool) -> None:
    """Crawl all sources, or the named ones, once; then deliver pending alerts."""
    from crawler.runner import run_crawl

    progress = views.CrawlProgress(Console(stderr=True) if as_json else ctx.console)
    with progress:
        report = run_crawl(ctx.config, ctx.db, sources, progress.update, ctx.verbose)
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        delivered = None if no_alerts else _deliver(ctx, quiet=as_json)  # console channel
    if as_json:
        emit_json(views.report_json(report) | {"alerts": vars(delivered) if delivered else None})
    else:
        ctx.console.print(views.crawl_summary(report))
    fail_on_problems(report)


def _deliver(ctx: Context, quiet: bool = False) -> DispatchReport:
    from crawler.alerting import dispatcher

    delivered = dispatcher(ctx.config, ctx.db).deliver_due()
    if not quiet:
        for line in delivered.lines:
            ctx.console.print(Text(line))
    return delivered


def fail_on_problems(report: CrawlReport) -> None:
    if report.unstored:
        raise Failure(f"{report.unstored} items could not be stored; they will be fetched "
                      "again on the next crawl (run with -v for details)")
    if report.failed:
        names = ", ".join(r.name for r in report.failed)
        raise Failure(f"{len(report.failed)} of {len(report.sources)} sources failed: {names}")


# ---------------------------------------------------------------- articles

@cli.group()
def articles() -> None:
    """What is stored."""


@articles.command("list")
@click.option("--topic", help="Only articles that matched this topic.")
@click.option("--since", help="Only articles published or seen within this duration (7d).")
@click.option("--all", "include_all", is_flag=True, help="Include duplicates.")
@click.option("--limit", type=COUNT, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def articles_list(ctx: Context, topic: str | None, since: str | None, include_all: bool,
                  limit: int, as_json: bool) -> None:
    """List stored articles, newest first."""
    with ctx.db() as session:
        rows = list(repo.list_articles(session, since=_since(since), topic=topic,
                                       include_duplicates=include_all, limit=limit))
        if topic and not rows:
            _known_topic(ctx, topic)
        if as_json:
            emit_json([views.article_json(a) for a in rows])
        else:
            ctx.console.print(views.articles_table(rows))


@articles.command("show")
@click.argument("article_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def articles_show(ctx: Context, article_id: int, as_json: bool) -> None:
    """Show one article with its text and where it was seen."""
    with ctx.db() as session:
        article = repo.get_article(session, article_id)
        if article is None:
            raise Failure(f"no article with id {article_id}")
        if as_json:
            emit_json(views.article_detail_json(article))
        else:
            views.print_article(ctx.console, article)


@articles.command("search")
@click.argument("query")
@click.option("--since", help="Only articles published within this duration (30d).")
@click.option("--limit", type=COUNT, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def articles_search(ctx: Context, query: str, since: str | None, limit: int,
                    as_json: bool) -> None:
    """Stored articles that match QUERY (the topic query language, aliases included),
    newest first, with what matched highlighted."""
    from alerts.backtest import search

    rule = _topic_rule(ctx, None, query)
    with ctx.db() as session:
        found = [views.article_json(article) | {"highlights": match.as_json()}
                 for article, match in search(session, rule.query, _since(since),
                                              _source_tags(ctx), limit)]
    if as_json:
        emit_json(found)
    else:
        ctx.console.print(Text(f"{len(found)} articles match {query}", style="bold"))
        views.print_hits(ctx.console, found)


# ---------------------------------------------------------------- stories

@cli.group()
def stories() -> None:
    """Threads of coverage: an event's reports from every outlet, copies folded in."""


@stories.command("list")
@click.option("--since", help="Only stories active within this duration (7d).")
@click.option("--limit", type=COUNT, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def stories_list(ctx: Context, since: str | None, limit: int, as_json: bool) -> None:
    """List stories, most recently active first."""
    with ctx.db() as session:
        rows = repo.list_stories(session, since=_since(since), limit=limit)
    if as_json:
        emit_json([views.story_json(row) for row in rows])
    else:
        ctx.console.print(views.stories_table(rows))


@stories.command("show")
@click.argument("story_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def stories_show(ctx: Context, story_id: int, as_json: bool) -> None:
    """Show one story with all its articles."""
    with ctx.db() as session:
        found = repo.get_story(session, story_id)
        if found is None:
            raise Failure(f"no story with id {story_id} (see: mediawatch stories list)")
        row, articles = found
        if as_json:
            emit_json(views.story_json(row) | {
                "articles": [views.article_json(a) for a in articles]})
        else:
            views.print_story(ctx.console, row, list(articles))


def _since(text: str | None) -> datetime | None:
    return datetime.now(timezone.utc) - _duration(text, "--since") if text else None


def _duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


# ---------------------------------------------------------------- sources

@cli.group()
def sources() -> None:
    """Sources and their health."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sources_list(ctx: Context, as_json: bool) -> None:
    """Health of every configured source."""
    from crawler.runner import sync_config

    sync_config(ctx.config, ctx.db)
    configured = {s.name for s in ctx.config.sources}
    with ctx.db() as session:
        rows = [s for s in repo.list_sources(session) if s.name in configured]
    if as_json:
        emit_json([views.source_json(s) for s in rows])
    else:
        ctx.console.print(views.sources_table(rows, ctx.redactor))


@sources.command("check")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sources_check(ctx: Context, name: str, as_json: bool) -> None:
    """Fetch one source now and show what it would yield, storing nothing."""
    from crawler.runner import check_source

    result = views.check_json(name, check_source(ctx.config, ctx.db, name, ctx.verbose))
    if as_json:
        emit_json(result)
    else:
        views.print_check(ctx.console, result)
    if result["status"] == "failed":
        raise Failure(f"{name}: {result['message']}")


# ---------------------------------------------------------------- topics

@cli.group()
def topics() -> None:
    """Topic rules: hit counts, backtests, explanations."""


@topics.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def topics_list(ctx: Context, as_json: bool) -> None:
    """Each topic with its hits in the last day and week."""
    now = datetime.now(timezone.utc)
    with ctx.db() as session:
        day = repo.topic_hits(session, now - timedelta(days=1))
        week = repo.topic_hits(session, now - timedelta(days=7))
    rows = [{"name": t.name, "query": t.query, "mode": t.mode, "channels": list(t.channels),
             "languages": list(t.languages), "sources": list(t.sources),
             "hits_last_day": day.get(t.name, 0), "hits_last_week": week.get(t.name, 0)}
            for t in ctx.config.topics]
    if as_json:
        emit_json(rows)
    else:
        ctx.console.print(views.topics_table(rows))


@topics.command("test")
@click.argument("name", required=False)
@click.option("--query", "draft", help="Try this query instead of the topic's own.")
@click.option("--since", default="30d", show_default=True,
              help="Only articles published within this duration.")
@click.option("--explain", "explain_id", type=int, metavar="ID",
              help="Show which clause matched or failed for one article.")
@click.option("--limit", type=COUNT, default=50, show_default=True,
              help="Hits to show.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def topics_test(ctx: Context, name: str | None, draft: str | None, since: str,
                explain_id: int | None, limit: int, as_json: bool) -> None:
    """Backtest a topic (or a draft --query) on stored articles, with highlights."""
    from alerts.backtest import backtest, document
    from alerts.explain import explain

    rule = _topic_rule(ctx, name, draft)
    tags = _source_tags(ctx)
    with ctx.db() as session:
        if explain_id is not None:
            article = repo.get_article(session, explain_id)
            if article is None:
                raise Failure(f"no article with id {explain_id}")
            clauses = explain(rule.query, document(article, tags.get(article.source.name, ())))
            if as_json:
                emit_json([vars(c) for c in clauses])
            else:
                views.print_explanation(ctx.console, article, clauses)
            return
        result = backtest(session, rule, _since(since), tags, limit)
    if as_json:
        emit_json(result)
    else:
        views.print_backtest(ctx.console, result)


def _source_tags(ctx: Context) -> dict[str, tuple[str, ...]]:
    return {s.name: s.tags for s in ctx.config.sources}


def _topic_rule(ctx: Context, name: str | None, draft: str | None) -> TopicRule:
    from alerts.query import QuerySyntaxError, parse_query
    from alerts.topics import TopicRule

    topic = next((t for t in ctx.config.topics if t.name == name), None)
    if draft is None and topic is None:
        known = ", ".join(t.name for t in ctx.config.topics) or "none"
        raise Failure(f"no topic named {name!r} (known: {known}); or pass --query" if name
                      else "name a topic or pass --query")
    try:
        query = parse_query(draft or topic.query, ctx.config.aliases)  # type: ignore[union-attr]
    except QuerySyntaxError as exc:
        raise Failure(f"{exc}\n{exc.caret()}") from None
    if topic is None:
        return TopicRule(name or "draft", query)
    return TopicRule(topic.name, query, frozenset(topic.languages), frozenset(topic.sources))


# ---------------------------------------------------------------- alerts

@cli.group()
def alerts() -> None:
    """The outbox: what was, will be or could not be delivered."""


@alerts.command("list")
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed"]))
@click.option("--topic")
@click.option("--limit", type=COUNT, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def alerts_list(ctx: Context, status: str | None, topic: str | None, limit: int,
                as_json: bool) -> None:
    """Alerts, newest first."""
    with ctx.db() as session:
        rows = list(repo.list_alerts(session, status=status, topic=topic, limit=limit))
        if topic and not rows:
            _known_topic(ctx, topic)
        if as_json:
            emit_json([views.alert_json(a) for a in rows])
        else:
            ctx.console.print(views.alerts_table(rows))


@alerts.command("send")
@pass_ctx
def alerts_send(ctx: Context) -> None:
    """Deliver every pending alert that is due now."""
    report = _deliver(ctx)
    ctx.console.print(f"sent {report.sent}, retrying {report.retried}, failed {report.failed}, "
                      f"waiting {report.held}")
    _fail_on_undelivered(report)


@alerts.command("test")
@click.argument("channel")
@pass_ctx
def alerts_test(ctx: Context, channel: str) -> None:
    """Send a sample alert to CHANNEL and print the result."""
    from alerts.channels.base import AlertItem, AlertMessage
    from crawler.alerting import build_channels

    channels = build_channels(ctx.config)
    if channel not in channels:
        raise Failure(f"no channel named {channel!r} (known: {', '.join(channels) or 'none'})")
    target = channels[channel]
    sample = AlertMessage(kind="test", topic="mediawatch-test", message_id="<test@mediawatch>",
                          items=(AlertItem(title="mediawatch test alert — 测试警报",
                                           url="https://example.org/mediawatch-test",
                                           source="mediawatch", published_at=utcnow(),
                                           snippet="If you read this, the channel works.",
                                           matched=("works",)),))
    result = target.send(sample)
    line = ctx.redactor(f"{channel} ({target.masked()}): {'ok' if result.ok else 'FAILED'} — "
                        f"{result.reason}")
    if not result.ok:
        raise Failure(line)
    ctx.console.print(line)


@alerts.command("retry")
@click.argument("alert_id", type=int)
@pass_ctx
def alerts_retry(ctx: Context, alert_id: int) -> None:
    """Queue a failed (or waiting) alert again and try to deliver it now."""
    with ctx.db.begin() as session:
        if not repo.requeue_alert(session, alert_id, utcnow()):
            raise Failure(f"no failed or pending alert with id {alert_id}")
    _deliver(ctx)
    with ctx.db() as session:
        alert = session.get(Alert, alert_id)
        if alert is not None and alert.status != "sent":
            raise Failure(f"alert {alert_id} is {alert.status}: "
                          f"{alert.last_error or 'not due yet'}")


@alerts.command("snooze")
@click.argument("topic")
@click.option("--for", "duration", required=True, help="How long, e.g. 6h; 0s ends a snooze.")
@pass_ctx
def alerts_snooze(ctx: Context, topic: str, duration: str) -> None:
    """Hold a topic's alerts for a while; they are delivered afterwards."""
    _known_topic(ctx, topic)
    now = utcnow()
    until = now + (timedelta(0) if duration.strip() in ("0", "0s") else
                   _duration(duration, "--for"))
    with ctx.db.begin() as session:
        repo.snooze(session, topic, until, now)
    ctx.console.print(f"{topic}: alerts held until {until:%Y-%m-%d %H:%M} UTC" if until > now
                      else f"{topic}: snooze ended; held alerts are due now")


@cli.group()
def digest() -> None:
    """Digests of topics in digest mode."""


@digest.command("send")
@click.option("--topic", help="Only this topic.")
@pass_ctx
def digest_send(ctx: Context, topic: str | None) -> None:
    """Send the pending digests now."""
    from alerts.digest import send_digests
    from crawler.alerting import build_channels

    if topic is not None:
        _known_topic(ctx, topic)
    report = send_digests(ctx.db, build_channels(ctx.config), topic)
    for line in report.lines or ["no digest pending"]:
        ctx.console.print(Text(line))
    _fail_on_undelivered(report)


def _fail_on_undelivered(report: DispatchReport) -> None:
    """Exit non-zero when something could not be delivered, so cron and scripts notice."""
    if report.failed or report.retried:
        raise Failure(f"{report.failed} failed, {report.retried} to be retried "
                      "(mediawatch alerts list --status failed / --status pending)")


def _known_topic(ctx: Context, topic: str) -> None:
    """A --topic that names no configured topic is a typo, not an empty result."""
    known = [t.name for t in ctx.config.topics]
    if topic not in known:
        raise Failure(f"no topic named {topic!r} (known: {', '.join(known) or 'none'})")


# ---------------------------------------------------------------- config and database

@cli.group("config")
def config_group() -> None:
    """The configuration file."""


@config_group.command("check")
@pass_ctx
def config_check(ctx: Context) -> None:
    """Validate the config file, the environment it needs and the channel endpoints."""
    from crawler.alerting import build_channels, channel_warnings

    config = ctx.config
    try:
        build_channels(config)
    except ValueError as exc:
        raise Failure(f"{ctx.config_path}: {exc}") from None
    for warning in channel_warnings(config):
        ctx.console.print(Text(f"warning: {ctx.config_path}: {warning}", style="yellow"))
    ctx.console.print(f"{ctx.config_path}: ok — {len(config.sources)} sources, "
                      f"{len(config.topics)} topics, {len(config.channels)} channels; "
                      f"database {database.display_url(ctx.db_url or config.database)}")


@cli.group("db")
def db_group() -> None:
    """The database."""


@db_group.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply pending migrations."""
    url = ctx.db_url or ctx.config.database
    database.open_database(url, migrate=True)
    ctx.console.print(f"database {database.display_url(url)} is up to date")


# ---------------------------------------------------------------- daemon

@cli.command()
@click.option("--listen", metavar="HOST:PORT",
              help="Serve /healthz, /metrics and /topics/NAME.atom|json (e.g. 127.0.0.1:8787).")
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@pass_ctx
def run(ctx: Context, listen: str | None, log_json: bool) -> None:
    """The daemon: scheduled polls, alert dispatch, digests and source health, until
    SIGTERM or SIGINT (SIGHUP reloads the config)."""
    from crawler.daemon import DaemonError, run_daemon

    ctx.config  # noqa: B018 — a config error stops here, before anything starts
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.DEBUG if ctx.verbose else logging.INFO)
        if log_json:
            handler.setFormatter(JsonLines())
    logging.getLogger().setLevel(logging.DEBUG if ctx.verbose else logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run
    try:
        run_daemon(ctx.config_path, ctx.db_url, listen, ctx.redactor)
    except DaemonError as exc:
        raise Failure(str(exc)) from None


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
                "level": record.levelname.lower(), "logger": record.name,
                "message": record.getMessage()}
        if record.exc_info or record.exc_text:  # (the redactor leaves a masked exc_text)
            line["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


# ---------------------------------------------------------------- demo

@cli.command()
@click.option("--keep", type=click.Path(path_type=Path),
              help="Keep the demo database at this path instead of a temporary one.")
@pass_ctx
def demo(ctx: Context, keep: Path | None) -> None:
    """Serve the bundled sample news web on localhost and run the whole flow on it."""
    from crawler.demo import run_demo

    fail_on_problems(run_demo(ctx.console, keep, ctx.verbose))


# ---------------------------------------------------------------- entry point

def main() -> None:
    verbose = "-v" in sys.argv[1:] or "--verbose" in sys.argv[1:]
    redactor = Redactor()  # the config's secrets, once it is loaded: masked in errors too
    try:
        cli.main(standalone_mode=False, obj=redactor)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.UsageError as exc:  # one line, as every failure; the help is one flag away
        where = f" ({exc.ctx.command_path} --help)" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(redactor(f"error: {exc.format_message()}"), err=True)
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        for line in exc.lines():
            click.echo(f"error: {line}", err=True)
        sys.exit(2)
    except database.DatabaseError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # the last line of defence: one line, details with -v
        if verbose:
            click.echo(redactor(traceback.format_exc()), err=True, nl=False)
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(redactor(f"error: {type(exc).__name__}: {first} (run with -v for details)"),
                   err=True)
        sys.exit(1)
