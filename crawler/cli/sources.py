"""`mediawatch sources …`: the sources and their health."""
from __future__ import annotations

from urllib.parse import urlsplit

import click

from basis.errors import RuntimeFailure, UsageError
from crawler.cli import views
from crawler.cli.context import Context, emit_json, pass_ctx
from crawler.cli.views import Text
from crawler.config.model import Source as SourceConfig
from storage import repository as repo
from storage.models import Source


@click.group()
def sources() -> None:
    """Sources and their health."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sources_list(ctx: Context, as_json: bool) -> None:
    """Health of every configured source."""
    with ctx.reader() as session:
        stored = {s.name: s for s in repo.list_sources(session)}
    rows = [_as_configured(s, stored.get(s.name))
            for s in sorted(ctx.config.sources, key=lambda s: s.name)]
    verified = {s.name: ctx.config.verifies_tls(s) for s in ctx.config.sources}
    if as_json:
        emit_json([views.source_json(s, verified[s.name]) for s in rows])
        return
    ctx.console.print(views.sources_table(rows, ctx.redactor))
    for s in rows:
        if not verified[s.name]:
            ctx.console.print(Text(f"warning: {s.name}: verify_tls is false: the TLS "
                                   f"certificate of {urlsplit(s.url).hostname} is not checked",
                                   style="yellow"))


def _as_configured(source: SourceConfig, stored: Source | None) -> Source:
    """A source's stored health with its kind and URL as configured (they may have changed
    since its last poll); one never polled is not stored yet."""
    row = stored or Source(name=source.name, consecutive_failures=0)
    row.kind, row.url = source.kind, source.url  # detached from its session: never written
    return row


@sources.command("check")
@click.argument("name", required=False)
@click.option("--all", "every", is_flag=True, help="Check every configured source, one line "
                                                    "each (--json: one object each).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sources_check(ctx: Context, name: str | None, every: bool, as_json: bool) -> None:
    """Fetch one source (or --all) now and show what it would yield, storing nothing."""
    from crawler.engine.runner import check_sources  # see crawler.cli: loaded to crawl

    if every == (name is not None):
        raise UsageError("give a source NAME or --all (see: mediawatch sources list)")
    found = check_sources(ctx.config, ctx.db, [name] if name else [], ctx.verbose)
    results = [views.check_json(source, items) for source, items in found.items()]
    if as_json:
        emit_json(results if every else results[0])
    elif every:
        ctx.console.print(views.checks_table(results))
    else:
        views.print_check(ctx.console, results[0])
    failed = [r for r in results if r["status"] == "failed"]
    if failed and not every:
        raise RuntimeFailure(f"{name}: {failed[0]['message']}")
    if failed:
        raise RuntimeFailure(f"{len(failed)} of {len(results)} sources failed: "
                             f"{', '.join(r['source'] for r in failed)}")
