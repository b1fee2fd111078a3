"""The `mediawatch` command (the CLI contract in DESIGN.md): tables for people, `--json` for
scripts, exit 0 on success and one readable line on failure (`-v` for details).

    context.py   what every command shares; views.py how things look (tables, JSON)
    crawl.py articles.py stories.py sources.py topics.py alerting.py admin.py run.py demo.py
                 one module per command group
"""
from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import click

from basis.errors import UsageError
from basis.secrets import Redactor
from crawler.cli.admin import config_group, db_group
from crawler.cli.alerting import alerts, digest
from crawler.cli.articles import articles
from crawler.cli.context import Context
from crawler.cli.crawl import crawl
from crawler.cli.demo import demo
from crawler.cli.run import run
from crawler.cli.sources import sources
from crawler.cli.stories import stories
from crawler.cli.topics import topics
from crawler.config import DEFAULT_PATH, ConfigError
from storage import db as database


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


for command in (crawl, articles, stories, sources, topics, alerts, digest, config_group, db_group,
                run, demo):
    cli.add_command(command)


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
    except UsageError as exc:
        click.echo(redactor(f"error: {exc}"), err=True)
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
