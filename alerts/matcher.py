"""Matching articles against topic queries, pure functions over text.

Semantics: text and terms are folded alike (NFKC, case, width, Traditional → Simplified);
Latin terms match whole words (`spy` is not `spyware`, `spy*` is), CJK terms match as
substrings; NEAR/n counts words, where each CJK character is a word; SENTENCE splits on
. ! ? 。！？；. Every match carries highlights: spans of the *original* text.

`Matcher` is the presearcher (in the style of Lucene Monitor): every term of every rule is
keyed into one Aho-Corasick automaton, an article is scanned once, and only the rules
whose required keys occur are evaluated — with terms whose key is absent failing at once.
`evaluate` alone is the naive reference the matcher must always agree with.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import ahocorasick

from alerts.query import And, Near, Node, Not, Or, Term, terms
from crawler.normalize import fold_with_offsets

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{CJK}]")
_LATIN = f"[^\\W_{CJK}]"  # a word character that is not CJK
_TOKEN = re.compile(f"[{CJK}]|{_LATIN}+")
_SENTENCE_END = re.compile(r"[。！？；!?;]|\.(?=\s|$)")
SCANNED_FIELDS = ("title", "text", "url")
SNIPPET_RADIUS = 80
MAX_HIGHLIGHTS = 20

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


@dataclass(frozen=True)
class Highlight:
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
        return [m.end() for m in _SENTENCE_END.finditer(self.folded)]

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
        self.metadata = {"source": {doc.source.lower(), *(t.lower() for t in doc.tags)},
                         "lang": {(doc.language or "").lower()}}
        self.cache: dict[Term, list[Span]] = {}
        self.present_keys: set[str] | None = None  # set by the presearcher

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
        pattern = f"(?<!{_LATIN})" + pattern
    if term.prefix:
        pattern += f"{_LATIN}*"
    elif not is_cjk(last[-1]):
        pattern += f"(?!{_LATIN})"
    return re.compile(pattern)


def presearch_key(term: Term) -> str | None:
    """The substring that must occur for `term` to match; None for metadata fields."""
    if term.field in ("source", "lang"):
        return None
    return max(term.text.split(" "), key=len) if term.phrase else term.text


_PATTERNS: dict[Term, re.Pattern[str]] = {}


def occurrences(term: Term, prepared: Prepared) -> list[Span]:
    cached = prepared.cache.get(term)
    if cached is not None:
        return cached
    spans: list[Span] = []
    if term.field in ("source", "lang"):
        if term.text in prepared.metadata[term.field]:
            spans = [(term.field, 0, 0)]
    elif prepared.present_keys is None or presearch_key(term) in prepared.present_keys:
        pattern = _PATTERNS.get(term) or _PATTERNS.setdefault(term, term_pattern(term))
        for name in (term.field,) if term.field else ("title", "text"):
            spans += [(name, m.start(), m.end())
                      for m in pattern.finditer(prepared.fields[name].folded)]
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
    pairs = [(a, b) for a in left for b in right if a[0] == b[0] and a[0] in prepared.fields
             and _close(prepared.fields[a[0]], a, b, node.distance)]
    return [s for pair in pairs for s in pair] or None


def _close(folded: FoldedField, a: Span, b: Span, distance: int | None) -> bool:
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
    for name, start, end in sorted(set(s for s in spans if s[0] in prepared.fields),
                                   key=lambda s: (SCANNED_FIELDS.index(s[0]), s[1])):
        folded = prepared.fields[name]
        o_start, o_end = folded.to_original(start, end)
        highlights.append(Highlight(name, o_start, o_end, folded.original[o_start:o_end]))
    return Match(topic, tuple(highlights[:MAX_HIGHLIGHTS]), snippet(prepared.doc, highlights))


def snippet(doc: Document, highlights: list[Highlight]) -> str:
    """A short passage of the article text around the first highlight in it."""
    in_text = [h for h in highlights if h.field == "text"]
    if not in_text:
        return " ".join(doc.text[:2 * SNIPPET_RADIUS].split())
    first = in_text[0]
    start, end = max(0, first.start - SNIPPET_RADIUS), first.end + SNIPPET_RADIUS
    passage = " ".join(doc.text[start:end].split())
    return ("…" if start > 0 else "") + passage + ("…" if end < len(doc.text) else "")


def match_one(topic: str, query: Node, doc: Document) -> Match | None:
    """Naive: evaluate one query on one document."""
    prepared = Prepared(doc)
    spans = evaluate(query, prepared)
    return None if spans is None else to_match(topic, spans, prepared)


# ---------------------------------------------------------------- the presearcher

def required_keys(node: Node) -> frozenset[str] | None:
    """Keys of which at least one must occur for `node` to match; None if none is needed
    (a NOT, a metadata field)."""
    if isinstance(node, Term):
        key = presearch_key(node)
        return frozenset([key]) if key else None
    if isinstance(node, Not):
        return None
    if isinstance(node, Or):
        sets = [required_keys(child) for child in node.children]
        return None if any(s is None for s in sets) else frozenset().union(*sets)
    children = (node.left, node.right) if isinstance(node, Near) else node.children
    sets = [s for s in (required_keys(child) for child in children) if s is not None]
    return min(sets, key=len) if sets else None


@dataclass
class Matcher:
    """All topics compiled once; `match` scans an article once."""

    rules: Mapping[str, Node]
    index: dict[str, list[str]] = field(init=False, default_factory=dict)
    unprunable: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.automaton = ahocorasick.Automaton()
        for name, query in self.rules.items():
            keys = required_keys(query)
            if keys is None:
                self.unprunable.append(name)
            for key in keys or ():
                self.index.setdefault(key, []).append(name)
        for key in {presearch_key(t) for q in self.rules.values() for t in terms(q)} - {None}:
            self.automaton.add_word(key, key)
        if len(self.automaton):
            self.automaton.make_automaton()

    def keys_in(self, prepared: Prepared) -> set[str]:
        if not len(self.automaton):
            return set()
        return {key for _, key in self.automaton.iter(prepared.scanned)}

    def candidates(self, present: Iterable[str]) -> list[str]:
        names = set(self.unprunable)
        for key in present:
            names.update(self.index.get(key, ()))
        return [name for name in self.rules if name in names]

    def match(self, doc: Document, only: Iterable[str] | None = None) -> list[Match]:
        """Matches of `doc`, restricted to the topics in `only` when given."""
        prepared = Prepared(doc)
        prepared.present_keys = self.keys_in(prepared)
        allowed = None if only is None else set(only)
        out = []
        for name in self.candidates(prepared.present_keys):
            if allowed is not None and name not in allowed:
                continue
            spans = evaluate(self.rules[name], prepared)
            if spans is not None:
                out.append(to_match(name, spans, prepared))
        return out
