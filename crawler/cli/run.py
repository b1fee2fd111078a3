"""`mediawatch run`: the daemon, with its logging."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import click

from crawler.cli.context import Context, listen_arg, pass_ctx


@click.command()
@click.option("--listen", metavar="HOST:PORT", callback=listen_arg,
              help="Serve /healthz, /metrics, the topic feeds and the web pages (e.g. "
                   "127.0.0.1:8787); beyond loopback the pages and feeds need web.token.")
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@pass_ctx
def run(ctx: Context, listen: str | None, log_json: bool) -> None:
    """The daemon: scheduled polls, alert dispatch, digests and source health, until
    SIGTERM or SIGINT (SIGHUP reloads the config)."""
    from crawler.daemon.service import run_daemon  # the daemon's own reactor: not imported
    #                                                  by other commands

    ctx.config  # noqa: B018 — a config error stops here, before anything starts
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.DEBUG if ctx.verbose else logging.INFO)
        if log_json:
            handler.setFormatter(JsonLines())
    logging.getLogger().setLevel(logging.DEBUG if ctx.verbose else logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run
    logging.getLogger("alembic").setLevel(logging.INFO if ctx.verbose else logging.WARNING)
    run_daemon(ctx.config_path, ctx.db_url, listen, ctx.redactor)


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
                "level": record.levelname.lower(), "logger": record.name,
                "message": record.getMessage()}
        if record.exc_info or record.exc_text:  # (the redactor leaves a masked exc_text)
            line["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
