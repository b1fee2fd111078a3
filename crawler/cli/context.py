"""What every command shares: the context (config, database, console, the redactor), JSON
output with secrets masked, and the checks of names and durations given on the command line."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels import open_channels
from alerts.dispatcher import Dispatcher, DispatchReport
from alerts.query import QuerySyntaxError, parse_query, query_warnings
from alerts.topics import TopicRule
from basis.errors import NotFound, Undelivered, UsageError
from basis.secrets import Redactor
from crawler.cli.views import Text
from crawler.config import Config, load_config, parse_duration
from crawler.engine.report import CrawlReport
from storage import db as database


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
    def url(self) -> str:
        if self.db_url is None:
            return self.config.database  # checked with the config
        try:
            return database.check_url(self.db_url.strip())
        except ValueError as exc:
            raise UsageError(f"--db: {exc}") from None

    @cached_property
    def db(self) -> sessionmaker[Session]:
        return database.open_database(self.url)

    @cached_property
    def reader(self) -> sessionmaker[Session]:
        """The database of a command that only reads: it must exist and may be read-only."""
        return database.open_for_reading(self.url)

    @cached_property
    def console(self) -> Console:
        wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ  # piped: no wrapping
        return Console(width=160 if wide else None, highlight=False)


pass_ctx = click.make_pass_decorator(Context)
COUNT = click.IntRange(1, 2**63 - 1)  # --limit: at most what a database integer holds
ID = COUNT  # an article, story or alert id


def emit_json(document: Any) -> None:
    """Print one JSON document, the config's secrets masked in every string of it."""
    ctx = click.get_current_context().find_object(Context)
    click.echo(json.dumps(ctx.redactor.deep(document) if ctx else document,
                          ensure_ascii=False, indent=2))


def since_arg(text: str | None) -> datetime | None:
    return datetime.now(timezone.utc) - duration_arg(text, "--since") if text else None


def listen_arg(_: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A `--listen HOST:PORT`, checked before anything starts."""
    from crawler.daemon.site import parse_address  # Twisted: only for the commands that listen

    if value is not None:
        try:
            parse_address(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param=param) from None
    return value


def duration_arg(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def source_tags(ctx: Context) -> dict[str, tuple[str, ...]]:
    return {s.name: s.tags for s in ctx.config.sources}


def topic_rule(ctx: Context, name: str | None, draft: str | None) -> TopicRule:
    from alerts.topics import TopicRule

    topic = next((t for t in ctx.config.topics if t.name == name), None)
    if draft is None and topic is None:
        known = ", ".join(t.name for t in ctx.config.topics) or "none"
        raise NotFound(f"no topic named {name!r} (known: {known}); or pass --query" if name
                       else "name a topic or pass --query")
    text = draft if draft is not None else topic.query  # type: ignore[union-attr]
    try:
        query = parse_query(text, ctx.config.aliases)
    except QuerySyntaxError as exc:
        raise UsageError(f"{exc}\n{exc.caret()}" if exc.query.strip() else str(exc)) from None
    for warning in query_warnings(text):  # on stderr: --json output stays a document
        click.echo(f"warning: {warning}", err=True)
    if topic is None:
        return TopicRule(name or "draft", query)
    return TopicRule(topic.name, query, frozenset(topic.languages), frozenset(topic.sources))


def fail_on_undelivered(report: DispatchReport) -> None:
    """Exit non-zero when something could not be delivered, so cron and scripts notice."""
    if report.failed or report.retried:
        raise Undelivered(f"{report.failed} failed, {report.retried} to be retried "
                          "(mediawatch alerts list --status failed / --status pending)")


def known_topic(ctx: Context, topic: str) -> None:
    """A --topic that names no configured topic is a typo, not an empty result."""
    known = [t.name for t in ctx.config.topics]
    if topic not in known:
        raise NotFound(f"no topic named {topic!r} (known: {', '.join(known) or 'none'})")



def deliver(ctx: Context, quiet: bool = False) -> DispatchReport:

    delivered = Dispatcher(ctx.db, open_channels(ctx.config.channels),
                           ctx.config.alert_controls(),
                           story_url=ctx.config.web.story_url).deliver_due()
    if not quiet:
        for line in delivered.lines:
            ctx.console.print(Text(line))
    return delivered



def fail_on_problems(report: CrawlReport) -> None:
    if report.unstored:
        raise Undelivered(f"{report.unstored} items could not be stored; they will be fetched "
                          "again on the next crawl (run with -v for details)")
    if report.failed:
        names = ", ".join(r.name for r in report.failed)
        raise Undelivered(f"{len(report.failed)} of {len(report.sources)} sources failed: {names}")

