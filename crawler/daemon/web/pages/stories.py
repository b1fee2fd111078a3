"""`/stories/ID`: a story's first report (its lead: the official statement where there is
one) and every follow-up in time order, each with its outlet, language, time, the evidence
that joined it, its copies folded under it and where it was seen; the topics it matched;
and its triage (`POST /stories/ID/triage`)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from basis.folding import fold_table
from crawler.daemon.web.filters import PAGE_SIZE, ListFilters, page_of
from crawler.daemon.web.pages.topics import Links
from storage import repository as repo
from storage.models import Article, Sighting, Source, Story, StoryLink, TopicMatch

if TYPE_CHECKING:
    from crawler.daemon.web.app import Page

EVIDENCE_KINDS = {"n": "figure", "d": "date", "c": "concept", "p": "name", "q": "quoted"}
COPY_KINDS = ("Traditional", "syndicated", "same outlet")
SCRIPT_SAMPLE = 2000  # characters of a text looked at for its script


@dataclass(frozen=True)
class Copy:
    article: Article
    outlet: str
    kind: str  # one of COPY_KINDS


@dataclass(frozen=True)
class Report:
    article: Article
    outlet: str
    moment: datetime  # published, else first seen
    lead: bool
    link: StoryLink | None  # why it joined the story (none: it began it, or the lead)
    evidence: list[tuple[str, str]]  # (kind, value)
    copies: list[Copy]

    @property
    def copies_summary(self) -> str:
        """`+3 copies: 2 Traditional, 1 syndicated`."""
        counts = Counter(copy.kind for copy in self.copies)
        parts = [f"{counts[kind]} {kind}" for kind in COPY_KINDS if counts[kind]]
        total = len(self.copies)
        return f"+{total} cop{'y' if total == 1 else 'ies'}: {', '.join(parts)}"


@lru_cache(maxsize=1)
def _traditional() -> frozenset[str]:
    """Han characters that fold to another Han character: Traditional forms."""
    return frozenset(chr(code) for code, to in fold_table().items()
                     if 0x3400 <= code <= 0x9FFF and isinstance(to, str) and len(to) == 1
                     and "\u3400" <= to <= "\u9fff" and to != chr(code))


def is_traditional(text: str) -> bool:
    """Chinese written in Traditional characters: one Han character in ten or more is a
    Traditional form (a Simplified text has a few shared ones at most)."""
    han = [c for c in text[:SCRIPT_SAMPLE] if "\u3400" <= c <= "\u9fff"]
    if len(han) < 4:
        return False
    traditional = _traditional()
    return sum(c in traditional for c in han) * 10 >= len(han)


def outlet_of(article: Article) -> str:
    return article.outlet or article.source.name


def copy_kind(copy: Article, report: Article) -> str:
    """Traditional: a copy in Traditional script of a report that is not; syndicated: a
    copy at another outlet; else a copy at the same outlet."""
    def sample(a: Article) -> str:
        return f"{a.title}\n{a.text[:SCRIPT_SAMPLE]}"
    if is_traditional(sample(copy)) and not is_traditional(sample(report)):
        return "Traditional"
    return "syndicated" if outlet_of(copy) != outlet_of(report) else "same outlet"


def evidence_of(link: StoryLink | None) -> list[tuple[str, str]]:
    if link is None:
        return []
    return [(EVIDENCE_KINDS.get(kind, kind), value) if sep else ("", kind)
            for kind, sep, value in (str(e).partition(":") for e in link.evidence)]


def _story_or_404(page: Page) -> Story:
    story = page.db.get(Story, page.arg("id"))
    if story is None:
        raise NotFound(f"no story {page.arg('id')}: it may have been merged or never existed")
    return story


def page(page: Page) -> tuple[str, dict[str, Any]]:
    story = _story_or_404(page)
    filters = ListFilters.of(page.request.args)
    db, story_id = page.db, story.id
    lead = repo.story_leads(db, [story_id]).get(story_id)
    moment = func.coalesce(Article.published_at, Article.first_seen_at)
    details = (selectinload(Article.source),
               selectinload(Article.sightings).selectinload(Sighting.source))
    query = (select(Article).where(Article.story_id == story_id, Article.duplicate_of.is_(None))
             .options(*details).order_by(moment, Article.id))
    if lead is not None:
        query = query.where(Article.id != lead.article_id)
    if filters.language:
        query = query.where(Article.language == filters.language.lower())
    if filters.source:
        query = query.where(Article.source.has(Source.name == filters.source))
    if filters.after is not None:
        query = query.where(Article.first_seen_at >= filters.after)
    follow_ups, more = page_of(list(db.scalars(query.limit(PAGE_SIZE + 1)
                                               .offset(filters.offset))), filters)
    head = [] if lead is None or filters.page > 1 else \
        [db.scalars(select(Article).where(Article.id == lead.article_id).options(*details)).one()]
    articles = head + follow_ups
    ids = [a.id for a in articles]
    copies: dict[int, list[Article]] = {}
    for copy in db.scalars(select(Article).where(Article.duplicate_of.in_(ids))
                           .options(selectinload(Article.source)).order_by(Article.id)):
        copies.setdefault(copy.duplicate_of or 0, []).append(copy)
    links = repo.story_links(db, ids)
    reports = [Report(a, outlet_of(a), a.published_at or a.first_seen_at,
                      lead is not None and a.id == lead.article_id, links.get(a.id),
                      evidence_of(links.get(a.id)),
                      [Copy(c, outlet_of(c), copy_kind(c, a)) for c in copies.get(a.id, [])])
               for a in articles]
    latest = db.scalar(select(func.max(Article.id))
                       .where(Article.story_id == story_id, Article.duplicate_of.is_(None)))
    topics = list(db.scalars(select(TopicMatch.topic).distinct()
                             .join(Article, Article.id == TopicMatch.article_id)
                             .where(Article.story_id == story_id).order_by(TopicMatch.topic)))
    return "story.html", {
        "story": story, "lead": lead, "reports": reports, "filters": filters, "more": more,
        "triage": repo.effective_triage(story.triage, story.triage_watermark, latest),
        "seen": latest,
        "topics": topics, "configured": {t.name for t in page.config.topics},
        "config": page.config, "links": Links(filters, {})}


def triage(page: Page) -> Response:
    """Mark the story reviewed, dismissed or unreviewed; back to the story (303). A review
    covers the reports up to the newest the page showed (`seen`): one stored while the
    analyst read it still reopens the story."""
    state = page.request.form.get("state")
    if state not in repo.TRIAGE_STATES:
        raise BadRequest(f"state must be one of {', '.join(repo.TRIAGE_STATES)}")
    seen = page.request.form.get("seen", "")  # the newest report the page showed
    if not repo.set_triage(page.db, page.arg("id"), state, datetime.now(timezone.utc),
                           int(seen) if seen.isdigit() and len(seen) < 19 else None):
        raise NotFound(f"no story {page.arg('id')}")
    page.db.commit()
    return redirect(f"/stories/{page.arg('id')}", 303)
