"""Topic rules compiled once: terms shared by all rules under ids, each term's atom and
gate, the atom clauses a rule needs and their costs (for the presearcher's index), and
each rule as generated Python code that `alerts.match.runtime` runs per article.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from alerts.match.reference import SCANNED_FIELDS, is_cjk, is_latin, presearch_key
from alerts.query import And, Near, Node, Not, Term

# How the presearcher is fast while giving exactly what `match_one` gives:
#
# * Each term has an *atom*: for a term that must contain a whole Latin word, that word —
#   looked up in the set of the article's words (maximal runs of Latin letters and digits,
#   split in bytes, which is exact: `spy` is a word of the article iff `(?<!L)spy(?!L)`
#   matches); for other terms (CJK, prefixes, words with apostrophes…), a key for one
#   Aho-Corasick scan (ahocorasick-rs) of the scanned fields.
# * Each rule is indexed under two of its conjunctive atom clauses (`Compiler.clauses`),
#   the rarest by length, and is a candidate only when both meet the atoms found.
# * A candidate is tested as a compiled boolean expression — `b'spy' in T` for a word,
#   `'间谍' in P and (U or t[7])` for a CJK term, `'secur' in P and t[8]` for the others,
#   where `t` finds a term's occurrences once per article — so an absent atom costs one
#   set lookup; AND's rare terms go first, NOT last. Each of these term tests (the
#   term's `Gate`) is written once, below, and inlined in every rule.
# * Only a rule that holds has its spans collected, by a compiled expression too —
#   `S[0] + (S[1] if b'b' in T else []) + …` for `a AND (b OR NOT c)` — mirroring `evaluate`
#   (NEAR and SENTENCE are counted on the text between the two spans instead of
#   tokenizing whole fields); highlights and snippets are built once per span and article.

META_RANK = {"source": 3, "lang": 4}
FIELD_RANK = {name: rank for rank, name in enumerate(SCANNED_FIELDS)}  # title, text, url
# deeper subtrees are generated as functions of their own: Python refuses expressions
# nested 200 parentheses deep, and queries can be nested hundreds deep
_MAX_DEPTH = 40
_PARAMETERS = "P, T, A, U, t, n, S, N"  # of every generated function (see `Gate`)

Atom = bytes | str  # a whole word (UTF-8) or a key of the scan
Tree = tuple  # ("t", tid) | ("!", tree) | ("&"|"|", trees) | ("n", j, left, right, distance)
InnerSpan = tuple[int, int, int]  # field rank (title, text, url, source, lang), start, end
Compiled = Callable[..., list[InnerSpan] | None]  # `evaluate` of a tree, generated
CompiledNear = tuple[Compiled, Compiled, int | None]  # its sides, its distance


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


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
                 if all(map(is_latin, word)) and not (term.prefix and i == last)]
        if whole:
            return utf8(max(whole, key=len))
    return key


def _is_word(term: Term, atom: Atom | None) -> bool:
    """Whether the term *is* its atom: a whole Latin word, in title or text."""
    return (isinstance(atom, bytes) and not term.prefix and term.field is None
            and atom == utf8(term.text))


def _is_substring(term: Term, atom: Atom | None) -> bool:
    """Whether the term occurs wherever its scan key does, in title or text: a CJK term
    (no word boundaries) that is its key. (The scan also covers the URL, so a test
    trusts it only when the URL is ASCII.)"""
    return (isinstance(atom, str) and not term.prefix and term.field is None
            and atom == term.text and is_cjk(atom[0]) and is_cjk(atom[-1]))


class Gate(NamedTuple):
    """How the generated code tests whether a term occurs, and its spans once that test
    holds: Python templates over `{atom}` and `{tid}` (the term's atom and id) and the
    parameters of every generated function — P (the keys the scan found), T and A (the
    words of title and text, and of all scanned fields), U (the URL is ASCII), t (term id
    -> occurs, filled on first use), n (NEAR j holds), S (term id -> occurrences) and
    N (NEAR j -> its close pairs)."""

    test: str
    spans: str = "S[{tid}]"


# The one definition of each term test, inlined wherever a rule tests a term:
WORD = Gate("({atom} in T)")  # the term is a whole word of title or text: the lookup decides
SUBSTRING = Gate("({atom} in P and (U or t[{tid}]))")  # found by the scan, not only in the URL
IN_WORDS = Gate("({atom} in A and t[{tid}])")  # its atom is a word it contains
SCANNED = Gate("({atom} in P and t[{tid}])")  # its atom is a scan key it contains
META = Gate("t[{tid}]", spans="[]")  # source:, lang: (no highlights)
NEVER = Gate("False", spans="[]")  # no atom to find (the empty term)


def _gate(term: Term, atom: Atom | None) -> Gate:
    if atom is None:
        return META if term.field in META_RANK else NEVER
    if _is_word(term, atom):
        return WORD
    if _is_substring(term, atom):
        return SUBSTRING
    return IN_WORDS if isinstance(atom, bytes) else SCANNED


def _atom_cost(atom: Atom) -> float:
    """How likely an atom is to occur in an article, from its length alone (the static
    term weighting of presearchers): short words and single CJK characters are common."""
    key = atom.decode("utf-8", "surrogatepass") if isinstance(atom, bytes) else atom
    if is_cjk(key[:1]):
        return (1.0, 0.3, 0.1)[len(key) - 1] if len(key) <= 3 else 0.05
    return (1.0, 0.8, 0.5, 0.3, 0.2, 0.12, 0.08)[len(key) - 1] if len(key) <= 7 else 0.05


def clause_cost(clause: frozenset[Atom]) -> float:
    return sum(map(_atom_cost, clause))




class Compiler:
    """Query trees as tuples over term ids (terms shared by all rules), with the atom
    clauses each rule needs, generated as Python."""

    def __init__(self) -> None:
        self.terms: list[Term] = []
        self.atoms: list[Atom | None] = []
        self.gates: list[Gate] = []
        self.term_ids: dict[Term, int] = {}
        self.nears: list[Tree] = []  # the NEAR trees, j -> ("n", j, left, right, distance)
        self.helpers: dict[tuple[str, Tree], str] = {}  # (part, deep subtree) -> its function
        self.helper_source: list[str] = []

    def tree(self, node: Node) -> Tree:
        if isinstance(node, Term):
            tid = self.term_ids.get(node)
            if tid is None:
                tid = self.term_ids[node] = len(self.terms)
                self.terms.append(node)
                self.atoms.append(_term_atom(node))
                self.gates.append(_gate(node, self.atoms[-1]))
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
        return [frozenset().union(*(min(part, key=clause_cost) for part in parts))]

    def cost(self, tree: Tree) -> tuple[int, float]:
        kind = tree[0]
        if kind == "t":
            atom = self.atoms[tree[1]]
            return (0, 0.0 if atom is None else _atom_cost(atom))
        if kind in "!n":
            return (3 if kind == "!" else 2, 0.0)
        return (1, min(map(clause_cost, self.clauses(tree)), default=1.0))

    def test(self, tree: Tree, depth: int = 0) -> str:
        """Whether a tree holds, as a Python expression (`depth`: its nesting so far)."""
        kind = tree[0]
        if kind == "t":
            tid = tree[1]
            return self.gates[tid].test.format(atom=repr(self.atoms[tid]), tid=tid)
        if depth == _MAX_DEPTH:
            return self.helper(self.test, tree)
        inner = depth + 1
        if kind == "!":
            return f"(not {self.test(tree[1], inner)})"
        if kind == "n":
            return f"({self.test(tree[2], inner)} and {self.test(tree[3], inner)} and n({tree[1]}))"
        if not tree[1]:
            return "True" if kind == "&" else "False"
        joiner = " and " if kind == "&" else " or "
        return "(" + joiner.join(self.test(child, inner) for child in tree[1]) + ")"

    def evidence(self, tree: Tree, depth: int = 0) -> str:
        """The spans of a tree *that holds*, as a Python expression: `evaluate`'s, without
        the metadata spans that highlights drop. An OR's children are tested again (cheap:
        their terms are known by then), AND's and NOT's need no test."""
        kind = tree[0]
        if kind == "t":
            return self.gates[tree[1]].spans.format(tid=tree[1])
        if kind == "n":
            return f"N({tree[1]})"
        if kind == "!" or not tree[1]:
            return "[]"
        if depth == _MAX_DEPTH:
            return self.helper(self.evidence, tree)
        inner = depth + 1
        if kind == "&":
            return "(" + " + ".join(self.evidence(child, inner) for child in tree[1]) + ")"
        return "(" + " + ".join(
            f"({self.evidence(child, inner)} if {self.test(child, inner)} else [])"
            for child in tree[1]) + ")"

    def helper(self, part: Callable[[Tree], str], tree: Tree) -> str:
        """A call of the generated function that returns `part(tree)` for a deep subtree,
        made once for equal subtrees."""
        key = (part.__name__, tree)
        name = self.helpers.get(key)
        if name is None:
            body = part(tree)
            name = self.helpers[key] = f"_{part.__name__}_{len(self.helpers)}"
            self.helper_source.append(f"def {name}({_PARAMETERS}):\n    return {body}\n")
        return f"{name}({_PARAMETERS})"

    def compile(self, trees: list[Tree]) -> tuple[list[Compiled], list[CompiledNear]]:
        """`evaluate` of each rule, and of both sides of each NEAR (for its pairs), as one
        generated function `(P, T, A, U, t, n, S, N) -> spans or None` each: the test, then
        the evidence. The source holds only integers, operators, repr()s of atoms and the
        names of its own functions."""
        sides = [side for near in self.nears for side in near[2:4]]
        compiled = "".join(
            f"    lambda {_PARAMETERS}: {self.evidence(tree)} if {self.test(tree)} else None,\n"
            for tree in trees + sides)
        source = "".join(self.helper_source) + "COMPILED = [\n" + compiled + "]\n"
        namespace: dict = {}
        exec(compile(source, "<matcher rules>", "exec"), namespace)  # noqa: S102
        rules, near_sides = namespace["COMPILED"][:len(trees)], namespace["COMPILED"][len(trees):]
        nears = [(left, right, near[4]) for near, left, right
                 in zip(self.nears, near_sides[::2], near_sides[1::2], strict=True)]
        return rules, nears
