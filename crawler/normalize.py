"""Pure normalization: canonical URLs and the comparison form of text."""
from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
    "mc_cid", "mc_eid", "spm", "scm", "_ga", "_gl", "ref_src", "ref_url", "cmpid", "ocid",
    "ncid", "sr_share", "share_source", "from_source", "wt.mc_id", "__twitter_impression",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmsr", "hmpl", "hmcu", "hmkw", "hmci")
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    name = name.lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def canonical_url(url: str, base: str | None = None) -> str:
    """The one form of a URL that identifies an article: lower-case scheme and host, no
    default port, no fragment, no tracking parameters, query sorted, encoding normalized."""
    parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    netloc = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not is_tracking_param(k)])
    return canonicalize_url(urlunsplit((scheme, netloc, parts.path or "/", query, "")))


def preferred_url(page_url: str, declared: str | None) -> str:
    """The page's declared canonical (`<link rel=canonical>`/`og:url`) when it points to the
    same site, else the page's own URL; canonicalized either way."""
    own = canonical_url(page_url)
    if not declared:
        return own
    candidate = canonical_url(declared, base=page_url)
    if urlsplit(candidate).scheme in ("http", "https") and _site(candidate) == _site(own):
        return candidate
    return own


def _site(url: str) -> str:
    return (urlsplit(url).hostname or "").removeprefix("www.")


_PUNCT_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _to_simplified():
    from opencc import OpenCC  # loading the dictionaries is slow: once, on first use

    return OpenCC("t2s").convert


def comparison_text(text: str) -> str:
    """NFKC, case-folded, Traditional → Simplified, punctuation and whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if _HAN.search(folded):
        folded = _to_simplified()(folded)
    return _PUNCT_OR_SPACE.sub(" ", folded).strip()


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def text_fingerprint(text: str) -> str:
    """Hash of the comparison text: equal for exact reprints in any script or width."""
    return hashlib.sha256(comparison_text(text).encode("utf-8")).hexdigest()
