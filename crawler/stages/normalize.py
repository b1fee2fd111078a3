"""Pure normalization: the URL an article is known by, and the fingerprint of its text."""
from __future__ import annotations

import hashlib
import re

from basis.folding import fold
from basis.urls import canonical_url, is_web_url, site_of

_WORD = re.compile(r"[^\W_]+")
TITLE_KEY_CHARS = 200  # the column's size


def preferred_url(page_url: str, declared: str | None) -> str:
    """The page's declared canonical (`<link rel=canonical>`/`og:url`) when it points to the
    same site, else the page's own URL; canonicalized either way."""
    own = canonical_url(page_url)
    if not declared:
        return own
    candidate = canonical_url(declared, base=page_url)
    return candidate if is_web_url(candidate) and site_of(candidate) == site_of(own) else own


def comparison_text(text: str) -> str:
    """NFKC, case-folded, Traditional → Simplified, punctuation and whitespace collapsed."""
    return " ".join(_WORD.findall(fold(text)))


def text_fingerprint(text: str) -> str:
    """Hash of the comparison text: equal for exact reprints in any script or width."""
    return hashlib.sha256(comparison_text(text).encode("utf-8")).hexdigest()


def title_key(title: str) -> str | None:
    """A headline's comparison text, clipped: how a news-search item finds the outlet's own
    article (and the reverse) whatever the script, width or punctuation."""
    return comparison_text(title)[:TITLE_KEY_CHARS] or None
