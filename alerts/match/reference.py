"""What a topic query means: the reference evaluation every optimisation must agree with.

Semantics: text and terms are folded alike (NFKC, case, width, Traditional → Simplified);
Latin terms match whole words (`spy` is not `spyware`, `spy*` is), CJK terms match as
substrings; NEAR/n counts words, where each CJK character is a word; SENTENCE splits on
. ! ? 。！？；. Every match carries highlights: spans of the *original* text.

`evaluate` is the naive evaluator, `match_one` its result for one query and one document,
down to every highlight and snippet; the presearcher (`alerts.match.runtime`) must always
give the same. The document types, term finding and the choice of evidence are shared.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple, TypeVar

from alerts.query import And, Near, Node, Not, Or, Term
from basis.folding import fold, fold_with_offsets

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{CJK}]")
LATIN = f"[^\\W_{CJK}]"  # a word character that is not CJK
_TOKEN = re.compile(f"[{CJK}]|{LATIN}+")
SENTENCE_END = re.compile(r"[。！？；!?;]|\.(?=\s|$)")
SCANNED_FIELDS = ("title", "text", "url")
SNIPPET_RADIUS = 80
MAX_HIGHLIGHTS = 20
_S = TypeVar("_S")

Span = tuple[str, int, int]  # field, start, end in folded text


@dataclass(frozen=True)
class Document:
    """What a query is matched against."""

    title: str
    text: str
    url: str = ""
    source: str = ""
    tags: tuple[str, ...] = ()
    language: str | None = None


class Highlight(NamedTuple):  # a tuple, quick to make (~140 an article in bench/matching)
    field: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Match:
    topic: str
    highlights: tuple[Highlight, ...]
    snippet: str

    def as_json(self) -> dict[str, object]:
        return {"snippet": self.snippet,
                "spans": [[h.field, h.start, h.end, h.text] for h in self.highlights]}


# ---------------------------------------------------------------- a document, folded

@dataclass
class FoldedField:
    original: str
    folded: str
    offsets: list[int] | None

    @cached_property
    def token_starts(self) -> list[int]:
        return [m.start() for m in _TOKEN.finditer(self.folded)]

    @cached_property
    def sentence_ends(self) -> list[int]:
        return [m.end() for m in SENTENCE_END.finditer(self.folded)]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        if self.offsets is None:
            return start, end
        return self.offsets[start], self.offsets[end - 1] + 1


class Prepared:
    """A document folded once, with the occurrences of each term cached."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.fields = {name: FoldedField(getattr(doc, name), *fold_with_offsets(getattr(doc, name)))
                       for name in SCANNED_FIELDS}
        self.metadata = {"source": {fold(doc.source), *map(fold, doc.tags)},
                         "lang": {fold(doc.language or "")}}
        self.cache: dict[Term, list[Span]] = {}
        self.present_keys: set[str] | None = None  # keys known to occur (None: all may)

    @cached_property
    def scanned(self) -> str:
        return "\n".join(self.fields[name].folded for name in SCANNED_FIELDS)


# ---------------------------------------------------------------- terms

def is_cjk(text: str) -> bool:
    return bool(_CJK_CHAR.search(text))


def term_pattern(term: Term) -> re.Pattern[str]:
    """Whole words for Latin, substrings for CJK, any non-word gap inside phrases."""
    words = term.text.split(" ") if term.phrase else [term.text]
    pattern = ""
    for i, word in enumerate(words):
        if i:
            pattern += r"[\W_]*" if is_cjk(words[i - 1][-1] + word[0]) else r"[\W_]+"
        pattern += re.escape(word)
    first, last = words[0], words[-1]
    if not is_cjk(first[0]):
        pattern = f"(?<!{LATIN})" + pattern
    if term.prefix:
        pattern += f"{LATIN}*"
    elif not is_cjk(last[-1]):
        pattern += f"(?!{LATIN})"
    return re.compile(pattern)


def presearch_key(term: Term) -> str | None:
    """The substring that must occur for `term` to match; None for metadata fields."""
    if term.field in ("source", "lang"):
        return None
    return max(term.text.split(" "), key=len) if term.phrase else term.text


Finder = Callable[..., list[tuple[int, int]]]  # (text, first=False): spans, or the first
_FINDERS: dict[Term, Finder] = {}


def is_latin(char: str) -> bool:
    """Whether `char` is a word character that is not CJK (what `LATIN` matches)."""
    return char.isalnum() and (char < "\u3040" or not _CJK_CHAR.match(char))


def finder(term: Term) -> Finder:
    """`text -> [(start, end)]`, exactly the spans of `term_pattern(term).finditer(text)`,
    but without compiling the pattern's large character classes (milliseconds per term):
    the literal (or the phrase without its word-boundary assertions) is searched, and
    the boundaries are checked on the characters around each hit. Phrases whose gaps
    could be matched in more than one way fall back to the pattern itself."""
    found = _FINDERS.get(term)
    if found is None:
        found = _FINDERS[term] = _make_finder(term)
    return found


def _make_finder(term: Term) -> Finder:
    words = term.text.split(" ") if term.phrase else [term.text]
    ambiguous = any(not a[-1:].isalnum() or not b[:1].isalnum()
                    for a, b in zip(words, words[1:], strict=False))
    if not all(words) or ambiguous:
        pattern = term_pattern(term)  # raises where term_pattern raises

        def find_pattern(text: str, first: bool = False) -> list[tuple[int, int]]:
            if first:
                hit = pattern.search(text)
                return [hit.span()] if hit else []
            return [m.span() for m in pattern.finditer(text)]

        return find_pattern
    behind = not is_cjk(words[0][0])
    prefix = term.prefix
    ahead = not prefix and not is_cjk(words[-1][-1])
    word, size = words[0], len(words[0])
    search = None
    if len(words) > 1:  # unique per start: each gap is the whole run of non-word characters
        core = re.escape(words[0])
        for previous, following in zip(words, words[1:], strict=False):
            core += r"[\W_]*" if is_cjk(previous[-1] + following[0]) else r"[\W_]+"
            core += re.escape(following)
        search = re.compile(core).search

    def find(text: str, first: bool = False) -> list[tuple[int, int]]:
        out = []
        pos, length = 0, len(text)
        while True:
            if search is None:
                start = text.find(word, pos)
                if start < 0:
                    return out
                end = start + size
            else:
                hit = search(text, pos)
                if hit is None:
                    return out
                start, end = hit.span()
            if behind and start and is_latin(text[start - 1]):
                pos = start + 1
                continue
            if prefix:
                while end < length and is_latin(text[end]):
                    end += 1
            elif ahead and end < length and is_latin(text[end]):
                pos = start + 1
                continue
            out.append((start, end))
            if first:
                return out
            pos = end

    return find


def occurrences(term: Term, prepared: Prepared) -> list[Span]:
    cached = prepared.cache.get(term)
    if cached is not None:
        return cached
    spans: list[Span] = []
    if term.field in ("source", "lang"):
        if term.text in prepared.metadata[term.field]:
            spans = [(term.field, 0, 0)]
    elif prepared.present_keys is None or presearch_key(term) in prepared.present_keys:
        find = finder(term)
        for name in (term.field,) if term.field else ("title", "text"):
            spans += [(name, start, end) for start, end in find(prepared.fields[name].folded)]
    prepared.cache[term] = spans
    return spans


# ---------------------------------------------------------------- evaluation

def evaluate(node: Node, prepared: Prepared) -> list[Span] | None:
    """The spans that satisfy `node`, or None when it does not match."""
    if isinstance(node, Term):
        return occurrences(node, prepared) or None
    if isinstance(node, Not):
        return None if evaluate(node.child, prepared) is not None else []
    if isinstance(node, And):
        spans: list[Span] = []
        for child in node.children:
            found = evaluate(child, prepared)
            if found is None:
                return None
            spans += found
        return spans
    if isinstance(node, Or):
        results = [evaluate(child, prepared) for child in node.children]
        hits = [r for r in results if r is not None]
        return [s for r in hits for s in r] if hits else None
    return _near(node, prepared)


def _near(node: Near, prepared: Prepared) -> list[Span] | None:
    left, right = evaluate(node.left, prepared), evaluate(node.right, prepared)
    if not left or not right:
        return None
    close = [span for a in left for b in right if a[0] == b[0] and a[0] in prepared.fields
             and are_close(prepared.fields[a[0]], a, b, node.distance) for span in (a, b)]
    return list(dict.fromkeys(close)) or None  # each once: a NEAR chain's spans stay few


def are_close(folded: FoldedField, a: Span, b: Span, distance: int | None) -> bool:
    """Whether spans `a` and `b` of one field are at most `distance` words apart (None:
    in one sentence)."""
    if distance is None:
        ends = folded.sentence_ends
        return bisect_right(ends, a[1]) == bisect_right(ends, b[1])
    first, second = (a, b) if a[1] <= b[1] else (b, a)
    if second[1] < first[2]:  # overlapping spans are adjacent
        return True
    starts = folded.token_starts
    between = bisect_right(starts, second[1] - 1) - bisect_right(starts, first[2] - 1)
    return between <= distance


def to_match(topic: str, spans: list[Span], prepared: Prepared) -> Match:
    highlights: list[Highlight] = []
    in_text: list[tuple[Highlight, str]] = []  # and their folded text
    for name, start, end in sorted(set(s for s in spans if s[0] in prepared.fields),
                                   key=lambda s: (SCANNED_FIELDS.index(s[0]), s[1], s[2])):
        folded = prepared.fields[name]
        o_start, o_end = folded.to_original(start, end)
        highlights.append(Highlight(name, o_start, o_end, folded.original[o_start:o_end]))
        if name == "text":
            in_text.append((highlights[-1], folded.folded[start:end]))
    kept = keep_evidence(highlights, key=lambda h: fold(h.text))
    anchor = most_telling([h for h, _ in in_text], [text for _, text in in_text])
    return Match(topic, tuple(kept), snippet(prepared.doc, anchor))


def most_telling(spans: list[_S], texts: list[str]) -> _S | None:
    """The first of `spans` whose text is the rarest among them: the evidence that says
    most about why an article matched (`asylum` once, not `students` ten times)."""
    if len(spans) < 2:
        return spans[0] if spans else None
    counts = Counter(texts)
    return spans[min(range(len(spans)), key=lambda i: counts[texts[i]])]


def keep_evidence(spans: list[_S], key: Callable[[_S], str]) -> list[_S]:
    """At most MAX_HIGHLIGHTS spans, in order — the first occurrence of every distinct
    matched text before any repeat, so every clause that matched keeps its evidence."""
    if len(spans) <= MAX_HIGHLIGHTS:
        return spans
    firsts: dict[str, _S] = {}
    for span in spans:
        firsts.setdefault(key(span), span)
    chosen = set(list(firsts.values())[:MAX_HIGHLIGHTS])
    for span in spans:
        if len(chosen) >= MAX_HIGHLIGHTS:
            break
        chosen.add(span)
    return [span for span in spans if span in chosen]


def snippet(doc: Document, anchor: Highlight | None) -> str:
    """A short passage of the article text around `anchor`, a highlight in it (None: the
    beginning of the text)."""
    if anchor is None:
        return " ".join(doc.text[:2 * SNIPPET_RADIUS].split())
    start, end = max(0, anchor.start - SNIPPET_RADIUS), anchor.end + SNIPPET_RADIUS
    passage = " ".join(doc.text[start:end].split())
    return ("…" if start > 0 else "") + passage + ("…" if end < len(doc.text) else "")


def match_one(topic: str, query: Node, doc: Document) -> Match | None:
    """Naive: evaluate one query on one document."""
    prepared = Prepared(doc)
    spans = evaluate(query, prepared)
    return None if spans is None else to_match(topic, spans, prepared)
