"""The base layer: small pure helpers every other package may use. It imports nothing of
ours (an import-linter contract in pyproject.toml holds it to that).

    errors.py     the exception tree: one base class, usage errors and runtime failures
    clock.py      the time now, aware and in UTC
    dates.py      date strings of feeds, sitemaps and pages → aware UTC datetimes
    folding.py    the comparison form of text (NFKC, case, width, Traditional → Simplified)
    languages.py  language codes as articles carry them, and detection
    urls.py       the canonical form of a URL; "is this a web URL"; endpoint URL checks
    secrets.py    masking secrets in text, URLs, documents and log records
    text.py       untrusted text from the web: printable, one line, clipped
    xml.py        lxml options for untrusted XML
"""
