"""`mediawatch articles …`: what is stored."""
from __future__ import annotations

import click

from alerts.backtest import search
from basis.errors import NotFound
from crawler.cli import views
from crawler.cli.context import (
    COUNT,
    ID,
    Context,
    emit_json,
    known_topic,
    pass_ctx,
    since_arg,
    source_tags,
    topic_rule,
)
from crawler.cli.views import Text
from storage import archive
from storage import repository as repo
from storage.models import Article


@click.group()
def articles() -> None:
    """What is stored."""


@articles.command("list")
@click.option("--topic", help="Only articles that matched this topic.")
@click.option("--since", help="Only articles first seen within this duration (7d).")
@click.option("--all", "include_all", is_flag=True, help="Include duplicates.")
@click.option("--limit", type=COUNT, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def articles_list(ctx: Context, topic: str | None, since: str | None, include_all: bool,
                  limit: int, as_json: bool) -> None:
    """List stored articles, newest first."""
    after = since_arg(since)  # a bad option before the database
    with ctx.reader() as session:
        rows = list(repo.list_articles(session, since=after, topic=topic,
                                       include_duplicates=include_all, limit=limit))
        if topic and not rows:
            known_topic(ctx, topic)
        if as_json:
            emit_json([views.article_json(a) for a in rows])
        else:
            ctx.console.print(views.articles_table(rows))


@articles.command("show")
@click.argument("article_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
@click.option("--raw", is_flag=True,
              help="Write the archived bytes it was read from (its page, or its feed) to stdout.")
@pass_ctx
def articles_show(ctx: Context, article_id: int, as_json: bool, raw: bool) -> None:
    """Show one article with its text and where it was seen."""
    if raw and as_json:
        raise click.UsageError("--raw and --json exclude each other")
    with ctx.reader() as session:
        article = repo.get_article(session, article_id)
        if article is None:
            raise NotFound(f"no article with id {article_id}")
        if raw:
            click.echo(archived_bytes(article), nl=False)  # bytes: to the binary stream
        elif as_json:
            emit_json(views.article_detail_json(article))
        else:
            views.print_article(ctx.console, article)


def archived_bytes(article: Article) -> bytes:
    if article.capture is None:
        raise NotFound(f"article {article.id} has no archived copy (stored with `archive: "
                       "false`, before the archive existed, or past archive.retention)")
    return archive.unpack(article.capture)


@articles.command("search")
@click.argument("query")
@click.option("--since", help="Only articles first seen within this duration (30d).")
@click.option("--limit", type=COUNT, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def articles_search(ctx: Context, query: str, since: str | None, limit: int,
                    as_json: bool) -> None:
    """Stored articles that match QUERY (the topic query language, aliases included),
    newest first, with what matched highlighted."""

    rule, after = topic_rule(ctx, None, query), since_arg(since)
    with ctx.reader() as session:
        found = [views.article_json(article) | {"highlights": match.as_json()}
                 for article, match in search(session, rule.query, after,
                                              source_tags(ctx), limit)]
    if as_json:
        emit_json(found)
    else:
        ctx.console.print(Text(f"{len(found)} articles match {query}", style="bold"))
        views.print_hits(ctx.console, found)
