from __future__ import annotations

import pytest

from basis.folding import fold_with_offsets
from basis.urls import canonical_url
from crawler.stages.normalize import comparison_text, preferred_url, text_fingerprint


@pytest.mark.parametrize("url, expected", [
    ("HTTP://Example.COM:80/a/b?z=1&a=2#frag", "http://example.com/a/b?a=2&z=1"),
    ("https://example.com:443", "https://example.com/"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("https://x.org/p?utm_source=rss&utm_medium=feed&id=7&fbclid=IwAR0&gclid=1&mc_cid=2&spm=a.b",
     "https://x.org/p?id=7"),
    ("https://x.org/p?UTM_Campaign=x", "https://x.org/p"),
    ("https://x.org/%7euser/a%20b", "https://x.org/~user/a%20b"),
    ("https://EXAMPLE.org./news", "https://example.org/news"),
])
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_relative_link_is_resolved_against_its_base() -> None:
    assert canonical_url("../x.html?b=2&a=1#c", base="http://h.org/a/b/c.html") == \
        "http://h.org/a/x.html?a=1&b=2"


def test_declared_canonical_wins_only_on_the_same_site() -> None:
    page = "https://www.news.org/story?utm_source=x"
    assert preferred_url(page, "/canonical/story") == "https://www.news.org/canonical/story"
    assert preferred_url(page, "https://news.org/c") == "https://news.org/c"
    assert preferred_url(page, "https://evil.example/story") == "https://www.news.org/story"
    assert preferred_url(page, None) == "https://www.news.org/story"
    assert preferred_url(page, "javascript:alert(1)") == "https://www.news.org/story"


def test_comparison_text_folds_width_case_punctuation_and_script() -> None:
    assert comparison_text("國家安全部 提醒：留學生！ ＡＢＣ  Hello") == "国家安全部 提醒 留学生 abc hello"
    assert text_fingerprint("國家安全部提醒留學生。") == text_fingerprint("国家安全部提醒留学生")
    assert text_fingerprint("spy") != text_fingerprint("spies")


def test_offsets_hold_when_a_longer_and_a_shorter_fold_even_out() -> None:
    """ß → ss adds a character, a decomposed é composed loses one: same length, yet
    every character after the ß moved (found by hypothesis in test_matcher)."""
    text = "Straße spy e\u0301 "
    folded, offsets = fold_with_offsets(text)
    start = folded.index("spy")
    assert offsets is not None and text[offsets[start]:offsets[start + 2] + 1] == "spy"
