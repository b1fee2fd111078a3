"""The topic query language, parsed with lark into a small immutable tree.

    query    := or
    or       := and ("OR" and)*
    and      := unary (["AND"] unary)*          implicit AND between clauses
    unary    := ("NOT" | "-") unary | near
    near     := atom (("NEAR/n" | "SENTENCE") atom)*
    atom     := "(" or ")" | [field ":"] term
    term     := word | word* (prefix) | "exact phrase" | @alias
    field    := title | text | url | source | lang

Terms are folded (NFKC, case, width, Traditional → Simplified) when the query is compiled,
so `國家安全部`, `国家安全部` and `ＭＳＳ`/`mss` mean the same thing.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from lark import Lark, Token, Transformer, UnexpectedInput, v_args
from lark.exceptions import VisitError

from basis.errors import UsageError
from basis.folding import fold

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

_OR.2: "OR"
_AND.2: "AND"
_NOT.2: "NOT"
NEAR_OP.2: /NEAR\/\d+/ | "SENTENCE"
MINUS: /-(?=[^\s-])/
FIELD.3: /(title|text|url|source|lang):/
PHRASE: /"[^"]+"/
ALIAS: /@[A-Za-z0-9_-]+/
WORD: /[^\s()"@\-][^\s()"]*/
%import common.WS
%ignore WS
"""
_KEYWORD = re.compile(r"^(AND|OR|NOT|SENTENCE|NEAR/\d+)$")


class QuerySyntaxError(UsageError, ValueError):
    """A query that does not parse; `column` is 1-based."""

    def __init__(self, query: str, column: int, reason: str) -> None:
        self.query, self.column, self.reason = query, column, reason
        super().__init__(f"syntax error at column {column}: {reason}")

    def caret(self) -> str:
        return f"{self.query}\n{' ' * (self.column - 1)}^"


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
        body = f'"{self.text}"' if self.phrase else self.text + ("*" if self.prefix else "")
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
    query = unicodedata.normalize("NFKC", query)  # full-width （）＂＊： are operators too
    if not query.strip():
        raise QuerySyntaxError(query, 1, "the query is empty")
    try:
        tree = _parser().parse(query)
    except UnexpectedInput as exc:
        at_end = getattr(getattr(exc, "token", None), "type", None) == "$END"
        column = len(query.rstrip()) + 1 if at_end or exc.column < 1 else exc.column
        raise QuerySyntaxError(query, column, _reason(exc)) from None
    try:
        return _Build(query, aliases or {}).transform(tree)
    except VisitError as exc:
        raise exc.orig_exc from None


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
            distance = None if op == "SENTENCE" else int(str(op).split("/")[1])
            node = Near(node, right, distance)  # type: ignore[arg-type]
        return node  # type: ignore[return-value]

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
