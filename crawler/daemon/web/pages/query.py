"""`/query?q=…`: the query workbench — `topics test` in the browser. A draft query (aliases
expanded) runs over the stored originals of a window, newest first, with its hits
highlighted and counted per day and source; a query that does not parse shows where.

Bounded: at most SCAN_LIMIT articles (the newest of the window) are read, in batches of
only the columns matching needs, for at most SCAN_SECONDS; the page says when it stopped
early. The matcher's own keyword presearch skips most articles at a set lookup."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy import select

from alerts.channels.render import highlight
from alerts.match import Document, Matcher
from alerts.query import QuerySyntaxError, parse_query, query_warnings
from crawler.daemon.web.filters import PAGE_SIZE, ListFilters
from storage.models import Article, Source

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page

DEFAULT_SINCE = "30d"
SCAN_LIMIT = 5_000  # newest articles of the window read at most
SCAN_SECONDS = 2.0  # and for at most this long
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
    capped: str | None  # why it stopped before the window's end, if it did
    per_day: list[tuple[str, int]]
    per_source: list[tuple[str, int]]


def page(page: Page) -> tuple[str, dict[str, Any]]:
    filters = ListFilters.of(page.request.args)
    if filters.since is None:
        filters = replace(filters, since=DEFAULT_SINCE)
    text = (page.request.args.get("q") or "")
    draft = " ".join(text.splitlines())  # one line: the caret's column is the query's
    context: dict[str, Any] = {"filters": filters, "q": text, "problem": None,
                               "warnings": [], "scan": None, "hits": [], "more": False,
                               "example": _example(page), "pages": {}, "by_source": {},
                               "scan_limit": SCAN_LIMIT}
    if not draft.strip():
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
    scan = search(page, query, filters, tags)
    start = filters.offset
    context.update(scan=scan, hits=scan.hits[start:start + PAGE_SIZE],
                   more=len(scan.hits) > start + PAGE_SIZE,
                   pages={"prev": _address(filters, text, filters.page - 1),
                          "next": _address(filters, text, filters.page + 1)},
                   by_source={name: _address(replace(filters, source=name), text, 1)
                              for name, _ in scan.per_source})
    return "query.html", context


def _example(page: Page) -> str:
    alias = next(iter(page.config.aliases), None)
    return EXAMPLE.replace("@alias AND ", f"@{alias} AND " if alias else "")


def _address(filters: ListFilters, q: str, number: int) -> str:
    address = filters.query(page=number)
    return address + ("&" if address != "?" else "") + urlencode({"q": q})


def search(page: Page, query: Any, filters: ListFilters,
           tags: dict[str, tuple[str, ...]]) -> Scan:
    """The window's originals that match, newest first (by first seen), with counts."""
    matcher = Matcher({"draft": query})
    statement = (select(Article.id, Article.title, Article.text, Article.canonical_url,
                        Article.language, Article.published_at, Article.first_seen_at,
                        Source.name)
                 .join(Source, Source.id == Article.source_id)
                 .where(Article.duplicate_of.is_(None))
                 .order_by(Article.first_seen_at.desc(), Article.id.desc())
                 .limit(SCAN_LIMIT + 1))
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
    deadline = time.monotonic() + SCAN_SECONDS
    for row in page.db.execute(statement.execution_options(yield_per=BATCH)):
        if scanned == SCAN_LIMIT:
            capped = f"searched the newest {SCAN_LIMIT:,} articles in the window"
            break
        if scanned % 100 == 0 and time.monotonic() > deadline:
            capped = (f"stopped after {SCAN_SECONDS:g} s: searched the newest {scanned:,} "
                      "articles in the window")
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
    return Scan(hits, scanned, capped, _days(per_day, filters), per_source.most_common())


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
