"""Topics compiled once: which articles each topic admits (languages, sources or tags) and
one presearching matcher for all of them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alerts.match import Document, Match, Matcher
from alerts.query import Node, parse_query


@dataclass(frozen=True)
class TopicRule:
    name: str
    query: Node
    languages: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()  # source names or tags; empty admits all

    def admits(self, doc: Document) -> bool:
        if self.languages and (doc.language or "") not in self.languages:
            return False
        return not self.sources or bool(self.sources & {doc.source, *doc.tags})


class TopicSet:
    """All topics of a config, ready to match articles."""

    def __init__(self, rules: Sequence[TopicRule]) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self.matcher = Matcher({rule.name: rule.query for rule in rules})

    @classmethod
    def compile(cls, topics: Sequence[object], aliases: Mapping[str, Sequence[str]]) -> TopicSet:
        """From config topics (objects with name, query, languages, sources)."""
        return cls([TopicRule(t.name, parse_query(t.query, aliases),  # type: ignore[attr-defined]
                              frozenset(t.languages), frozenset(t.sources))  # type: ignore[attr-defined]
                    for t in topics])

    def match(self, doc: Document) -> list[Match]:
        admitted = [name for name, rule in self.rules.items() if rule.admits(doc)]
        return self.matcher.match(doc, only=admitted) if admitted else []
