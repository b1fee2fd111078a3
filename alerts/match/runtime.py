"""Matching at run time: `Matcher` scans an article once — its words, plus one
Aho-Corasick pass for the other keys of every rule's terms — and runs only the candidate
rules, those whose indexed atom clauses occur, as compiled by `alerts.match.compiler`
(see the notes there); `_Run` holds what one article's rules share: which terms occur,
their spans, NEAR pairs, highlights and snippets. The results are always `match_one`'s.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import ahocorasick_rs

from alerts.match.compiler import (
    FIELD_RANK,
    META_RANK,
    Atom,
    Compiler,
    InnerSpan,
    clause_cost,
    utf8,
)
from alerts.match.reference import (
    CJK,
    LATIN,
    SCANNED_FIELDS,
    SENTENCE_END,
    Document,
    Finder,
    Highlight,
    Match,
    Prepared,
    are_close,
    finder,
    is_latin,
    keep_evidence,
    most_telling,
    snippet,
)
from alerts.query import Node, Term

_LOCAL_CLOSES = 256  # NEAR/SENTENCE checks per article before whole fields are tokenized
_LATIN_RUN = re.compile(f"{LATIN}+")
_NOT_TOKEN = f"(?:[^\\w{CJK}]|_)"
_WORD_BYTES = bytes(b if chr(b).isalnum() or b >= 0x80 else 0x20 for b in range(256))
_END = float("inf")


def words_of(text: str) -> set[bytes]:
    """The maximal runs of Latin letters and digits (`LATIN`) of folded text, in UTF-8."""
    data = utf8(text)
    pieces = set(data.translate(_WORD_BYTES).split())  # split at ASCII non-alphanumerics
    if not data.isascii():  # pieces with other characters are split exactly
        odd = [piece for piece in pieces if not piece.isascii()]
        pieces.difference_update(odd)
        for piece in odd:
            pieces.update(map(utf8, _LATIN_RUN.findall(piece.decode("utf-8", "surrogatepass"))))
    return pieces


@cache
def _tokens_at_least(n: int) -> Callable[[str, int, int], re.Match[str] | None]:
    """`match(text, pos, stop)`: whether there are at least n tokens there (CJK characters,
    runs of other word characters), in one regex call (possessive, so a word is never split
    into several tokens)."""
    return re.compile(f"(?:{_NOT_TOKEN}*+(?:[{CJK}]|{LATIN}++)){{{n}}}").match


def _ranks(term: Term) -> tuple[int, ...]:
    return (FIELD_RANK[term.field],) if term.field else (0, 1)  # its field, or title and text


class _Lazy(dict):
    """A dict whose missing values are made, once, by `make(key)`."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.make(key)
        return value


class _Run(dict):
    """One article against the compiled rules: term id -> whether the term occurs (the
    `t` of the rules' tests, filled on first use), then spans, highlights and snippets."""

    def __init__(self, matcher: Matcher, prepared: Prepared, P: set[str], T: set[bytes],
                 A: set[bytes], U: bool) -> None:
        super().__init__()
        self.matcher, self.prepared = matcher, prepared
        self.P, self.T, self.A, self.U = P, T, A, U
        self.folded = [prepared.fields[name].folded for name in SCANNED_FIELDS]
        # caches that fill themselves by functions which do not refer back to the run: an
        # article's run is freed when it is done, not left as a cycle for the GC to find
        self.term_spans: dict[int, list[InnerSpan]] = _Lazy(  # S
            partial(_occurrences, matcher, self.folded, prepared.metadata))
        self.near_spans: dict[int, list[InnerSpan] | None] = {}
        self.highlights: dict[InnerSpan, Highlight] = _Lazy(partial(_highlight, prepared))
        self.snippets: dict[InnerSpan | None, str] = _Lazy(
            partial(_snippet_at, prepared.doc, self.highlights))
        self.local_closes = 0

    def __missing__(self, tid: int) -> bool:
        """Whether term `tid` occurs (its atom, if it has one, was found): its spans are
        collected at once, for the highlights of a rule that holds."""
        found = self[tid] = bool(self.term_spans[tid])
        return found

    def args(self) -> tuple:
        """The arguments of the compiled rules for this article (see `Gate`)."""
        return (self.P, self.T, self.A, self.U, self, self.near, self.term_spans,
                self.near_pairs)

    def near_pairs(self, j: int) -> list[InnerSpan] | None:
        """`_near` of NEAR j (the N of the rules): the close pairs of the spans of its sides
        (each evaluated by its compiled function), or None; found once per article."""
        if j in self.near_spans:
            return self.near_spans[j]
        left_side, right_side, distance = self.matcher._nears[j]
        args = self.args()
        left = left_side(*args)
        right = right_side(*args) if left else None
        out: dict[InnerSpan, None] = {}  # each span once: a NEAR chain's spans stay few
        if left and right:
            close = self.close
            for a in left:
                for b in right:
                    if a[0] == b[0] and a[0] < 3 and close(a, b, distance):
                        out[a] = out[b] = None
        found = self.near_spans[j] = list(out) or None
        return found

    def near(self, j: int) -> bool:
        """Whether NEAR j holds (its test has found both sides true)."""
        return self.near_pairs(j) is not None

    def close(self, a: InnerSpan, b: InnerSpan, distance: int | None) -> bool:
        """`are_close`. The first times in an article, only the text between the two spans
        is looked at (the token starts in [end of the first, start of the second), or a
        sentence end from the first start to the second); after that, as `are_close` does,
        with the token starts or sentence ends of the whole field."""
        self.local_closes += 1
        if self.local_closes > _LOCAL_CLOSES:
            return are_close(self.prepared.fields[SCANNED_FIELDS[a[0]]], a, b, distance)
        text = self.folded[a[0]]
        if distance is None:
            low, high = (a[1], b[1]) if a[1] <= b[1] else (b[1], a[1])
            end = SENTENCE_END.search(text, low)
            return end is None or end.start() >= high
        first, second = (a, b) if a[1] <= b[1] else (b, a)
        pos, stop = first[2], second[1]
        if stop - pos <= distance:  # fewer characters than allowed tokens (or overlapping)
            return True
        if is_latin(text[pos - 1]) and is_latin(text[pos]):  # inside a word: not a token start
            while pos < stop and is_latin(text[pos]):
                pos += 1
        return not _tokens_at_least(distance + 1)(text, pos, stop)

    def to_match(self, topic: str, spans: list[InnerSpan]) -> Match:
        """`to_match`, with highlights and snippets made once per article."""
        ordered = sorted(set(spans))  # none of source: or lang: (their `Gate` gives none)
        kept = keep_evidence(ordered, key=self.text_of)
        in_text = ordered[bisect_right(ordered, (0, _END, _END)):  # the spans in the text
                          bisect_right(ordered, (1, _END, _END))]
        anchor = most_telling(in_text, list(map(self.text_of, in_text)))
        return Match(topic, tuple(map(self.highlights.__getitem__, kept)), self.snippets[anchor])

    def text_of(self, span: InnerSpan) -> str:
        return self.folded[span[0]][span[1]:span[2]]


def _occurrences(matcher: Matcher, folded: list[str], metadata: dict[str, set[str]],
                 tid: int) -> list[InnerSpan]:
    """`occurrences` of term `tid` in an article's folded fields and metadata."""
    term = matcher._terms[tid]
    if term.field in META_RANK:
        found = term.text in metadata[term.field]
        return [(META_RANK[term.field], 0, 0)] if found else []
    find = matcher._finders[tid] or matcher._finder(tid)
    return [(rank, start, end) for rank in _ranks(term) for start, end in find(folded[rank])]


def _highlight(prepared: Prepared, span: InnerSpan) -> Highlight:
    name = SCANNED_FIELDS[span[0]]
    folded = prepared.fields[name]
    start, end = folded.to_original(span[1], span[2])
    return Highlight(name, start, end, folded.original[start:end])


def _snippet_at(doc: Document, highlights: Mapping[InnerSpan, Highlight],
                span: InnerSpan | None) -> str:
    """The snippet around `span`, a span in the text (None: there is none)."""
    return snippet(doc, None if span is None else highlights[span])


@dataclass
class Matcher:
    """All topics compiled once; `match` scans an article once (see the notes in
    `alerts.match.compiler` for how, and `match_one` for what: the results are always
    the same)."""

    rules: Mapping[str, Node]

    def __post_init__(self) -> None:
        self._names = list(self.rules)
        self._ids = {name: i for i, name in enumerate(self._names)}
        compiler = Compiler()
        trees = [compiler.tree(self.rules[name]) for name in self._names]
        self._terms, self._atoms = compiler.terms, compiler.atoms
        # finders made now, not on an article's time (one that raises, as `term_pattern`
        # does for an empty word, is left to raise when it is needed)
        self._finders: list[Finder | None] = [_or_none(finder, t) for t in self._terms]
        self._rules, self._nears = compiler.compile(trees)
        for distance in {distance for _, _, distance in self._nears} - {None}:
            _tokens_at_least(distance + 1)  # a few ms each, so not on an article's time either

        first: dict[Atom, set[int]] = {}
        second: dict[Atom, set[int]] = {}
        self._single: frozenset[int] = frozenset()  # rules with one clause: the first decides
        self._always: frozenset[int] = frozenset()  # with none (NOT, metadata): always tested
        single, always = set(), set()
        for i, tree in enumerate(trees):
            best = sorted(set(compiler.clauses(tree)), key=lambda c: (
                clause_cost(c), sorted(map(repr, c))))
            if not best:
                always.add(i)
                continue
            for atom in best[0]:
                first.setdefault(atom, set()).add(i)
            if len(best) == 1:
                single.add(i)
            for atom in best[1] if len(best) > 1 else ():
                second.setdefault(atom, set()).add(i)
        self._single, self._always = frozenset(single), frozenset(always)
        self._first = {atom: frozenset(ids) for atom, ids in first.items()}
        self._second = {atom: frozenset(ids) for atom, ids in second.items()}
        self._first_atoms, self._second_atoms = frozenset(first), frozenset(second)
        self._words = frozenset(atom for atom in self._atoms if isinstance(atom, bytes))

        keys = sorted({atom for atom in self._atoms if isinstance(atom, str)})
        self._keys = [key for key in keys if _encodable(key)]
        self._odd_keys = [key for key in keys if not _encodable(key)]  # lone surrogates
        self._automaton = (ahocorasick_rs.AhoCorasick(self._keys, store_patterns=True)
                           if self._keys else None)

    def _finder(self, tid: int) -> Finder:
        found = self._finders[tid] = finder(self._terms[tid])
        return found

    def keys_in(self, prepared: Prepared) -> set[str]:
        """The scan keys (terms other than whole words) in the document's scanned fields."""
        text = prepared.scanned
        present: set[str] = set()
        if self._automaton is not None:
            try:
                present = set(self._automaton.find_matches_as_strings(text, overlapping=True))
            except UnicodeEncodeError:  # a lone surrogate in the text
                present = {key for key in self._keys if key in text}
        if self._odd_keys:
            present.update(key for key in self._odd_keys if key in text)
        return present

    def _candidates(self, atoms: set[Atom]) -> list[int]:
        """The rules whose indexed clauses meet the atoms found, in rule order."""
        found = self._always
        first = atoms & self._first_atoms
        if first:
            ids = set().union(*map(self._first.__getitem__, first))
            seconds = set().union(*map(self._second.__getitem__, atoms & self._second_atoms))
            found = (ids & seconds) | (ids & self._single) | found
        return sorted(found)

    def prepare(self, doc: Document) -> _Run:
        """What every article costs before any rule is tested: `doc` folded, its words,
        and the scan."""
        prepared = Prepared(doc)
        fields = prepared.fields
        T = words_of(fields["title"].folded) | words_of(fields["text"].folded)
        A = T | words_of(fields["url"].folded) if fields["url"].folded else T
        return _Run(self, prepared, self.keys_in(prepared), T, A, fields["url"].folded.isascii())

    def match(self, doc: Document, only: Iterable[str] | None = None) -> list[Match]:
        """Matches of `doc`, restricted to the topics in `only` when given."""
        run = self.prepare(doc)
        ids = self._candidates((run.A & self._words) | run.P)
        if only is not None:
            allowed = {self._ids[name] for name in only if name in self._ids}
            ids = [i for i in ids if i in allowed]
        args = run.args()
        rules, names, to_match = self._rules, self._names, run.to_match
        out = []
        for i in ids:
            spans = rules[i](*args)
            if spans is not None:
                out.append(to_match(names[i], spans))
        return out


def _or_none(make: Callable[[Term], Any], term: Term) -> Any:
    try:
        return make(term)
    except Exception:  # noqa: BLE001
        return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
