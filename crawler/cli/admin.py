"""`mediawatch config check` and `mediawatch db upgrade`."""
from __future__ import annotations

import click

from alerts.channels import build_channels
from crawler.cli.context import Context, pass_ctx
from crawler.cli.views import Text
from crawler.config import ConfigError
from storage import db as database


@click.group("config")
def config_group() -> None:
    """The configuration file."""


@config_group.command("check")
@pass_ctx
def config_check(ctx: Context) -> None:
    """Validate the config file, the environment it needs and the channel endpoints."""
    config = ctx.config
    try:
        build_channels(config.channels)
    except ValueError as exc:
        raise ConfigError([("", str(exc))], str(ctx.config_path)) from None
    for warning in [*config.channel_warnings(), *config.tls_warnings(),
                    *config.query_warnings()]:
        ctx.console.print(Text(f"warning: {ctx.config_path}: {warning}", style="yellow"))
    ctx.console.print(f"{ctx.config_path}: ok — {len(config.sources)} sources, "
                      f"{len(config.topics)} topics, {len(config.channels)} channels; "
                      f"database {database.display_url(ctx.url)}")


@click.group("db")
def db_group() -> None:
    """The database."""


@db_group.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply pending migrations."""
    database.open_database(ctx.url, migrate=True)
    ctx.console.print(f"database {database.display_url(ctx.url)} is up to date")
