"""`mediawatch stories …`: threads of coverage."""
from __future__ import annotations

import click

from basis.clock import utcnow
from basis.errors import NotFound
from crawler.cli import views
from crawler.cli.context import COUNT, ID, Context, emit_json, pass_ctx, since_arg
from storage import repository as repo


@click.group()
def stories() -> None:
    """Threads of coverage: an event's reports from every outlet, copies folded in."""


@stories.command("list")
@click.option("--since", help="Only stories with an article or copy first seen within this "
                              "duration (7d).")
@click.option("--triage", type=click.Choice(repo.TRIAGE_STATES),
              help="Only stories in this triage state (a reviewed story with a follow-up "
                   "since is unreviewed again).")
@click.option("--limit", type=COUNT, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def stories_list(ctx: Context, since: str | None, triage: str | None, limit: int,
                 as_json: bool) -> None:
    """List stories, most recently active first."""
    after = since_arg(since)
    with ctx.reader() as session:
        rows = repo.list_stories(session, since=after, limit=limit, triage=triage)
    if as_json:
        emit_json([views.story_json(row) for row in rows])
    else:
        ctx.console.print(views.stories_table(rows))


@stories.command("show")
@click.argument("story_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def stories_show(ctx: Context, story_id: int, as_json: bool) -> None:
    """Show one story with all its articles."""
    with ctx.reader() as session:
        found = repo.get_story(session, story_id)
        if found is None:
            raise NotFound(f"no story with id {story_id} (see: mediawatch stories list)")
        row, articles = found
        links = repo.story_links(session, [a.id for a in articles])
        if as_json:
            emit_json(views.story_json(row) | {
                "articles": [views.article_json(a) | {"joined_by": views.link_json(links.get(a.id))}
                             for a in articles]})
        else:
            views.print_story(ctx.console, row, list(articles), links)


def _triage(ctx: Context, story_id: int, state: str) -> None:
    with ctx.db.begin() as session:
        if not repo.set_triage(session, story_id, state, utcnow()):
            raise NotFound(f"no story with id {story_id} (see: mediawatch stories list)")


@stories.command("review")
@click.argument("story_id", type=ID)
@pass_ctx
def stories_review(ctx: Context, story_id: int) -> None:
    """Mark a story reviewed: it shows as unreviewed again once a follow-up report (not a
    near-copy) is stored after now (the review keeps the highest article id of its reports:
    ids, not clocks)."""
    _triage(ctx, story_id, "reviewed")
    click.echo(f"story {story_id} marked reviewed: a follow-up report makes it unreviewed "
               "again")


@stories.command("dismiss")
@click.argument("story_id", type=ID)
@pass_ctx
def stories_dismiss(ctx: Context, story_id: int) -> None:
    """Mark a story dismissed (it does not matter): it stays so whatever follows."""
    _triage(ctx, story_id, "dismissed")
    click.echo(f"story {story_id} dismissed: it stays so whatever follows "
               f"(undo: mediawatch stories reopen {story_id})")


@stories.command("reopen")
@click.argument("story_id", type=ID)
@pass_ctx
def stories_reopen(ctx: Context, story_id: int) -> None:
    """Clear a story's review or dismissal: it is unreviewed again."""
    _triage(ctx, story_id, "unreviewed")
    click.echo(f"story {story_id} is unreviewed again")
