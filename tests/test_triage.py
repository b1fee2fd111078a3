"""Story triage (issue 17, the reading room): an analyst marks a story reviewed or
dismissed; a follow-up report (not a near-copy) makes a reviewed story unreviewed again,
a dismissed one stays dismissed; `stories list|show` show it and filter on it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import inspect, update

from storage import repository as repo
from storage.db import alembic_config, engine_of, open_database
from storage.models import Article, Story

T0 = datetime(2026, 12, 1, 8, tzinfo=timezone.utc)


def item(path: str) -> repo.NewArticle:
    url = f"https://a.example/{path}"
    return repo.NewArticle(url, url, url, f"title {path}", f"text of {path}", "", "en",
                           None, True, f"hash-{path}")


@pytest.fixture
def db(db_url: str):
    factory = open_database(db_url)
    with factory.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("a", "feed", "https://a.example/f.xml")])
    return factory


def add(db, path: str, seen: datetime, story: int | None = None,
        copy_of: int | None = None) -> Article:
    """An article first seen at `seen`: its story's own report, or a near-copy."""
    with db.begin() as session:
        article, _ = repo.add_article(session, item(path), "a", lambda: repo.Placement(
            duplicate_of=copy_of, story_id=story))
        session.execute(update(Article).where(Article.id == article.id)
                        .values(first_seen_at=seen))
        session.expunge(article)
        return article


def triage(db, story_id: int, state: str, now: datetime) -> bool:
    with db.begin() as session:
        return repo.set_triage(session, story_id, state, now)


def shown(db, story_id: int) -> tuple[str, str, datetime | None]:
    """(list_stories's triage, get_story's triage, triaged_at): both must agree."""
    with db() as session:
        listed = {row.story.id: row for row in repo.list_stories(session)}[story_id]
        row, _ = repo.get_story(session, story_id)
    assert listed.triaged_at == row.triaged_at
    return listed.triage, row.triage, row.triaged_at


def test_migration_0011_adds_and_drops_the_triage_columns(db_url: str, db) -> None:
    engine = engine_of(db)
    columns = {c["name"] for c in inspect(engine).get_columns("stories")}
    assert {"triage", "triaged_at", "triage_watermark"} <= columns
    add(db, "1", T0)
    config = alembic_config(engine)
    command.downgrade(config, "0010")
    assert not {"triage", "triaged_at", "triage_watermark"} & {
        c["name"] for c in inspect(engine).get_columns("stories")}
    command.upgrade(config, "head")
    with db() as session:
        assert session.get(Story, 1).triage is None


def test_a_review_holds_until_a_follow_up_but_not_for_a_near_copy(db) -> None:
    lead = add(db, "lead", T0)
    assert shown(db, lead.story_id) == ("unreviewed", "unreviewed", None)
    review = T0 + timedelta(hours=1)
    assert triage(db, lead.story_id, "reviewed", review)
    assert shown(db, lead.story_id) == ("reviewed", "reviewed", review)
    add(db, "copy", T0 + timedelta(hours=2), copy_of=lead.id)  # the same report again
    assert shown(db, lead.story_id) == ("reviewed", "reviewed", review)
    add(db, "follow-up", T0 + timedelta(hours=3), story=lead.story_id)
    assert shown(db, lead.story_id) == ("unreviewed", "unreviewed", review)
    again = T0 + timedelta(hours=4)
    triage(db, lead.story_id, "reviewed", again)  # reviewed again, follow-up included
    assert shown(db, lead.story_id) == ("reviewed", "reviewed", again)


def test_a_follow_up_reopens_a_review_whatever_the_clocks_say(db) -> None:
    """The reader's machine runs a day fast: its review is "later" than the follow-up the
    crawler stores after it. The watermark (ids), not the times, says what came after."""
    lead = add(db, "lead", T0)
    fast = T0 + timedelta(days=1)  # the web process's clock
    triage(db, lead.story_id, "reviewed", fast)
    with db() as session:
        assert session.get(Story, lead.story_id).triage_watermark == lead.id
    add(db, "copy", T0 + timedelta(minutes=5), copy_of=lead.id)
    assert shown(db, lead.story_id) == ("reviewed", "reviewed", fast)
    add(db, "follow-up", T0 + timedelta(minutes=10), story=lead.story_id)  # before `fast`
    assert shown(db, lead.story_id) == ("unreviewed", "unreviewed", fast)
    with db() as session:
        assert [r.story.id for r in repo.list_stories(session, triage="unreviewed")] == [
            lead.story_id]
        assert not repo.list_stories(session, triage="reviewed")


def test_a_review_covers_only_the_reports_the_analyst_was_shown(db) -> None:
    lead = add(db, "lead", T0)
    follow = add(db, "follow-up", T0 + timedelta(hours=1), story=lead.story_id)
    with db.begin() as session:  # the page showed the lead only: the follow-up came since
        assert repo.set_triage(session, lead.story_id, "reviewed", T0, seen=lead.id)
    assert shown(db, lead.story_id)[:2] == ("unreviewed", "unreviewed")
    with db.begin() as session:  # a `seen` past the newest report: the newest counts
        repo.set_triage(session, lead.story_id, "reviewed", T0, seen=follow.id + 100)
        assert session.get(Story, lead.story_id).triage_watermark == follow.id
    assert shown(db, lead.story_id)[:2] == ("reviewed", "reviewed")


def test_a_dismissed_story_stays_dismissed_until_reopened(db) -> None:
    lead = add(db, "lead", T0)
    triage(db, lead.story_id, "dismissed", T0 + timedelta(hours=1))
    add(db, "follow-up", T0 + timedelta(hours=3), story=lead.story_id)
    assert shown(db, lead.story_id)[:2] == ("dismissed", "dismissed")
    assert triage(db, lead.story_id, "unreviewed", T0 + timedelta(hours=5))
    assert shown(db, lead.story_id) == ("unreviewed", "unreviewed", None)
    with db() as session:
        story = session.get(Story, lead.story_id)
        assert story.triage is None and story.triaged_at is None
        assert story.triage_watermark is None


def test_triage_of_an_unknown_story_is_refused(db) -> None:
    assert not triage(db, 999, "reviewed", T0)
    with pytest.raises(ValueError):
        triage(db, 999, "archived", T0)


def test_list_stories_filters_on_triage_in_the_query(db) -> None:
    """Six stories, newest first: a limit still returns that many of the state asked."""
    ids = [add(db, f"s{n}", T0 + timedelta(minutes=n)).story_id for n in range(6)]
    with db.begin() as session:  # most recently active: the highest id
        for n, story_id in enumerate(ids):
            session.execute(update(Story).where(Story.id == story_id)
                            .values(last_seen_at=T0 + timedelta(minutes=n)))
    later = T0 + timedelta(hours=1)
    for story_id in ids[3:]:  # the three newest reviewed …
        triage(db, story_id, "reviewed", later)
    triage(db, ids[2], "dismissed", later)
    add(db, "follow-up", T0 + timedelta(hours=2), story=ids[5])  # … one of them followed up

    def listed(state: str | None, limit: int | None = None) -> list[int]:
        with db() as session:
            return [row.story.id for row in repo.list_stories(session, limit=limit,
                                                              triage=state)]

    assert listed("reviewed") == [ids[4], ids[3]]
    assert listed("reviewed", limit=1) == [ids[4]]
    assert listed("unreviewed", limit=2) == [ids[5], ids[1]]
    assert listed("unreviewed") == [ids[5], ids[1], ids[0]]
    assert listed("dismissed") == [ids[2]]
    assert len(listed(None)) == 6
    with pytest.raises(ValueError):
        listed("archived")


# ---------------------------------------------------------------- the CLI

def cli_story(cli) -> tuple[int, int]:
    """Two stories, their leads first seen at T0 and an hour later → their ids."""
    cli.write_config({"sources": [{"name": "a", "kind": "feed",
                                   "url": "https://a.example/f.xml"}]})
    db = open_database(cli.db)
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("a", "feed", "https://a.example/f.xml")])
    return add(db, "one", T0).story_id, add(db, "two", T0 + timedelta(hours=1)).story_id


def test_stories_review_dismiss_and_reopen_show_in_json_and_filter(cli) -> None:
    one, two = cli_story(cli)
    listed = cli("stories", "list", "--json").json()
    assert {(s["id"], s["triage"], s["triaged_at"]) for s in listed} == {
        (one, "unreviewed", None), (two, "unreviewed", None)}
    reviewed = cli("stories", "review", str(one))
    assert reviewed.code == 0 and f"story {one} marked reviewed" in reviewed.out
    dismissed = cli("stories", "dismiss", str(two))
    assert dismissed.code == 0 and f"story {two} dismissed" in dismissed.out
    shown = cli("stories", "show", str(one), "--json").json()
    assert shown["triage"] == "reviewed"
    assert datetime.fromisoformat(shown["triaged_at"]) > T0
    assert [s["id"] for s in cli("stories", "list", "--triage", "reviewed", "--json").json()] \
        == [one]
    assert [s["id"] for s in cli("stories", "list", "--triage", "dismissed", "--json").json()] \
        == [two]
    assert cli("stories", "list", "--triage", "unreviewed", "--json").json() == []
    table = cli("stories", "list").out
    assert "triage" in table and "reviewed" in table and "dismissed" in table
    assert "triage: reviewed" in cli("stories", "show", str(one)).out
    reopened = cli("stories", "reopen", str(two))
    assert reopened.code == 0 and f"story {two} is unreviewed again" in reopened.out
    again = cli("stories", "list", "--triage", "unreviewed", "--json").json()
    assert [(s["id"], s["triaged_at"]) for s in again] == [(two, None)]
    assert cli("stories", "list", "--triage", "archived").code == 2
    # a follow-up the crawler dates before the review (its clock is behind): still new
    add(open_database(cli.db), "one-more", T0 + timedelta(minutes=1), story=one)
    assert cli("stories", "show", str(one), "--json").json()["triage"] == "unreviewed"


@pytest.mark.parametrize("command", ["review", "dismiss", "reopen"])
def test_triage_of_an_unknown_story_exits_2(cli, command: str) -> None:
    cli_story(cli)
    result = cli("stories", command, "999")
    assert result.code == 2
    assert result.err == "error: no story with id 999 (see: mediawatch stories list)\n"
