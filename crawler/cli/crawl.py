"""`mediawatch crawl`: one crawl of all or the named sources, then the alerts it queued;
`mediawatch demo`: the same on the bundled sample news web."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click
from rich.console import Console

from crawler.cli import views
from crawler.cli.context import Context, deliver, emit_json, fail_on_problems, pass_ctx


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--no-alerts", is_flag=True, help="Store and match, but do not deliver alerts.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def crawl(ctx: Context, sources: tuple[str, ...], no_alerts: bool, as_json: bool) -> None:
    """Crawl all sources, or the named ones, once; then deliver pending alerts."""
    from crawler.engine.runner import run_crawl  # see crawler.cli: loaded to crawl

    progress = views.CrawlProgress(Console(stderr=True) if as_json else ctx.console)
    with progress:
        report = run_crawl(ctx.config, ctx.db, sources, progress.update, ctx.verbose)
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        delivered = None if no_alerts else deliver(ctx, quiet=as_json)  # console channel
    if as_json:
        emit_json(views.report_json(report) | {"alerts": vars(delivered) if delivered else None})
    else:
        ctx.console.print(views.crawl_summary(report))
    fail_on_problems(report)


@click.command()
@click.option("--keep", type=click.Path(path_type=Path),
              help="Keep the demo database at this path instead of a temporary one.")
@pass_ctx
def demo(ctx: Context, keep: Path | None) -> None:
    """Serve the bundled sample news web on localhost and run the whole flow on it."""
    from crawler.cli.demo import run_demo  # crawls: see crawler.cli

    fail_on_problems(run_demo(ctx.console, keep, ctx.verbose))
