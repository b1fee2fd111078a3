"""`mediawatch topics …`: hit counts, backtests, explanations."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click

from alerts.backtest import backtest, document
from alerts.explain import explain
from basis.errors import NotFound
from crawler.cli import views
from crawler.cli.context import (
    COUNT,
    ID,
    Context,
    emit_json,
    pass_ctx,
    since_arg,
    source_tags,
    topic_rule,
)
from storage import repository as repo


@click.group()
def topics() -> None:
    """Topic rules: hit counts, backtests, explanations."""


@topics.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def topics_list(ctx: Context, as_json: bool) -> None:
    """Each topic with its hits first seen in the last day and week."""
    now = datetime.now(timezone.utc)
    with ctx.reader() as session:
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
              help="Only articles first seen within this duration.")
@click.option("--explain", "explain_id", type=ID, metavar="ID",
              help="Show which clause matched or failed for one article.")
@click.option("--limit", type=COUNT, default=50, show_default=True,
              help="Hits to show.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def topics_test(ctx: Context, name: str | None, draft: str | None, since: str,
                explain_id: int | None, limit: int, as_json: bool) -> None:
    """Backtest a topic (or a draft --query) on stored articles, with highlights."""

    rule, tags, after = topic_rule(ctx, name, draft), source_tags(ctx), since_arg(since)
    with ctx.reader() as session:
        if explain_id is not None:
            article = repo.get_article(session, explain_id)
            if article is None:
                raise NotFound(f"no article with id {explain_id}")
            clauses = explain(rule.query, document(article, tags.get(article.source.name, ())))
            if as_json:
                emit_json([vars(c) for c in clauses])
            else:
                views.print_explanation(ctx.console, article, clauses)
            return
        result = backtest(session, rule, after, tags, limit)
    if as_json:
        emit_json(result)
    else:
        views.print_backtest(ctx.console, result)
