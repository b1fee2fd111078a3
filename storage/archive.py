"""The archive: the exact bytes each stored article was read from, kept as evidence of what
a source said — compressed, with the response's headers, fetch time and SHA-256."""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.models import Article, Capture


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
    """The capture of these bytes: stored once, whoever reads the same body again (a feed
    polled for many articles) shares it."""
    digest = hashlib.sha256(new.body).hexdigest()
    found = session.scalar(select(Capture).where(Capture.sha256 == digest))
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
    """Drop the captures fetched before `before` (archive.retention); their articles stay.
    → how many were dropped"""
    old = select(Capture.id).where(Capture.fetched_at < before)
    session.execute(update(Article).where(Article.capture_id.in_(old)).values(capture_id=None))
    return session.execute(delete(Capture).where(Capture.fetched_at < before)).rowcount or 0
