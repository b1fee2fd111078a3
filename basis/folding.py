"""The comparison form of text: what every match, fingerprint and sketch compares. NFKC,
case folding (full-width and half-width alike), invisible format characters dropped
(zero-width space, soft hyphen, BOM, joiners, bidi controls), and Traditional → Simplified
Chinese, by character and by the phrases OpenCC converts without changing their length —
so offsets into the folded text map back to the original (`fold_with_offsets`)."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

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
def _format_chars() -> dict[int, None]:
    """Unicode format characters (category Cf: U+200B zero-width space, U+00AD soft hyphen,
    U+FEFF, joiners, bidi controls…): invisible, so `asy\u00adlum` is `asylum`. Those of
    the BMP only: one astral character in `_shifting`'s class makes it ~5× slower."""
    return {code: None for code in range(0x10000) if unicodedata.category(chr(code)) == "Cf"}


def drop_format(text: str) -> str:
    """`text` without format characters (what `fold` also drops)."""
    return text.translate(_format_chars())


@lru_cache(maxsize=1)
def fold_table() -> dict[int, str | None]:
    """One `str.translate` table for NFKC, case folding (full-width/half-width included),
    format characters dropped and Traditional → Simplified Chinese by character (OpenCC's
    TSCharacters dictionary)."""
    to_simplified = {k: v for k, v in _opencc("TSCharacters.txt").items() if len(k) == 1}
    table: dict[int, str | None] = dict(_format_chars())
    for block in _FOLDED_RANGES:
        for code in block:
            if 0xD800 <= code <= 0xDFFF:
                continue
            char = chr(code)
            folded = unicodedata.normalize("NFKC", char).casefold()
            folded = "".join(to_simplified.get(c, c) for c in folded)
            if folded != char and code not in table:
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
