"""`/`: what is new. (A first version: the newest stories; see issue #17.)"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawler.daemon.web.filters import PAGE_SIZE, ListFilters, page_of
from storage import repository as repo

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page


def page(page: Page) -> tuple[str, dict[str, Any]]:
    filters = ListFilters.of(page.request.args)
    rows = repo.list_stories(page.db, since=filters.after, limit=filters.offset + PAGE_SIZE + 1)
    stories, more = page_of(rows[filters.offset:], filters)
    return "today.html", {"filters": filters, "stories": stories, "more": more}
