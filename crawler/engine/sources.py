"""The configured sources and their crawl state: kept in the database, handed to the spider
as `SourceSpec`s, and the persistent seen-filter. No Scrapy here (`sources list` needs
it without crawling)."""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session, sessionmaker

from basis.clock import utcnow
from basis.urls import canonical_url
from crawler.config import Config, Source
from spiders.items import Recheck, SourceSpec
from storage import repository as repo
from storage.models import Source as SourceRow

RECHECK_LEASE = timedelta(minutes=30)  # a claimed re-check not answered by then: due again


def sync_config(config: Config, db: sessionmaker[Session]) -> None:
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef(s.name, s.kind, s.url, s.official)
                                    for s in config.sources])


def source_specs(sources: Sequence[Source], db: sessionmaker[Session],
                 backfill: timedelta) -> list[SourceSpec]:
    with db() as session:
        state = {s.name: s for s in repo.list_sources(session, [s.name for s in sources])}
    return [spec_for(s, state[s.name], backfill) for s in sources]


def spec_for(source: Source, state: SourceRow | Row[Any], backfill: timedelta) -> SourceSpec:
    """What the spider needs of a source; on its first poll, entries dated before the
    backfill window are not followed."""
    return SourceSpec(source.name, source.kind, source.url, source.follow, source.language,
                      state.etag, state.last_modified, source.links, source.next_page,
                      source.max_pages, not_before=state.not_before,
                      verify_tls=source.verify_tls,
                      since=utcnow() - backfill if state.last_success_at is None else None)


def seen_in(db: sessionmaker[Session]) -> Callable[[str], bool]:
    """The persistent seen-filter: whether a URL is stored (or was seen) already."""

    def seen(url: str) -> bool:
        with db() as session:
            return repo.is_known_url(session, canonical_url(url))

    return seen


def due_rechecks(db: sessionmaker[Session], names: Collection[str]) -> list[Recheck]:
    """The stored statements of these sources due to be fetched again now, claimed for
    `RECHECK_LEASE` (so that a check still under way is not started twice)."""
    with db.begin() as session:
        return [Recheck(d.source, d.article_id, d.url, d.etag, d.last_modified)
                for d in repo.claim_checks(session, names, utcnow(), RECHECK_LEASE)]
