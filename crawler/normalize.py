"""Pure normalization: canonical URLs and the comparison form of text."""
from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
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


_WORD = re.compile(r"[^\W_]+")
_HAN = re.compile(r"[\u3400-\u9fff]")
# marks that NFKC composes with the character before them (accents, kana voicing, jamo)
_COMBINING_MARKS = "\u0300-\u036f\u1160-\u11ff\u3099\u309a\uff9e\uff9f"
_COMBINING = re.compile(f"[{_COMBINING_MARKS}]")
_FOLDED_RANGES = (range(0x10000), range(0x1D400, 0x1D800))  # BMP and math alphanumerics


def _opencc(name: str) -> dict[str, str]:
    """An OpenCC dictionary (traditional → first simplified candidate)."""
    import opencc  # only for its data files

    path = Path(opencc.__file__).with_name("dictionary") / name
    pairs = (line.partition("\t") for line in path.read_text(encoding="utf-8").splitlines())
    return {key: value.split()[0] for key, _, value in pairs if key and value.strip()}


@lru_cache(maxsize=1)
def fold_table() -> dict[int, str]:
    """One `str.translate` table for NFKC, case folding (full-width/half-width included)
    and Traditional → Simplified Chinese by character (OpenCC's TSCharacters dictionary)."""
    to_simplified = {k: v for k, v in _opencc("TSCharacters.txt").items() if len(k) == 1}
    table = {}
    for block in _FOLDED_RANGES:
        for code in block:
            if 0xD800 <= code <= 0xDFFF:
                continue
            char = chr(code)
            folded = unicodedata.normalize("NFKC", char).casefold()
            folded = "".join(to_simplified.get(c, c) for c in folded)
            if folded != char:
                table[code] = folded
    return table


@lru_cache(maxsize=1)
def _phrases() -> tuple[re.Pattern[str], dict[str, str]]:
    """OpenCC's phrase-level conversions that keep their length (藉助 → 借助), applied
    after the character table, so offsets stay valid."""
    table = fold_table()
    pairs = {k.translate(table): v for k, v in _opencc("TSPhrases.txt").items()
             if len(k) == len(v)}
    pairs = {k: v for k, v in pairs.items() if k != v}
    return re.compile("|".join(map(re.escape, sorted(pairs, key=len, reverse=True)))), pairs


@lru_cache(maxsize=1)
def _foldable() -> re.Pattern[str]:
    """Runs of characters the fold table changes (translating only those is ~5× faster
    than translating all of a text that is mostly plain letters or Han characters)."""
    codes = sorted(code for code in fold_table() if code < 0x10000)
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return re.compile("[" + "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "")
                                    for a, b in ranges) + "\U0001d400-\U0001d7ff]+")


@lru_cache(maxsize=16)  # the pipeline folds one body for its fingerprint, sketch and match
def fold(text: str) -> str:
    """Text in the form every comparison uses; usually the same length as the input."""
    if text.isascii():
        return text.lower()  # what the table does to ASCII, many times faster
    if _COMBINING.search(text):
        text = unicodedata.normalize("NFKC", text)  # compose what the table sees apart
    table = fold_table()
    folded = _foldable().sub(lambda run: run.group().translate(table), text)
    if not _HAN.search(folded):
        return folded
    pattern, pairs = _phrases()
    return pattern.sub(lambda m: pairs[m.group()], folded)


@lru_cache(maxsize=1)
def _shifting() -> re.Pattern[str]:
    """Characters that shift folded offsets: combining marks (NFKC composes them) and
    characters the fold table turns into more or fewer than one character."""
    codes = [code for code, to in fold_table().items()
             if to is None or isinstance(to, str) and len(to) != 1]
    return re.compile(f"[{_COMBINING_MARKS}" + "".join(re.escape(chr(code)) for code in codes)
                      + "]")


def fold_with_offsets(text: str) -> tuple[str, list[int] | None]:
    """`fold(text)`, and for each folded character the index of its source character —
    or None when folding kept every character in place (the common case)."""
    folded = fold(text)
    if not _shifting().search(text):
        return folded, None  # (a length check is not enough: ß → ss and é + ´ → é even out)
    offsets = [start for start, cluster in _clusters(text) for _ in fold(cluster)]
    return folded, offsets


def _clusters(text: str) -> list[tuple[int, str]]:
    """A character with the combining marks after it, each with its start index."""
    clusters: list[tuple[int, str]] = []
    for i, char in enumerate(text):
        if clusters and _COMBINING.match(char):
            clusters[-1] = (clusters[-1][0], clusters[-1][1] + char)
        else:
            clusters.append((i, char))
    return clusters


def comparison_text(text: str) -> str:
    """NFKC, case-folded, Traditional → Simplified, punctuation and whitespace collapsed."""
    return " ".join(_WORD.findall(fold(text)))


def text_fingerprint(text: str) -> str:
    """Hash of the comparison text: equal for exact reprints in any script or width."""
    return hashlib.sha256(comparison_text(text).encode("utf-8")).hexdigest()
