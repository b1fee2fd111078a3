"""`mediawatch web`: the reading room alone, over a database."""
from __future__ import annotations

import logging

import click

from crawler.cli.context import Context, listen_arg, pass_ctx


@click.command()
@click.option("--listen", metavar="HOST:PORT", default="127.0.0.1:8787", show_default=True,
              callback=listen_arg,
              help="Where to serve the pages; beyond loopback only with web.token set.")
@pass_ctx
def web(ctx: Context, listen: str) -> None:
    """The web pages (stories, evidence, sources, alerts, query workbench) over the
    database, without crawling, until SIGTERM or SIGINT. The config is read at start:
    restart it to apply a new token or topics."""
    from crawler.daemon.site import serve_web  # the reactor: not imported by other commands

    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.DEBUG if ctx.verbose else logging.INFO)
    logging.getLogger().setLevel(logging.DEBUG if ctx.verbose else logging.INFO)
    logging.getLogger("alembic").setLevel(logging.INFO if ctx.verbose else logging.WARNING)
    serve_web(ctx.config, ctx.db, listen)
