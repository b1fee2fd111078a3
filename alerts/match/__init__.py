"""Matching articles against topic queries, in three parts:

* `reference` — what a query means: the documents, term finding, the naive `evaluate`
  and `match_one`, and the evidence of a match (highlights, snippet);
* `compiler` — rules compiled once: term ids, atoms and gates, atom clauses and their
  costs, each rule as generated Python code;
* `runtime` — `Matcher`: an article folded and scanned once, its candidate rules run
  compiled, with the same results as `match_one`.
"""
from alerts.match.reference import (
    SCANNED_FIELDS,
    Document,
    Highlight,
    Match,
    Prepared,
    evaluate,
    match_one,
    presearch_key,
    term_pattern,
)
from alerts.match.runtime import Matcher

__all__ = ["SCANNED_FIELDS", "Document", "Highlight", "Match", "Matcher", "Prepared",
           "evaluate", "match_one", "presearch_key", "term_pattern"]
