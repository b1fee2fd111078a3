"""The `mediawatch` command (the CLI contract in DESIGN.md): tables for people, `--json` for
scripts, exit 0 on success and one readable line on failure (`-v` for details).

    context.py   what every command shares; views.py how things look (tables, JSON)
    crawl.py articles.py stories.py sources.py topics.py alerting.py archive.py admin.py
    run.py       one module per command group
    demo.py      what `mediawatch demo` does

A command that crawls imports the crawl machinery (Scrapy, the reactor: half a second) when
it runs, and `run` the daemon, so that every other command starts without them.
"""
from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

import click

from basis.errors import MediawatchError, UsageError
from basis.secrets import Redactor
from crawler.cli.admin import config_group, db_group
from crawler.cli.alerting import alerts, digest
from crawler.cli.archive import archive
from crawler.cli.articles import articles
from crawler.cli.context import Context
from crawler.cli.crawl import crawl, demo
from crawler.cli.run import run
from crawler.cli.sources import sources
from crawler.cli.stories import stories
from crawler.cli.topics import topics
from crawler.cli.web import web
from crawler.config import DEFAULT_PATH, ConfigError


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
    log_handler, redactor = ctx.obj  # main()'s
    configure_logging(log_handler, verbose, redactor)
    ctx.obj = Context(config_path, db_url, verbose, redactor)


for command in (crawl, articles, stories, sources, topics, alerts, digest, archive, config_group,
                db_group, run, web, demo):
    cli.add_command(command)

# HTTP clients of the channels: their request lines carry a webhook's or bot's secret path
SECRET_CHATTER = ("urllib3", "requests", "apprise")


def configure_logging(handler: logging.Handler, verbose: bool, redactor: Redactor) -> None:
    """Warnings on stderr; Scrapy's own chatter only with -v, except errors in our code;
    the channels' HTTP chatter never; secrets masked in every line."""
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    handler.setFormatter(TextLines())
    if not verbose:
        handler.addFilter(_quiet_scrapy)
    handler.addFilter(redactor)
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    for name in SECRET_CHATTER:
        logging.getLogger(name).setLevel(logging.WARNING)


class TextLines(logging.Formatter):
    """`2026-12-06T18:40:00.123+00:00 INFO logger: message`: the time in UTC, ISO 8601."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, timezone.utc).isoformat(
            timespec="milliseconds")


def _quiet_scrapy(record: logging.LogRecord) -> bool:
    """Fetch failures already reach the crawl summary; keep errors raised in our code."""
    if record.name.startswith(("scrapy.", "twisted", "py.warnings")):
        return record.name.startswith("scrapy.core.scraper") and record.levelno >= logging.ERROR
    return True


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run one command and exit: 0, or one line on stderr (`error: …`) and the exit code of
    the error (basis.errors): 2 for a usage or configuration error, 1 for a failure."""
    args = list(sys.argv[1:] if argv is None else argv)
    redactor = Redactor()  # the config's secrets, once it is loaded: masked in errors too
    handler = logging.StreamHandler()  # on this invocation's stderr, removed when it ends
    logging.getLogger().addHandler(handler)
    try:
        cli.main(args, prog_name="mediawatch", standalone_mode=False, obj=(handler, redactor))
        code = 0
    except Exception as exc:  # noqa: BLE001 — every failure ends as one line and a code
        code = _report(exc, redactor, verbose="-v" in args or "--verbose" in args)
    finally:
        logging.getLogger().removeHandler(handler)
    sys.exit(code)


def _report(exc: Exception, redactor: Redactor, verbose: bool) -> int:
    """Say what went wrong on stderr, masked; → the exit code."""
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.exceptions.Abort):
        return 130
    if isinstance(exc, click.ClickException):  # a usage error's help is one flag away
        where = f" ({exc.ctx.command_path} --help)" \
            if isinstance(exc, click.UsageError) and exc.ctx else ""
        lines = [f"{exc.format_message()}{where}"]
    elif isinstance(exc, ConfigError):
        lines = exc.lines()
    elif isinstance(exc, MediawatchError):
        lines = [str(exc)]
    else:  # the last line of defence: one line, details with -v
        if verbose:
            click.echo(redactor(traceback.format_exc()), err=True, nl=False)
        first = str(exc).splitlines()[0] if str(exc) else ""
        lines = [f"{type(exc).__name__}: {first} (run with -v for details)"]
    for line in lines:
        click.echo(redactor(f"error: {line}"), err=True)
    return 2 if isinstance(exc, (UsageError, click.UsageError)) else 1  # ClickException: 1
