"""`/query?q=…`: the query workbench — `topics test` in the browser. A draft query (aliases
expanded) runs over the stored originals of a window, newest first, with its hits
highlighted and counted per day and source; a query that does not parse shows where.

Bounded, and honest about it: a draft of at most MAX_QUERY characters; each request
searches one stretch of the window, newest first — at most SCAN_LIMIT articles, for at
most SCAN_SECONDS of CPU time (the SQL included; never fewer than MIN_ROWS rows, so a
request always gets further), and at most PAGE_SIZE hits — and says how far it got:
"searched the newest N articles of the window", the counts per day and source covering the
articles searched, and a keyset link (`before=ARTICLE_ID`, every parameter kept) that
searches further from where it stopped. A keyword prefilter in SQL (`required`: the plain
Latin words the query cannot match without, looked up case-insensitively in the stored
title and text, within the stretch) keeps most articles out of Python (none for a group of
more than MAX_GROUP_WORDS alternatives); only the columns matching needs are read. The database
enforces SQL_SECONDS on every statement (SQLite: a progress handler that interrupts it;
PostgreSQL: `SET LOCAL statement_timeout`): one that cannot finish by then makes the
query "too large or too slow"."""
from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, or_, select, text, tuple_
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from alerts.channels.render import highlight
from alerts.match import Document, Matcher
from alerts.query import (
    And,
    Near,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    parse_query,
    query_warnings,
)
from crawler.daemon.web.filters import PAGE_SIZE, ListFilters
from crawler.daemon.web.pages.topics import Links
from storage.models import Article, Source

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page

DEFAULT_SINCE = "30d"
SCAN_LIMIT = 2_000  # articles of the window one request searches at most
SCAN_SECONDS = 0.04  # and for at most this much CPU time, the SQL included
MIN_ROWS = 50  # rows a request matches whatever the clock says: it always gets further
SQL_SECONDS = 0.75  # a statement the database has not finished by then is given up
MAX_QUERY = 2_000  # characters of a draft
MAX_GROUP_WORDS = 16  # a group of more alternatives is not looked up in SQL
TOO_SLOW = "query too large or too slow: narrow it (fewer OR terms, a shorter window, a source)"
BATCH = 500
EXAMPLE = '@alias AND (student* OR 留学生) AND NOT title:film'


@dataclass(frozen=True)
class Hit:
    id: int
    title: str
    source: str
    language: str | None
    when: datetime
    url: str
    snippet: list[tuple[str, bool]]


@dataclass(frozen=True)
class Problem:
    message: str
    caret: str


@dataclass(frozen=True)
class Scan:
    hits: list[Hit]
    scanned: int  # articles of the window searched (the prefilter's misses included)
    prefilter: tuple[tuple[str, ...], ...]  # the words looked up in SQL (all of one group)
    capped: str | None  # why it stopped before the window's end, if it did
    per_day: list[tuple[str, int]]
    per_source: list[tuple[str, int]]
    further: int | None = None  # `before=` of the next stretch (None: the window's end)
    continued: bool = False  # this stretch began where an earlier request stopped
    reached: datetime | None = None  # the first sighting of the oldest article searched


def page(page: Page) -> tuple[str, dict[str, Any]]:
    filters = ListFilters.of(page.request.args)
    if filters.since is None:
        filters = replace(filters, since=DEFAULT_SINCE)
    typed = (page.request.args.get("q") or "")
    draft = " ".join(typed.splitlines())  # one line: the caret's column is the query's
    context: dict[str, Any] = {"filters": filters, "q": typed, "problem": None,
                               "warnings": [], "scan": None, "hits": [], "more": False,
                               "example": _example(page), "links": Links(filters, {"q": typed}),
                               "scan_limit": SCAN_LIMIT, "page_size": PAGE_SIZE}
    if not draft.strip():
        return "query.html", context
    if len(typed) > MAX_QUERY:
        context["problem"] = Problem(f"query too long: {len(typed):,} characters, at most "
                                     f"{MAX_QUERY:,}: narrow it", "")
        return "query.html", context
    try:
        query = parse_query(draft, page.config.aliases)
    except QuerySyntaxError as error:
        context["problem"] = Problem(str(error), error.caret())
        return "query.html", context
    except ValueError as error:
        context["problem"] = Problem(str(error), "")
        return "query.html", context
    context["warnings"] = query_warnings(draft)
    tags = {s.name: s.tags for s in page.config.sources}
    before = page.request.args.get("before", "")
    cursor = int(before) if before.isdigit() and len(before) < 19 else None
    try:
        scan = search(page, query, filters, tags,
                      cursor if cursor is not None and cursor < 2 ** 31 else None)
    except _TooSlow:
        context["problem"] = Problem(TOO_SLOW, "")
        return "query.html", context
    context.update(scan=scan, hits=scan.hits, more=scan.further is not None)
    return "query.html", context


def _example(page: Page) -> str:
    alias = next(iter(page.config.aliases), None)
    return EXAMPLE.replace("@alias AND ", f"@{alias} AND " if alias else "")


def search(page: Page, query: Any, filters: ListFilters,
           tags: dict[str, tuple[str, ...]], before: int | None = None) -> Scan:
    """One stretch of the window's originals, newest first (by first seen, then id),
    starting below the article `before` (None: at the newest): its hits, at most PAGE_SIZE,
    counted per day and source, and where the next stretch begins."""
    session = page.db
    started = time.monotonic()
    # the budget is this thread's CPU time, the SQL's included (SQLite runs in it): the
    # work a search does, the same on a busy machine as on a quiet one
    budget = time.thread_time() + SCAN_SECONDS
    order = (Article.first_seen_at.desc(), Article.id.desc())
    window: list[ColumnElement[bool]] = [Article.duplicate_of.is_(None)]
    if filters.after is not None:
        window.append(Article.first_seen_at >= filters.after)
    if filters.source:
        window.append(Article.source_id == select(Source.id).where(
            Source.name == filters.source).scalar_subquery())
    if filters.language:
        window.append(Article.language == filters.language)
    key = tuple_(Article.first_seen_at, Article.id)
    cursor = session.execute(select(Article.first_seen_at, Article.id)
                             .where(Article.id == before)).first() if before else None
    if cursor is not None:
        window.append(key < tuple_(*cursor))
    matcher = Matcher({"draft": query})
    groups = required(query)
    postgres = session.get_bind().dialect.name == "postgresql"
    hits: list[Hit] = []
    per_day: Counter[date] = Counter()
    per_source: Counter[str] = Counter()
    rows_read, last, stopped = 0, None, None
    try:
        with bounded(session, started + SQL_SECONDS):
            statement = (select(Article.id, Article.title, Article.text,
                                Article.canonical_url, Article.language,
                                Article.published_at, Article.first_seen_at, Source.name)
                         .join(Source, Source.id == Article.source_id)
                         .where(*window).order_by(*order))
            floor = []
            if groups:  # the rows read are not all the articles searched: the stretch's
                # oldest article (the SCAN_LIMIT-th) bounds it, and whether one follows
                # (ix_articles_original_seen: (duplicate_of, first_seen_at), ids in order)
                floor = session.execute(select(Article.first_seen_at, Article.id)
                                        .where(*window).order_by(*order)
                                        .offset(SCAN_LIMIT - 1).limit(2)).all()
                if floor:
                    statement = statement.where(key >= tuple_(*floor[0]))
            else:  # every row read is an article searched: the limit bounds the stretch
                statement = statement.limit(SCAN_LIMIT + 1)
            for group in groups:
                statement = statement.where(or_(*(_contains(column, word, postgres)
                                                  for word in group
                                                  for column in (Article.title,
                                                                 Article.text))))
            rows = session.execute(statement.execution_options(yield_per=BATCH))
            for row in rows:
                if rows_read == SCAN_LIMIT:  # (no prefilter: a row follows the stretch)
                    stopped = f"at most {SCAN_LIMIT:,} a search"
                    break
                if rows_read >= MIN_ROWS and time.thread_time() > budget:
                    stopped = f"stopped after {SCAN_SECONDS * 1000:g} ms of work"
                    break
                rows_read += 1
                last = row
                doc = Document(row.title, row.text, row.canonical_url, row.name,
                               tags.get(row.name, ()), row.language)
                for match in matcher.match(doc):
                    moment = row.published_at or row.first_seen_at
                    per_day[moment.date()] += 1
                    per_source[row.name] += 1
                    words = [h.text for h in match.highlights]
                    hits.append(Hit(row.id, row.title, row.name, row.language, moment,
                                    row.canonical_url, highlight(match.snippet, words)))
                if len(hits) >= PAGE_SIZE:
                    stopped = f"a page of {PAGE_SIZE} hits"
                    break
            rows.close()
            if stopped is not None and last is not None:  # how far it got: up to `last`
                further: int | None = last.id
                reached = last.first_seen_at
                scanned = rows_read if not groups else session.scalar(
                    select(func.count()).select_from(Article).where(
                        *window, key >= tuple_(last.first_seen_at, last.id))) or 0
            else:  # the whole stretch
                further = floor[0].id if len(floor) > 1 else None
                reached = floor[0].first_seen_at if floor else None
                scanned = SCAN_LIMIT if floor else rows_read if not groups else \
                    session.scalar(select(func.count()).select_from(Article)
                                   .where(*window)) or 0
                if further is not None:
                    stopped = f"at most {SCAN_LIMIT:,} a search"
    except OperationalError as error:  # interrupted, timed out, or too large for SQL
        session.rollback()
        raise _TooSlow(str(error.orig)) from error
    if reached is None and last is not None:
        reached = last.first_seen_at
    capped = None if further is None else (
        (f"searched {scanned:,} more articles of the window, older than the last page's"
         if cursor is not None else f"searched the newest {scanned:,} articles of the window")
        + f" ({stopped})")
    days = _days(per_day, filters, reached if further is not None else None)
    return Scan(hits, scanned, tuple(groups), capped, days, per_source.most_common(),
                further, cursor is not None, reached)


class _TooSlow(Exception):
    """The database gave up on the search (its deadline, or a statement too large)."""


@contextmanager
def bounded(session: Session, deadline: float) -> Iterator[None]:
    """The statements run inside end by `deadline` (time.monotonic()): the database aborts
    one still running then (OperationalError). SQLite: a progress handler on the session's
    connection, removed afterwards; PostgreSQL: `statement_timeout` for this transaction,
    reset afterwards."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        left = max(int((deadline - time.monotonic()) * 1000), 1)
        connection.execute(text(f"SET LOCAL statement_timeout = {left}"))
        yield  # (after an error the caller rolls back, which resets it)
        connection.execute(text("SET LOCAL statement_timeout TO DEFAULT"))
        return
    raw = connection.connection.driver_connection
    if raw is None or not hasattr(raw, "set_progress_handler"):
        yield
        return
    raw.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)


PROGRESS_STEPS = 10_000  # SQLite virtual machine steps between two looks at the clock
_PLAIN = re.compile(r"[a-z0-9]+(?: [a-z0-9]+)*")
MAX_GROUPS = 3


def required(node: Node) -> list[tuple[str, ...]]:
    """Groups of plain Latin words such that an article the query matches contains at least
    one word of every group (as a substring of its title or text, ASCII case aside): the
    query's SQL prefilter. Words only: a CJK term may be written in another script than the
    query's (folding maps Traditional to Simplified), and source:/lang:/url: are not text.
    Nor a word with "ss": folding writes ß as ss, so `strasse` matches a stored `Straße`,
    which LIKE '%strasse%' would miss. An OR of more than MAX_GROUP_WORDS words is not
    looked up either (a long LIKE chain is slower than the matching it would spare, and
    SQLite refuses a few hundred). (An article spelling a word in full-width letters,
    ligatures or with invisible characters inside is missed here, though a topic would
    match it.)"""
    if isinstance(node, Term):
        if node.field not in (None, "title", "text") or not _PLAIN.fullmatch(node.text):
            return []
        words = [w for w in node.text.split(" ") if "ss" not in w]
        return [(max(words, key=len),)] if words else []  # a phrase: its longest word
    if isinstance(node, Not):
        return []
    if isinstance(node, And | Near):
        children = node.children if isinstance(node, And) else (node.left, node.right)
        groups = [group for child in children for group in required(child)]
        return sorted(set(groups), key=lambda g: (len(g), -min(map(len, g))))[:MAX_GROUPS]
    assert isinstance(node, Or)
    alternatives: set[str] = set()
    for child in node.children:
        groups = required(child)
        if not groups:
            return []  # this branch needs no word: nothing is required
        alternatives.update(min(groups, key=len))
        if len(alternatives) > MAX_GROUP_WORDS:
            return []
    return [tuple(sorted(alternatives))]


def _contains(column: Any, word: str, postgres: bool) -> ColumnElement[bool]:
    """`column` contains `word` (letters and digits only: nothing to escape), ignoring ASCII
    case — SQLite's LIKE does; PostgreSQL's ILIKE."""
    pattern = f"%{word}%"
    return column.ilike(pattern) if postgres else column.like(pattern)


def _days(per_day: Counter[date], filters: ListFilters,
          reached: datetime | None = None) -> list[tuple[str, int]]:
    """Counts for every day from the first hit (or the start of what was searched: the
    window's, or where the search stopped) to today, zeros too, so the chart's gaps are
    days without hits; oldest first."""
    if not per_day:
        return []
    today = datetime.now(timezone.utc).date()
    first = min(per_day)
    start = reached or filters.after
    if start is not None and start.date() < first:
        first = start.date()  # all that was searched
    last = max(today, max(per_day))
    if (last - first).days > 366:  # a long window: only the days with hits
        return [(day.isoformat(), per_day[day]) for day in sorted(per_day)]
    return [((first + timedelta(days=n)).isoformat(), per_day[first + timedelta(days=n)])
            for n in range((last - first).days + 1)]
