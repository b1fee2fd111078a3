"""Language codes as articles carry them, so a topic's `languages` can match, and the
language of a text when its page declares none.

An article's language is the primary subtag of the page's declared language, lower case
(`zh-CN` → `zh`), or what py3langid detects (`en`, `zh`, …). config.yaml's codes are
brought to that form and must be a language that CLDR names or the detector can answer;
anything else would match no article at all.
"""
from __future__ import annotations

import re
from functools import lru_cache

_HAN = re.compile(r"[\u3400-\u9fff]")


def language_code(value: str) -> str:
    """`EN` → `en`, `zh-Hant` / `zh_TW` → `zh`; ValueError for an unknown language, with
    the code meant when it can tell (`Chinese`, `chi`, `cn` → `zh`)."""
    text = value.strip()
    code = text.replace("_", "-").split("-")[0].lower()
    if code in _names() or code in _detectable():
        return code
    hint = _meant(text, code)
    raise ValueError(f"unknown language {text!r}{f' (did you mean {hint!r}?)' if hint else ''}: "
                     "use a language code such as en, zh, ja, ru, fr")


def _meant(text: str, code: str) -> str | None:
    """The code for a language name, an old or 3-letter code, or a country code."""
    from babel.core import get_global
    from babel.languages import get_official_languages

    by_name = {name.lower(): c for c, name in _names().items()}
    alias = get_global("language_aliases").get(code)
    spoken = get_official_languages(code.upper()) if len(code) == 2 else ()
    return by_name.get(text.lower()) or (alias if alias in _names() else None) or \
        next(iter(spoken), None)


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """CLDR's languages (ISO 639-1 codes where one exists) → English name."""
    from babel import Locale

    return {code: name for code, name in Locale("en").languages.items() if "_" not in code}


@lru_cache(maxsize=1)
def _detectable() -> frozenset[str]:
    """What py3langid can answer, a few codes beyond CLDR's (its model loads here)."""
    import py3langid

    return frozenset(language for language, _ in py3langid.rank("mediawatch"))


def language_of(text: str, declared: str | None = None) -> str | None:
    """A declared language (`zh-CN` → `zh`), else detected from the text."""
    if declared:
        return declared.split("-")[0].split("_")[0].strip().lower() or None
    if not text.strip():
        return None
    sample = text[:2000]
    if len(_HAN.findall(sample)) > 0.2 * len(sample.replace(" ", "")):
        return "zh"
    return _classify()(sample)[0]


@lru_cache(maxsize=1)
def _classify():  # type: ignore[no-untyped-def]
    import py3langid  # loads its model on import: once, on first use

    return py3langid.classify
