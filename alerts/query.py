"""The topic query language, parsed with lark into a small immutable tree.

    query    := or
    or       := and ("OR" and)*
    and      := unary (["AND"] unary)*          implicit AND between clauses
    unary    := ("NOT" | "-") unary | near
    near     := atom (("NEAR/n" | "SENTENCE") atom)*      n from 0 (adjacent) to 1000
    atom     := "(" or ")" | [field ":"] term
    term     := word | word* (prefix) | "exact phrase" | @alias
    field    := title | text | url | source | lang

Terms are folded (NFKC, case, width, format characters, Traditional → Simplified) when the
query is compiled, so `國家安全部`, `国家安全部` and `ＭＳＳ`/`mss` mean the same thing.
Mistakes that would silently match nothing are errors (an unknown `field:`, a malformed
`NEAR/n`, a query too long or too deep); operator words in lower case, which are searched
as words, are warned about by `query_warnings`.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from lark import Lark, Token, Transformer, Tree, UnexpectedInput, v_args
from lark.exceptions import VisitError

from basis.errors import UsageError
from basis.folding import drop_format, fold

FIELDS = ("title", "text", "url", "source", "lang")
_GRAMMAR = r"""
?start: or_
?or_: and_ (_OR and_)*
?and_: unary (_AND? unary)*
?unary: _NOT unary -> not_
      | MINUS unary -> not_
      | near
?near: atom (NEAR_OP atom)*
?atom: "(" or_ ")"
     | FIELD term -> field
     | term
?term: PHRASE -> phrase
     | ALIAS -> alias
     | WORD -> word

_OR.2: /OR(?![^\s()"])/
_AND.2: /AND(?![^\s()"])/
_NOT.2: /NOT(?![^\s()"])/
NEAR_OP.2: /(NEAR\/\d+|SENTENCE)(?![^\s()"])/
MINUS: /-(?=[^\s-])/
FIELD.3: /(title|text|url|source|lang):/
PHRASE: /"[^"]+"/
ALIAS: /@[A-Za-z0-9_-]+/
WORD: /[^\s()"@\-][^\s()"]*/
%import common.WS
%ignore WS
"""
_KEYWORD = re.compile(r"^(AND|OR|NOT|SENTENCE|NEAR/\d+)$")
_BAD_NEAR = re.compile(r"NEAR(/|$)")  # a word that is no NEAR/n but meant one
_FIELD_LIKE = re.compile(r"([A-Za-z][A-Za-z_]*):(?!//)")  # titel:asylum, not https://
_LOWER_OPERATOR = re.compile(r"and|or|not|near/\d+", re.IGNORECASE)
MAX_DISTANCE = 1000  # of NEAR/n
MAX_LENGTH = 10_000  # characters of a query
MAX_DEPTH = 100  # operators nested in one another (NEAR chains count each NEAR)


class QuerySyntaxError(UsageError, ValueError):
    """A query that does not parse; `column` is 1-based."""

    def __init__(self, query: str, column: int, reason: str) -> None:
        self.query, self.column, self.reason = query, column, reason
        super().__init__(f"syntax error at column {column}: {reason}")

    def caret(self, width: int = 60) -> str:
        """The query (`width` characters either side of the column when it is longer),
        and a caret under the column."""
        start = max(0, self.column - 1 - width)
        end = self.column - 1 + width
        line = ("…" if start else "") + self.query[start:end] + ("…" if end < len(self.query)
                                                                 else "")
        return f"{line}\n{' ' * (self.column - 1 - start + bool(start))}^"


# ---------------------------------------------------------------- the tree

@dataclass(frozen=True)
class Term:
    """A word, a `prefix*` or an "exact phrase", already folded; `field` None means
    title and text."""

    text: str
    field: str | None = None
    prefix: bool = False
    phrase: bool = False

    def __str__(self) -> str:
        word = self.text + ("*" if self.prefix else "")
        quoted = self.phrase or _FIELD_LIKE.match(word)  # a word like titel:asylum too
        body = f'"{word}"' if quoted else word
        return f"{self.field}:{body}" if self.field else body


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return "(" + " AND ".join(map(str, self.children)) + ")"


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return "(" + " OR ".join(map(str, self.children)) + ")"


@dataclass(frozen=True)
class Not:
    child: Node

    def __str__(self) -> str:
        return f"NOT {self.child}"


@dataclass(frozen=True)
class Near:
    """Both sides within `distance` words (Latin) or characters (CJK); `distance` None
    means within one sentence (SENTENCE)."""

    left: Node
    right: Node
    distance: int | None

    def __str__(self) -> str:
        op = "SENTENCE" if self.distance is None else f"NEAR/{self.distance}"
        return f"({self.left} {op} {self.right})"


Node = Term | And | Or | Not | Near


# ---------------------------------------------------------------- parsing

@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


def parse_query(query: str, aliases: Mapping[str, Sequence[str]] | None = None) -> Node:
    """Parse and fold a query; `@name` expands to the OR of the alias's terms."""
    query, tree = _parse(query)
    try:
        return _Build(query, aliases or {}).transform(tree)
    except VisitError as exc:
        raise exc.orig_exc from None


def _parse(query: str) -> tuple[str, Tree]:
    """The query normalized, and its parse tree, checked for size and depth."""
    # full-width （）＂＊： are operators too; invisible format characters are nothing
    query = drop_format(unicodedata.normalize("NFKC", query))
    if not query.strip():
        raise QuerySyntaxError(query, 1, "the query is empty")
    if len(query) > MAX_LENGTH:
        raise QuerySyntaxError(query, MAX_LENGTH + 1, f"the query is longer than "
                                                      f"{MAX_LENGTH:,} characters")
    try:
        tree = _parser().parse(query)
    except UnexpectedInput as exc:
        at_end = getattr(getattr(exc, "token", None), "type", None) == "$END"
        column = len(query.rstrip()) + 1 if at_end or exc.column < 1 else exc.column
        raise QuerySyntaxError(query, column, _reason(exc)) from None
    deep = _too_deep(tree)
    if deep is not None:
        raise QuerySyntaxError(query, deep.column or 1,
                               f"the query nests operators more than {MAX_DEPTH} deep here")
    return query, tree


def _too_deep(tree: Tree) -> Token | None:
    """Where operators are first nested more than MAX_DEPTH deep, if anywhere (found
    without recursion: the tree may be deeper than Python's recursion allows). A chain
    `a NEAR/1 b NEAR/1 c` nests each NEAR in the next."""
    stack: list[tuple[Tree | Token, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data == "near":
            ops = node.children[1::2]
            if depth + len(ops) > MAX_DEPTH:
                return ops[MAX_DEPTH - depth]
            depth += len(ops)
        elif node.data in ("and_", "or_", "not_"):
            depth += 1
            if depth > MAX_DEPTH:
                while isinstance(node, Tree):
                    node = node.children[0]
                return node
        stack.extend((child, depth) for child in node.children)
    return None


def query_warnings(query: str) -> list[str]:
    """What is legal but surely not meant: operator words in lower case between terms
    (`spy and students`), searched as words; each warning shows the query fixed."""
    try:
        query, tree = _parse(query)
    except QuerySyntaxError:
        return []
    tokens = sorted(tree.scan_values(lambda v: isinstance(v, Token)), key=lambda t: t.start_pos)
    lower = [t for i, t in enumerate(tokens)
             if t.type == "WORD" and _LOWER_OPERATOR.fullmatch(t) and t != t.upper()
             and i + 1 < len(tokens) and (i > 0 or t.lower() == "not")]
    if not lower:
        return []
    fixed = query
    for token in reversed(lower):
        fixed = fixed[:token.start_pos] + token.upper() + fixed[token.end_pos:]
    return [f"lower-case {', '.join(lower)}: searched as words, not as operators; for the "
            f"operators write: {fixed}"]


def _reason(exc: UnexpectedInput) -> str:
    token = getattr(exc, "token", None)
    if token is not None and token.type == "$END":
        return "the query ends too early (an operator or '(' without what follows)"
    if token is not None:
        return f"unexpected {str(token)!r}"
    char = getattr(exc, "char", None)
    return f"unexpected {char!r}" if char else "unexpected input"


def term_from_text(text: str, field: str | None = None) -> Term:
    """A bare alias entry or word, folded: several words make a phrase, a trailing `*`
    (or full-width `＊`) a prefix. Raises ValueError for a term without letters or digits."""
    words = fold(text).strip().strip('"').split()
    if not any(char.isalnum() for word in words for char in word):
        raise ValueError(f"{text.strip() or 'an empty phrase'!r} has no letters or digits "
                         "to search for")
    if len(words) > 1:
        return Term(" ".join(words), field, phrase=True)
    prefix = words[0].endswith("*")
    return Term(words[0].rstrip("*"), field, prefix=prefix)


@v_args(inline=True)
class _Build(Transformer):
    def __init__(self, query: str, aliases: Mapping[str, Sequence[str]]) -> None:
        super().__init__()
        self.query = query
        self.aliases = aliases

    def word(self, token: Token) -> Term:
        if _KEYWORD.match(token):
            raise QuerySyntaxError(self.query, token.column, f"{token!s} needs a term on "
                                                             "each side")
        if _BAD_NEAR.match(token):
            raise QuerySyntaxError(self.query, token.column, f"{token!s}: write NEAR/n, n "
                                   f"a number of words from 0 (adjacent) to {MAX_DISTANCE}")
        field = _FIELD_LIKE.match(token)
        if field:
            name = field.group(1)
            close = difflib.get_close_matches(name.lower(), FIELDS, n=1)
            hint = f"did you mean {close[0]}:? " if close else ""
            raise QuerySyntaxError(self.query, token.column, f"unknown field {name}: ({hint}"
                                   f"fields: {', '.join(FIELDS)}; to search the word as "
                                   f'written, quote it: "{token!s}")')
        return self._term(token)

    def phrase(self, token: Token) -> Term:
        return self._term(token)

    def _term(self, token: Token) -> Term:
        try:
            return term_from_text(str(token))
        except ValueError as exc:
            raise QuerySyntaxError(self.query, token.column, str(exc)) from None

    def alias(self, token: Token) -> Node:
        name = str(token)[1:]
        if name not in self.aliases:
            known = ", ".join(sorted(self.aliases)) or "none defined"
            raise QuerySyntaxError(self.query, token.column, f"unknown alias @{name} "
                                                             f"(known: {known})")
        try:
            terms = tuple(term_from_text(t) for t in self.aliases[name])
        except ValueError as exc:
            raise QuerySyntaxError(self.query, token.column, f"alias @{name}: {exc}") from None
        return terms[0] if len(terms) == 1 else Or(terms)

    def field(self, token: Token, node: Node) -> Node:
        return _with_field(node, str(token)[:-1])

    def not_(self, *args: object) -> Not:
        return Not(args[-1])  # type: ignore[arg-type]

    def near(self, *args: object) -> Node:
        node = args[0]
        for op, right in zip(args[1::2], args[2::2], strict=True):
            for side in (node, right):
                if not _is_text(side):  # type: ignore[arg-type]
                    raise QuerySyntaxError(self.query, op.column,  # type: ignore[attr-defined]
                                           f"{op} needs words on both sides, not {side}")
            distance = None if op == "SENTENCE" else self._distance(op)  # type: ignore[arg-type]
            node = Near(node, right, distance)  # type: ignore[arg-type]
        return node  # type: ignore[return-value]

    def _distance(self, op: Token) -> int:
        digits = str(op).removeprefix("NEAR/").lstrip("0") or "0"
        if len(digits) > len(str(MAX_DISTANCE)) or int(digits) > MAX_DISTANCE:
            raise QuerySyntaxError(self.query, op.column, f"NEAR/n takes at most "
                                                          f"{MAX_DISTANCE} words")
        return int(digits)

    def and_(self, *children: Node) -> And:
        return And(tuple(children))

    def or_(self, *children: Node) -> Or:
        return Or(tuple(children))


def _is_text(node: Node) -> bool:
    """Whether a node has positions in the text (what NEAR and SENTENCE measure)."""
    if isinstance(node, Term):
        return node.field not in ("source", "lang")
    if isinstance(node, Not):
        return False
    children = (node.left, node.right) if isinstance(node, Near) else node.children
    return all(_is_text(child) for child in children)


def _with_field(node: Node, field: str) -> Node:
    if isinstance(node, Term):
        return Term(node.text, field, node.prefix, node.phrase)
    if isinstance(node, Or):
        return Or(tuple(_with_field(c, field) for c in node.children))
    raise TypeError(f"a field applies to a term, not to {node}")


def terms(node: Node) -> list[Term]:
    """Every term of a query, in order."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return terms(node.child)
    if isinstance(node, Near):
        return terms(node.left) + terms(node.right)
    return [t for child in node.children for t in terms(child)]
