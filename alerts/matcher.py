"""Matching articles against topic queries, pure functions over text.

Semantics: text and terms are folded alike (NFKC, case, width, Traditional → Simplified);
Latin terms match whole words (`spy` is not `spyware`, `spy*` is), CJK terms match as
substrings; NEAR/n counts words, where each CJK character is a word; SENTENCE splits on
. ! ? 。！？；. Every match carries highlights: spans of the *original* text.

`Matcher` is the presearcher (in the style of Lucene Monitor): an article is folded and
scanned once — its words, plus one Aho-Corasick pass for the other keys of every rule's
terms — and only the rules whose indexed key clauses occur are tested, as compiled
boolean expressions; only those that hold are evaluated for highlights (see the notes
above `_META_RANK`). `evaluate` alone is the naive reference the matcher must always agree
with (`match_one`), down to every highlight and snippet.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property, partial
from typing import Any, NamedTuple, TypeVar

import ahocorasick_rs

from alerts.query import And, Near, Node, Not, Or, Term
from basis.folding import fold, fold_with_offsets

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{CJK}]")
_LATIN = f"[^\\W_{CJK}]"  # a word character that is not CJK
_TOKEN = re.compile(f"[{CJK}]|{_LATIN}+")
_NOT_TOKEN = f"(?:[^\\w{CJK}]|_)"
_SENTENCE_END = re.compile(r"[。！？；!?;]|\.(?=\s|$)")
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


Finder = Callable[..., list[tuple[int, int]]]  # (text, first=False): spans, or the first
_FINDERS: dict[Term, Finder] = {}


def _latin(char: str) -> bool:
    """Whether `char` is a word character that is not CJK (what `_LATIN` matches)."""
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
            if behind and start and _latin(text[start - 1]):
                pos = start + 1
                continue
            if prefix:
                while end < length and _latin(text[end]):
                    end += 1
            elif ahead and end < length and _latin(text[end]):
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


# How the presearcher is fast while giving exactly what `match_one` gives:
#
# * Each term has an *atom*: for a term that must contain a whole Latin word, that word —
#   looked up in the set of the article's words (maximal runs of Latin letters and digits,
#   split in bytes, which is exact: `spy` is a word of the article iff `(?<!L)spy(?!L)`
#   matches); for other terms (CJK, prefixes, words with apostrophes…), a key for one
#   Aho-Corasick scan (ahocorasick-rs) of the scanned fields.
# * Each rule is indexed under two of its conjunctive atom clauses (`_clauses`), the
#   rarest by length, and is a candidate only when both meet the atoms found.
# * A candidate is tested as a compiled boolean expression — `b'spy' in T` for a word,
#   `'间谍' in P and (U or t[7])` for a CJK term, `'secur' in P and t[8]` for the others,
#   where `t` finds a term's occurrences once per article — so an absent atom costs one
#   set lookup; AND's rare terms go first, NOT last.
# * Only a rule that holds has its spans collected, by a compiled expression too —
#   `S[0] + (S[1] if b'b' in T else []) + …` for `a AND (b OR NOT c)` — mirroring `evaluate`
#   (NEAR and SENTENCE are counted on the text between the two spans instead of
#   tokenizing whole fields); highlights and snippets are built once per span and article.

_META_RANK = {"source": 3, "lang": 4}
_RANK = {name: rank for rank, name in enumerate(SCANNED_FIELDS)}  # title, text, url
_MAX_DEPTH = 40  # deeper rules are interpreted, not compiled (the parser's nesting limit)
_LOCAL_CLOSES = 256  # NEAR/SENTENCE checks per article before whole fields are tokenized
_LATIN_RUN = re.compile(f"{_LATIN}+")
_WORD_BYTES = bytes(b if chr(b).isalnum() or b >= 0x80 else 0x20 for b in range(256))

Atom = bytes | str  # a whole word (UTF-8) or a key of the scan
Tree = tuple  # ("t", tid) | ("!", tree) | ("&"|"|", trees) | ("n", j, left, right, distance)
InnerSpan = tuple[int, int, int]  # field rank (title, text, url, source, lang), start, end


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def words_of(text: str) -> set[bytes]:
    """The maximal runs of Latin letters and digits (`_LATIN`) of folded text, in UTF-8."""
    data = _utf8(text)
    pieces = set(data.translate(_WORD_BYTES).split())  # split at ASCII non-alphanumerics
    if not data.isascii():  # pieces with other characters are split exactly
        odd = [piece for piece in pieces if not piece.isascii()]
        pieces.difference_update(odd)
        for piece in odd:
            pieces.update(map(_utf8, _LATIN_RUN.findall(piece.decode("utf-8", "surrogatepass"))))
    return pieces


def _term_atom(term: Term) -> Atom | None:
    """A whole Latin word the term's matches must contain, else its scan key (None for
    source:/lang: and the empty term)."""
    key = presearch_key(term)
    if not key:
        return None
    words = term.text.split(" ") if term.phrase else [term.text]
    if all(words):  # the words of a phrase are bounded by its gaps and boundaries...
        last = len(words) - 1
        whole = [word for i, word in enumerate(words)  # ...except a prefix's last one
                 if all(map(_latin, word)) and not (term.prefix and i == last)]
        if whole:
            return _utf8(max(whole, key=len))
    return key


def _is_word(term: Term, atom: Atom | None) -> bool:
    """Whether the term *is* its atom: a whole Latin word, in title or text."""
    return (isinstance(atom, bytes) and not term.prefix and term.field is None
            and atom == _utf8(term.text))


def _is_substring(term: Term, atom: Atom | None) -> bool:
    """Whether the term occurs wherever its scan key does, in title or text: a CJK term
    (no word boundaries) that is its key. (The scan also covers the URL, so a test
    trusts it only when the URL is ASCII.)"""
    return (isinstance(atom, str) and not term.prefix and term.field is None
            and atom == term.text and is_cjk(atom[0]) and is_cjk(atom[-1]))


_WORD, _SUBSTRING, _IN_WORDS, _SCANNED, _META, _NEVER = (
    "word", "substring", "in words", "scanned", "meta", "never")


def _gate(term: Term, atom: Atom | None) -> str:
    """How a term's test reads: `atom in T` (a whole word), `atom in P and (U or t[i])`,
    `atom in A and t[i]`, `atom in P and t[i]`, `t[i]` (source:, lang:) or False."""
    if atom is None:
        return _META if term.field in _META_RANK else _NEVER
    if _is_word(term, atom):
        return _WORD
    if _is_substring(term, atom):
        return _SUBSTRING
    return _IN_WORDS if isinstance(atom, bytes) else _SCANNED


def _atom_cost(atom: Atom) -> float:
    """How likely an atom is to occur in an article, from its length alone (the static
    term weighting of presearchers): short words and single CJK characters are common."""
    key = atom.decode("utf-8", "surrogatepass") if isinstance(atom, bytes) else atom
    if is_cjk(key[:1]):
        return (1.0, 0.3, 0.1)[len(key) - 1] if len(key) <= 3 else 0.05
    return (1.0, 0.8, 0.5, 0.3, 0.2, 0.12, 0.08)[len(key) - 1] if len(key) <= 7 else 0.05


def _clause_cost(clause: frozenset[Atom]) -> float:
    return sum(map(_atom_cost, clause))


class _Compiler:
    """Query trees as tuples over term ids (terms shared by all rules), with the atom
    clauses each rule needs."""

    def __init__(self) -> None:
        self.terms: list[Term] = []
        self.atoms: list[Atom | None] = []
        self.term_ids: dict[Term, int] = {}
        self.nears: list[Tree] = []  # the NEAR trees, j -> ("n", j, left, right, distance)

    def tree(self, node: Node) -> Tree:
        if isinstance(node, Term):
            tid = self.term_ids.get(node)
            if tid is None:
                tid = self.term_ids[node] = len(self.terms)
                self.terms.append(node)
                self.atoms.append(_term_atom(node))
            return ("t", tid)
        if isinstance(node, Not):
            return ("!", self.tree(node.child))
        if isinstance(node, Near):
            left, right = self.tree(node.left), self.tree(node.right)
            self.nears.append(("n", len(self.nears), left, right, node.distance))
            return self.nears[-1]
        children = tuple(map(self.tree, node.children))
        if isinstance(node, And):  # the rarest first, NOT last
            return ("&", tuple(sorted(children, key=self.cost)))
        return ("|", children)

    def clauses(self, tree: Tree) -> list[frozenset[Atom]]:
        """Atom sets that must *each* meet the atoms of an article for `tree` to match."""
        kind = tree[0]
        if kind == "t":
            atom = self.atoms[tree[1]]
            return [] if atom is None else [frozenset([atom])]
        if kind == "!":
            return []
        if kind == "n":  # both sides must match
            return self.clauses(tree[2]) + self.clauses(tree[3])
        if kind == "&":
            return [clause for child in tree[1] for clause in self.clauses(child)]
        parts = [self.clauses(child) for child in tree[1]]
        if not parts or not all(parts):
            return []
        return [frozenset().union(*(min(part, key=_clause_cost) for part in parts))]

    def cost(self, tree: Tree) -> tuple[int, float]:
        kind = tree[0]
        if kind == "t":
            atom = self.atoms[tree[1]]
            return (0, 0.0 if atom is None else _atom_cost(atom))
        if kind in "!n":
            return (3 if kind == "!" else 2, 0.0)
        return (1, min(map(_clause_cost, self.clauses(tree)), default=1.0))

    def source(self, tree: Tree) -> str:
        """The test of a tree as a Python expression over P (keys found by the scan), T
        and A (the words of title and text, and of all scanned fields), U (the URL is
        ASCII), t (term id -> occurs) and n (NEAR j holds)."""
        kind = tree[0]
        if kind == "t":
            tid = tree[1]
            atom = self.atoms[tid]
            gate = _gate(self.terms[tid], atom)
            if gate is _WORD:
                return f"({atom!r} in T)"
            if gate is _SUBSTRING:  # found by the scan, and not only in the URL
                return f"({atom!r} in P and (U or t[{tid}]))"
            if gate is _META:
                return f"t[{tid}]"
            if gate is _NEVER:
                return "False"
            return f"({atom!r} in {'A' if gate is _IN_WORDS else 'P'} and t[{tid}])"
        if kind == "!":
            return f"(not {self.source(tree[1])})"
        if kind == "n":
            return f"({self.source(tree[2])} and {self.source(tree[3])} and n({tree[1]}))"
        if not tree[1]:
            return "True" if kind == "&" else "False"
        return "(" + (" and " if kind == "&" else " or ").join(map(self.source, tree[1])) + ")"

    def evidence(self, tree: Tree) -> str:
        """The spans of a tree *that holds*, as a Python expression over S (term id ->
        occurrences) and N (NEAR j -> its close pairs): `evaluate`'s, without the
        metadata spans that highlights drop. An OR's children are tested again (cheap:
        their terms are known by then), AND's and NOT's need no test."""
        kind = tree[0]
        if kind == "t":
            gate = _gate(self.terms[tree[1]], self.atoms[tree[1]])
            return "[]" if gate is _META or gate is _NEVER else f"S[{tree[1]}]"
        if kind == "n":
            return f"N({tree[1]})"
        if kind == "!" or not tree[1]:
            return "[]"
        if kind == "&":
            return "(" + " + ".join(map(self.evidence, tree[1])) + ")"
        return "(" + " + ".join(f"({self.evidence(child)} if {self.source(child)} else [])"
                                for child in tree[1]) + ")"

    def compile(self, trees: list[Tree]) -> list[Callable[..., list[InnerSpan] | None]]:
        """One function `(P, T, A, U, t, n, S, N) -> spans or None` per rule: its test,
        then its evidence. The source holds only integers, operators and repr()s of atoms;
        too deep a rule is interpreted."""
        compiled = [i for i, tree in enumerate(trees) if _depth(tree) <= _MAX_DEPTH]
        rules: list = [None] * len(trees)
        if compiled:
            source = "def rules():\n    return [\n" + "".join(
                f"        lambda P, T, A, U, t, n, S, N: {self.evidence(trees[i])} "
                f"if {self.source(trees[i])} else None,\n"
                for i in compiled) + "    ]\n"
            namespace: dict = {}
            exec(compile(source, "<matcher rules>", "exec"), namespace)  # noqa: S102
            for i, rule in zip(compiled, namespace["rules"](), strict=True):
                rules[i] = rule
        for i, tree in enumerate(trees):
            if rules[i] is None:
                rules[i] = self.interpreted(tree)
        return rules

    def interpreted(self, tree: Tree) -> Callable[..., list[InnerSpan] | None]:
        terms, atoms = self.terms, self.atoms

        def holds(node: Tree, P: set, T: set, A: set, U: bool, t: Mapping, n: Callable) -> bool:
            kind = node[0]
            if kind == "t":
                tid = node[1]
                atom = atoms[tid]
                gate = _gate(terms[tid], atom)
                if gate is _WORD:
                    return atom in T
                if gate is _SUBSTRING:
                    return atom in P and (U or t[tid])
                if gate is _NEVER:
                    return False
                return (gate is _META or atom in (A if gate is _IN_WORDS else P)) and t[tid]
            if kind == "!":
                return not holds(node[1], P, T, A, U, t, n)
            if kind == "n":
                return (holds(node[2], P, T, A, U, t, n)
                        and holds(node[3], P, T, A, U, t, n)
                        and n(node[1]))
            if kind == "&":
                return all(holds(child, P, T, A, U, t, n) for child in node[1])
            return any(holds(child, P, T, A, U, t, n) for child in node[1])

        return lambda P, T, A, U, t, n, S, N: (t.spans(tree) if holds(tree, P, T, A, U, t, n)
                                               else None)


@cache
def _tokens_at_least(n: int) -> Callable[[str, int, int], re.Match[str] | None]:
    """`match(text, pos, stop)`: whether `_TOKEN` finds at least n tokens there, in one
    regex call (possessive, so a word is never split into several tokens)."""
    return re.compile(f"(?:{_NOT_TOKEN}*+(?:[{CJK}]|{_LATIN}++)){{{n}}}").match


def _depth(tree: Tree) -> int:
    kind = tree[0]
    if kind == "t":
        return 1
    if kind == "!":
        return 1 + _depth(tree[1])
    if kind == "n":
        return 1 + max(_depth(tree[2]), _depth(tree[3]))
    return 1 + max(map(_depth, tree[1]), default=0)


def _ranks(term: Term) -> tuple[int, ...]:
    return (_RANK[term.field],) if term.field else (0, 1)  # its field, or title and text


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

    def holds(self, tid: int) -> bool:
        """Whether term `tid` occurs, as its test in the compiled rules says."""
        gate, atom = self.matcher._gates[tid]
        if gate is _WORD:
            return atom in self.T
        if gate is _SUBSTRING:
            return atom in self.P and (self.U or self[tid])
        if gate is _NEVER:
            return False
        return (gate is _META or atom in (self.A if gate is _IN_WORDS else self.P)) and self[tid]

    def spans_of(self, tid: int) -> list[InnerSpan]:
        """`occurrences` of term `tid` ([] when its test says it does not occur)."""
        return self.term_spans[tid] if self.holds(tid) else []

    def spans(self, tree: Tree) -> list[InnerSpan] | None:
        """`evaluate` over a compiled tree (AND's children reordered: the same set)."""
        kind = tree[0]
        if kind == "t":
            return self.spans_of(tree[1]) or None
        if kind == "!":
            return None if self.spans(tree[1]) is not None else []
        if kind == "&":
            out: list[InnerSpan] = []
            for child in tree[1]:
                found = self.spans(child)
                if found is None:
                    return None
                out += found
            return out
        if kind == "|":
            hits = [found for found in map(self.spans, tree[1]) if found is not None]
            return [s for found in hits for s in found] if hits else None
        return self.near_pairs(tree[1])

    def near_pairs(self, j: int) -> list[InnerSpan] | None:
        """`_near` of NEAR j (the N of the rules): the close pairs of its sides' spans, or
        None; found once per article."""
        if j in self.near_spans:
            return self.near_spans[j]
        _, _, left_tree, right_tree, distance = self.matcher._nears[j]
        left, right = self.spans(left_tree), self.spans(right_tree)
        out: list[InnerSpan] = []
        if left and right:
            close = self.close
            for a in left:
                for b in right:
                    if a[0] == b[0] and a[0] < 3 and close(a, b, distance):
                        out += (a, b)
        found = self.near_spans[j] = out or None
        return found

    def near(self, j: int) -> bool:
        """Whether NEAR j holds (its test has found both sides true)."""
        return self.near_pairs(j) is not None

    def close(self, a: InnerSpan, b: InnerSpan, distance: int | None) -> bool:
        """`_close`. The first times in an article, only the text between the two spans
        is looked at (the token starts in [end of the first, start of the second), or a
        sentence end from the first start to the second); after that, as `_close` does,
        with the token starts or sentence ends of the whole field."""
        self.local_closes += 1
        if self.local_closes > _LOCAL_CLOSES:
            return _close(self.prepared.fields[SCANNED_FIELDS[a[0]]], a, b, distance)
        text = self.folded[a[0]]
        if distance is None:
            low, high = (a[1], b[1]) if a[1] <= b[1] else (b[1], a[1])
            end = _SENTENCE_END.search(text, low)
            return end is None or end.start() >= high
        first, second = (a, b) if a[1] <= b[1] else (b, a)
        pos, stop = first[2], second[1]
        if stop - pos <= distance:  # fewer characters than allowed tokens (or overlapping)
            return True
        if _latin(text[pos - 1]) and _latin(text[pos]):  # inside a word: not a token start
            while pos < stop and _latin(text[pos]):
                pos += 1
        return not _tokens_at_least(distance + 1)(text, pos, stop)

    def to_match(self, topic: str, spans: list[InnerSpan]) -> Match:
        """`to_match`, with highlights and snippets made once per article."""
        ordered = sorted(set(spans))
        while ordered and ordered[-1][0] >= 3:  # source:, lang: (of interpreted rules)
            ordered.pop()
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
    if term.field in _META_RANK:
        found = term.text in metadata[term.field]
        return [(_META_RANK[term.field], 0, 0)] if found else []
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


_END = float("inf")


@dataclass
class Matcher:
    """All topics compiled once; `match` scans an article once (see the notes above
    `_META_RANK` for how, and `match_one` for what: the results are always the same)."""

    rules: Mapping[str, Node]

    def __post_init__(self) -> None:
        self._names = list(self.rules)
        self._ids = {name: i for i, name in enumerate(self._names)}
        compiler = _Compiler()
        self._trees = [compiler.tree(self.rules[name]) for name in self._names]
        self._terms, self._atoms = compiler.terms, compiler.atoms
        self._nears = compiler.nears
        # finders made now, not on an article's time (one that raises, as `term_pattern`
        # does for an empty word, is left to raise when it is needed)
        self._finders: list[Finder | None] = [_or_none(finder, t) for t in self._terms]
        for distance in {near[4] for near in self._nears} - {None}:
            _tokens_at_least(distance + 1)  # a few ms each, so not on an article's time either
        self._rules = compiler.compile(self._trees)
        self._gates = [(_gate(term, atom), atom)
                       for term, atom in zip(self._terms, self._atoms, strict=True)]

        first: dict[Atom, set[int]] = {}
        second: dict[Atom, set[int]] = {}
        self._single: frozenset[int] = frozenset()  # rules with one clause: the first decides
        self._always: frozenset[int] = frozenset()  # with none (NOT, metadata): always tested
        single, always = set(), set()
        for i, tree in enumerate(self._trees):
            best = sorted(set(compiler.clauses(tree)), key=lambda c: (
                _clause_cost(c), sorted(map(repr, c))))
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
        args = (run.P, run.T, run.A, run.U, run, run.near, run.term_spans, run.near_pairs)
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
