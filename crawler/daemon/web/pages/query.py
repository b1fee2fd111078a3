"""`/query?q=…`: the query workbench — `topics test` in the browser. A draft query (aliases
expanded) runs over the stored originals of a window, newest first, with its hits
highlighted and counted per day and source; a query that does not parse shows where.

Bounded: a draft of at most MAX_QUERY characters; a keyword prefilter in SQL first
(`required`: the plain Latin words the query cannot match without, looked up
case-insensitively in the stored title and text, so most articles of the window are never
read into Python; none for a group of more than MAX_GROUP_WORDS alternatives); then at most
SCAN_LIMIT articles (the newest of the window) are matched, in batches of only the columns
matching needs. SCAN_SECONDS bound the whole search, the SQL included: counted from before
the statement runs, and enforced in the database too (SQLite: a progress handler that
interrupts the statement; PostgreSQL: `SET LOCAL statement_timeout`), so a prefilter that
scans the whole window cannot hold the page. The page says when it stopped early, or, when
the database gave up before the first row, that the query is too large or too slow."""
from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, or_, select, text
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
SCAN_LIMIT = 2_000  # newest articles of the window matched at most
SCAN_SECONDS = 0.75  # and for at most this long, the SQL included
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
    scanned: int
    prefilter: tuple[tuple[str, ...], ...]  # the words looked up in SQL (all of one group)
    capped: str | None  # why it stopped before the window's end, if it did
    per_day: list[tuple[str, int]]
    per_source: list[tuple[str, int]]


def page(page: Page) -> tuple[str, dict[str, Any]]:
    filters = ListFilters.of(page.request.args)
    if filters.since is None:
        filters = replace(filters, since=DEFAULT_SINCE)
    typed = (page.request.args.get("q") or "")
    draft = " ".join(typed.splitlines())  # one line: the caret's column is the query's
    context: dict[str, Any] = {"filters": filters, "q": typed, "problem": None,
                               "warnings": [], "scan": None, "hits": [], "more": False,
                               "example": _example(page), "links": Links(filters, {"q": typed}),
                               "scan_limit": SCAN_LIMIT}
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
    try:
        scan = search(page, query, filters, tags)
    except _TooSlow:
        context["problem"] = Problem(TOO_SLOW, "")
        return "query.html", context
    start = filters.offset
    context.update(scan=scan, hits=scan.hits[start:start + PAGE_SIZE],
                   more=len(scan.hits) > start + PAGE_SIZE)
    return "query.html", context


def _example(page: Page) -> str:
    alias = next(iter(page.config.aliases), None)
    return EXAMPLE.replace("@alias AND ", f"@{alias} AND " if alias else "")


def search(page: Page, query: Any, filters: ListFilters,
           tags: dict[str, tuple[str, ...]]) -> Scan:
    """The window's originals that match, newest first (by first seen), with counts."""
    matcher = Matcher({"draft": query})
    statement = (select(Article.id, Article.title, Article.text, Article.canonical_url,
                        Article.language, Article.published_at, Article.first_seen_at,
                        Source.name)
                 .join(Source, Source.id == Article.source_id)
                 # (coalesce: the window's index on first_seen_at, not the one on
                 # duplicate_of, which nearly every article shares)
                 .where(func.coalesce(Article.duplicate_of, 0) == 0)
                 .order_by(Article.first_seen_at.desc(), Article.id.desc())
                 .limit(SCAN_LIMIT + 1))
    groups = required(query)
    postgres = page.db.get_bind().dialect.name == "postgresql"
    for group in groups:
        statement = statement.where(or_(*(_contains(column, word, postgres)
                                          for word in group
                                          for column in (Article.title, Article.text))))
    if filters.after is not None:
        statement = statement.where(Article.first_seen_at >= filters.after)
    if filters.source:
        statement = statement.where(Source.name == filters.source)
    if filters.language:
        statement = statement.where(Article.language == filters.language)
    hits: list[Hit] = []
    per_day: Counter[date] = Counter()
    per_source: Counter[str] = Counter()
    scanned, capped = 0, None
    deadline = time.monotonic() + SCAN_SECONDS  # the SQL's time counts too
    try:
        with bounded(page.db, deadline):
            rows = page.db.execute(statement.execution_options(yield_per=BATCH))
            for row in rows:
                if scanned == SCAN_LIMIT:
                    capped = f"searched the newest {SCAN_LIMIT:,} articles in the window"
                    break
                if scanned % 100 == 0 and time.monotonic() > deadline:
                    capped = (f"stopped after {SCAN_SECONDS:g} s: searched the newest "
                              f"{scanned:,} articles in the window")
                    break
                scanned += 1
                doc = Document(row.title, row.text, row.canonical_url, row.name,
                               tags.get(row.name, ()), row.language)
                for match in matcher.match(doc):
                    moment = row.published_at or row.first_seen_at
                    per_day[moment.date()] += 1
                    per_source[row.name] += 1
                    words = [h.text for h in match.highlights]
                    hits.append(Hit(row.id, row.title, row.name, row.language, moment,
                                    row.canonical_url, highlight(match.snippet, words)))
            rows.close()
    except OperationalError as error:  # interrupted, timed out, or too large for SQL
        page.db.rollback()
        if not scanned or time.monotonic() <= deadline:
            raise _TooSlow(str(error.orig)) from error
        capped = (f"stopped after {SCAN_SECONDS:g} s: searched the newest {scanned:,} "
                  "articles in the window")
    return Scan(hits, scanned, tuple(groups), capped, _days(per_day, filters),
                per_source.most_common())


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


def _days(per_day: Counter[date], filters: ListFilters) -> list[tuple[str, int]]:
    """Counts for every day from the first hit (or the window's start) to today, zeros too,
    so the chart's gaps are days without hits; oldest first."""
    if not per_day:
        return []
    today = datetime.now(timezone.utc).date()
    first = min(per_day)
    if filters.after is not None and filters.after.date() < first:
        first = filters.after.date()  # the whole window
    last = max(today, max(per_day))
    if (last - first).days > 366:  # a long window: only the days with hits
        return [(day.isoformat(), per_day[day]) for day in sorted(per_day)]
    return [((first + timedelta(days=n)).isoformat(), per_day[first + timedelta(days=n)])
            for n in range((last - first).days + 1)]
