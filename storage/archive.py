"""The archive: the exact bytes each stored article was read from, kept as evidence of what
a source said — compressed, with the response's headers, fetch time and SHA-256."""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, union, update
from sqlalchemy.orm import Session

from storage.models import Article, ArticleVersion, Capture


@dataclass(frozen=True)
class NewCapture:
    """One response as it was read: the body after HTTP decoding (chunks, gzip), before
    any charset decoding."""

    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fetched_at: datetime


def pack(body: bytes) -> bytes:
    return zlib.compress(body, 6)


def unpack(capture: Capture) -> bytes:
    return zlib.decompress(capture.body)


def keep(session: Session, new: NewCapture) -> Capture:
    """The capture of these bytes at this URL: stored once, whoever reads the same body there
    again (a feed polled for many articles) shares it; the same bytes at another URL (a
    soft 404, a challenge page) are that URL's own evidence."""
    digest = hashlib.sha256(new.body).hexdigest()
    found = session.scalar(select(Capture).where(Capture.sha256 == digest,
                                                 Capture.url == new.url))
    if found is None:
        found = Capture(sha256=digest, url=new.url, fetched_at=new.fetched_at,
                        status=new.status, headers=[list(h) for h in new.headers],
                        size=len(new.body), body=pack(new.body))
        session.add(found)
    return found


def captures_since(session: Session, since: datetime | None) -> Iterator[Capture]:
    """Captures fetched since `since` (all without), oldest first, streamed."""
    query = select(Capture).order_by(Capture.fetched_at, Capture.id)
    if since is not None:
        query = query.where(Capture.fetched_at >= since)
    yield from session.scalars(query.execution_options(yield_per=100))


def forget(session: Session, before: datetime) -> int:
    """Drop the captures fetched before `before` (archive.retention) that no article first
    seen since still points to (a feed body read again shares its first capture); their
    articles stay. → how many were dropped"""
    recent = union(select(Article.capture_id).where(Article.first_seen_at >= before,
                                                    Article.capture_id.is_not(None)),
                   select(ArticleVersion.capture_id).where(ArticleVersion.fetched_at >= before,
                                                           ArticleVersion.capture_id.is_not(None)))
    old = select(Capture.id).where(Capture.fetched_at < before, Capture.id.not_in(recent))
    for table in (Article, ArticleVersion):
        session.execute(update(table).where(table.capture_id.in_(old)).values(capture_id=None))
    return session.execute(delete(Capture).where(Capture.id.in_(old))).rowcount or 0
