"""`/alerts`: the outbox — every alert with its status, attempts, last error (secrets
masked) and next attempt or sending time; filtered by status, topic and window, newest
first, paged in SQL."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from crawler.daemon.web.filters import PAGE_SIZE, ListFilters, page_of
from crawler.daemon.web.pages.topics import Links
from storage.models import Alert, AlertArticle, Article, Story

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page

STATUSES = ("pending", "sent", "failed")


def page(page: Page) -> tuple[str, dict[str, Any]]:
    filters = ListFilters.of(page.request.args)
    status = (page.request.args.get("status") or "").strip() or None
    if status is not None and status not in STATUSES:
        filters = replace(filters, problems=(*filters.problems, f"status: {status!r} is not "
                                             f"one of {', '.join(STATUSES)}"))
        status = None
    query = select(Alert).order_by(Alert.id.desc())
    if status:
        query = query.where(Alert.status == status)
    if filters.topic:
        query = query.where(Alert.topic == filters.topic)
    if filters.after is not None:
        query = query.where(Alert.created_at >= filters.after)
    query = query.options(
        selectinload(Alert.article).load_only(Article.id, Article.title, Article.canonical_url,
                                              Article.language),
        selectinload(Alert.story).load_only(Story.id, Story.headline))
    rows = page.db.scalars(query.offset(filters.offset).limit(PAGE_SIZE + 1)).all()
    alerts, more = page_of(list(rows), filters)
    batches = dict(page.db.execute(
        select(AlertArticle.alert_id, func.count()).where(
            AlertArticle.alert_id.in_([a.id for a in alerts]))
        .group_by(AlertArticle.alert_id)).all()) if alerts else {}
    redact = page.config.redactor()
    errors = {a.id: redact(a.last_error) for a in alerts if a.last_error}
    titles = {a.id: redact(str((a.details or {}).get("title", ""))) for a in alerts
              if a.article is None}
    topics = [t.name for t in page.config.topics]
    return "alerts.html", {"filters": filters, "alerts": alerts, "more": more,
                           "status": status, "statuses": STATUSES, "errors": errors,
                           "titles": titles, "batches": batches, "topics": topics,
                           "links": Links(filters, {"status": status})}
