"""Why a query matched an article or did not: the query tree, each clause marked."""
from __future__ import annotations

from dataclasses import dataclass

from alerts.match import Document, Prepared, evaluate
from alerts.query import And, Near, Node, Not, Or, Term


@dataclass(frozen=True)
class Clause:
    depth: int
    matched: bool
    label: str
    evidence: tuple[str, ...] = ()  # the original text of what matched


def explain(query: Node, doc: Document) -> list[Clause]:
    prepared = Prepared(doc)
    lines: list[Clause] = []
    _walk(query, prepared, 0, lines)
    return lines


def _walk(node: Node, prepared: Prepared, depth: int, out: list[Clause]) -> None:
    spans = evaluate(node, prepared)
    evidence = tuple(dict.fromkeys(
        prepared.fields[f].original.__getitem__(slice(*prepared.fields[f].to_original(s, e)))
        for f, s, e in spans or () if f in prepared.fields))
    out.append(Clause(depth, spans is not None, _label(node), evidence))
    for child in _children(node):
        _walk(child, prepared, depth + 1, out)


def _label(node: Node) -> str:
    if isinstance(node, Term):
        return f"term {node}"
    if isinstance(node, Near):
        return "SENTENCE" if node.distance is None else f"NEAR/{node.distance}"
    return type(node).__name__.upper()


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Term):
        return ()
    if isinstance(node, Not):
        return (node.child,)
    if isinstance(node, Near):
        return (node.left, node.right)
    assert isinstance(node, And | Or)
    return node.children
