"""The topic query language: parsing into the immutable tree, precedence, folding of
terms, aliases, and syntax errors that point at the right column."""
from __future__ import annotations

import pytest

from alerts.query import (
    FIELDS,
    And,
    Near,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    parse_query,
    query_warnings,
    terms,
)

ALIASES = {
    "mss": ["國家安全部", "国安部", "Ministry of State Security", "MSS"],
    "students": ["student*", "留學生"],
    "one": ["間諜"],
}


def t(text: str, field: str | None = None, *, prefix: bool = False, phrase: bool = False) -> Term:
    return Term(text, field, prefix, phrase)


# ---------------------------------------------------------------- each operator

@pytest.mark.parametrize(("query", "tree"), [
    ("spy", t("spy")),
    ("espionage", t("espionage")),
    ("间谍", t("间谍")),
    ("spy AND students", And((t("spy"), t("students")))),
    ("spy students", And((t("spy"), t("students")))),                  # implicit AND
    ("间谍 留学生", And((t("间谍"), t("留学生")))),
    ("spy OR espionage", Or((t("spy"), t("espionage")))),
    ("间谍 OR 策反", Or((t("间谍"), t("策反")))),
    ("NOT film", Not(t("film"))),
    ("-film", Not(t("film"))),
    ("spy -film", And((t("spy"), Not(t("film"))))),
    ("spy NOT film", And((t("spy"), Not(t("film"))))),
    ("NOT NOT spy", Not(Not(t("spy")))),
    ("-(film OR movie)", Not(Or((t("film"), t("movie"))))),
    ("(spy OR espionage) students", And((Or((t("spy"), t("espionage"))), t("students")))),
    ("((spy))", t("spy")),
    ('"state security"', t("state security", phrase=True)),
    ('"國家 安全部"', t("国家 安全部", phrase=True)),
    ("student*", t("student", prefix=True)),
    ("留學*", t("留学", prefix=True)),
    ("spy NEAR/5 students", Near(t("spy"), t("students"), 5)),
    ("spy NEAR/0 students", Near(t("spy"), t("students"), 0)),
    ("国安部 NEAR/12 留学生", Near(t("国安部"), t("留学生"), 12)),
    ("spy SENTENCE students", Near(t("spy"), t("students"), None)),
    ("間諜 SENTENCE 留學生", Near(t("间谍"), t("留学生"), None)),
    ("title:spy", t("spy", "title")),
    ("text:spy", t("spy", "text")),
    ("url:spy", t("spy", "url")),
    ("source:mss-statements", t("mss-statements", "source")),
    ("source:official", t("official", "source")),
    ("lang:zh", t("zh", "lang")),
    ('title:"state security"', t("state security", "title", phrase=True)),
    ("text:student*", t("student", "text", prefix=True)),
    ("title:國家安全部", t("国家安全部", "title")),
    ("-title:film", Not(t("film", "title"))),
    ("spy covid-19", And((t("spy"), t("covid-19")))),                  # hyphen inside a word
])
def test_operator_gives_expected_tree(query: str, tree: object) -> None:
    assert parse_query(query) == tree


@pytest.mark.parametrize("field", FIELDS)
def test_every_field_is_accepted(field: str) -> None:
    assert parse_query(f"{field}:abc") == t("abc", field)


@pytest.mark.parametrize(("query", "text"), [
    ("spy", "spy"),
    ("spy AND students", "(spy AND students)"),
    ("spy students", "(spy AND students)"),
    ("spy OR espionage", "(spy OR espionage)"),
    ("-film", "NOT film"),
    ('"State Security"', '"state security"'),
    ("Student*", "student*"),
    ("a NEAR/3 b", "(a NEAR/3 b)"),
    ("a SENTENCE b", "(a SENTENCE b)"),
    ('title:"a b"', 'title:"a b"'),
    ("url:x*", "url:x*"),
])
def test_str_of_tree(query: str, text: str) -> None:
    assert str(parse_query(query)) == text


@pytest.mark.parametrize("query", [
    '("state security" OR 国家安全部 OR 国安部) AND (student* OR 留学生) AND '
    "(spy* OR espionage OR 间谍 OR 策反)",
    "(student* OR 留学生) AND (asylum OR 庇护 OR 政治庇护)",
    "a b OR c -d",
    "NOT (a OR b) NEAR/2 c",
    "NOT a NEAR/3 b SENTENCE title:c*",
    'title:"x y" OR url:z lang:en source:wire',
    "@mss @students -@one",
])
def test_str_reparses_to_the_same_tree(query: str) -> None:
    node = parse_query(query, ALIASES)
    assert parse_query(str(node)) == node


def test_mission_topics_parse_to_the_expected_tree() -> None:
    espionage = parse_query('("state security" OR 国家安全部 OR 国安部) AND (student* OR 留学生) '
                            "AND (spy* OR espionage OR 间谍 OR 策反)")
    assert espionage == And((
        Or((t("state security", phrase=True), t("国家安全部"), t("国安部"))),
        Or((t("student", prefix=True), t("留学生"))),
        Or((t("spy", prefix=True), t("espionage"), t("间谍"), t("策反"))),
    ))
    asylum = parse_query("(student* OR 留学生) AND (asylum OR 庇护 OR 政治庇护)")
    assert asylum == And((Or((t("student", prefix=True), t("留学生"))),
                          Or((t("asylum"), t("庇护"), t("政治庇护")))))


# ---------------------------------------------------------------- precedence

@pytest.mark.parametrize(("query", "tree"), [
    # NEAR binds tighter than implicit AND
    ("a b NEAR/2 c", And((t("a"), Near(t("b"), t("c"), 2)))),
    ("a NEAR/2 b c", And((Near(t("a"), t("b"), 2), t("c")))),
    ("a SENTENCE b c", And((Near(t("a"), t("b"), None), t("c")))),
    # ... and tighter than explicit AND and OR
    ("a AND b NEAR/2 c", And((t("a"), Near(t("b"), t("c"), 2)))),
    ("a OR b NEAR/2 c", Or((t("a"), Near(t("b"), t("c"), 2)))),
    # AND binds tighter than OR, implicit or explicit
    ("a b OR c", Or((And((t("a"), t("b"))), t("c")))),
    ("a OR b c", Or((t("a"), And((t("b"), t("c")))))),
    ("a OR b AND c", Or((t("a"), And((t("b"), t("c")))))),
    ("a AND b OR c AND d", Or((And((t("a"), t("b"))), And((t("c"), t("d")))))),
    # NOT binds to the next unary only
    ("NOT a b", And((Not(t("a")), t("b")))),
    ("-a OR b", Or((Not(t("a")), t("b")))),
    ("NOT a NEAR/1 b", Not(Near(t("a"), t("b"), 1))),
    # chains
    ("a OR b OR c", Or((t("a"), t("b"), t("c")))),
    ("a b AND c", And((t("a"), t("b"), t("c")))),
    ("a NEAR/3 b NEAR/2 c", Near(Near(t("a"), t("b"), 3), t("c"), 2)),
    ("a NEAR/3 b SENTENCE c", Near(Near(t("a"), t("b"), 3), t("c"), None)),
    # parentheses override
    ("(a OR b) c", And((Or((t("a"), t("b"))), t("c")))),
    ("a (b OR c) NEAR/1 d", And((t("a"), Near(Or((t("b"), t("c"))), t("d"), 1)))),
    ("(a b) NEAR/4 c", Near(And((t("a"), t("b"))), t("c"), 4)),
    # operators are whole words: ORBAN is a name, not OR + ban
    ("asylum ORBAN", And((t("asylum"), t("orban")))),
    ("spy ANDROID", And((t("spy"), t("android")))),
    ("NOTHING NOTAM", And((t("nothing"), t("notam")))),
    ("SENTENCES", t("sentences")),
    ("(a OR b)AND c", And((Or((t("a"), t("b"))), t("c")))),
])
def test_precedence(query: str, tree: object) -> None:
    assert parse_query(query) == tree


# ---------------------------------------------------------------- folding of terms

@pytest.mark.parametrize(("query", "tree"), [
    ("國家安全部", t("国家安全部")),
    ("国家安全部", t("国家安全部")),
    ("ＡＢＣ", t("abc")),
    ("ABC", t("abc")),
    ("Spy", t("spy")),
    ("ＳＴＵＤＥＮＴ*", t("student", prefix=True)),
    ("留學生 間諜 策反", And((t("留学生"), t("间谍"), t("策反")))),
    ('"State   SECURITY"', t("state security", phrase=True)),
    ('"國家安全部　提醒"', t("国家安全部 提醒", phrase=True)),   # ideographic space
    ("Straße", t("strasse")),
    ("ﬁle", t("file")),                                        # ligature
    ("𝐬𝐩𝐲", t("spy")),                                         # mathematical bold
    ("ｶｲﾄ", t("カイト")),                                        # half-width katakana
    ("title:國安部", t("国安部", "title")),
    ("lang:ZH", t("zh", "lang")),
    ("source:Official", t("official", "source")),
])
def test_terms_are_folded(query: str, tree: object) -> None:
    assert parse_query(query) == tree


def test_traditional_and_simplified_queries_give_the_same_tree() -> None:
    traditional = parse_query("(國家安全部 OR 國安部) AND 留學生 AND (間諜 OR 策反) -電影")
    simplified = parse_query("(国家安全部 OR 国安部) AND 留学生 AND (间谍 OR 策反) -电影")
    assert traditional == simplified


def test_full_width_asterisk_is_a_prefix() -> None:
    assert parse_query("spy＊") == t("spy", prefix=True)


def test_half_width_katakana_with_voiced_marks_folds_like_nfkc() -> None:
    assert parse_query("ｶﾞｲﾄﾞ") == t("ガイド")


# ---------------------------------------------------------------- aliases

def test_alias_expands_to_or_of_terms() -> None:
    assert parse_query("@mss", ALIASES) == Or((
        t("国家安全部"), t("国安部"), t("ministry of state security", phrase=True), t("mss")))


def test_multi_word_alias_entries_become_phrases() -> None:
    node = parse_query("@mss", ALIASES)
    phrases = [x for x in terms(node) if x.phrase]
    assert phrases == [t("ministry of state security", phrase=True)]


def test_alias_entries_keep_prefixes_and_are_folded() -> None:
    assert parse_query("@students", ALIASES) == Or((t("student", prefix=True), t("留学生")))


def test_single_entry_alias_is_a_term() -> None:
    assert parse_query("@one", ALIASES) == t("间谍")


def test_alias_inside_operators_and_fields() -> None:
    mss = parse_query("@mss", ALIASES)
    students = parse_query("@students", ALIASES)
    assert parse_query("@mss @students", ALIASES) == And((mss, students))
    assert parse_query("@mss NEAR/5 @students", ALIASES) == Near(mss, students, 5)
    assert parse_query("spy -@one", ALIASES) == And((t("spy"), Not(t("间谍"))))
    assert parse_query("title:@students", ALIASES) == Or((t("student", "title", prefix=True),
                                                          t("留学生", "title")))
    assert parse_query("title:@one", ALIASES) == t("间谍", "title")


def test_alias_with_no_aliases_given_is_an_error() -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse_query("spy @mss")
    assert err.value.column == 5
    assert "@mss" in str(err.value.reason)


def test_unknown_alias_is_an_error_at_its_column() -> None:
    query = "(spy OR 间谍) @nope"
    with pytest.raises(QuerySyntaxError) as err:
        parse_query(query, ALIASES)
    assert err.value.column == 13
    assert "@nope" in err.value.reason
    assert "mss" in err.value.reason  # lists the known ones
    assert err.value.caret() == query + "\n" + " " * 12 + "^"


# ---------------------------------------------------------------- syntax errors

@pytest.mark.parametrize(("query", "column"), [
    ("a OR", 5),                       # ends after an operator
    ("(a b", 5),                       # unclosed parenthesis
    ("a) b", 2),                       # stray closing parenthesis
    ("a AND AND b", 7),                # doubled operator
    ("a OR OR b", 6),
    ("OR a", 1),                       # operator first
    ("AND", 1),
    ("NOT", 4),
    ("a NOT", 6),
    ("a NEAR/3", 9),
    ("a SENTENCE", 11),
    ("a NEAR/3 NEAR/2 b", 10),
    ("a - b", 3),                      # a lone minus
    ('"abc', 1),                       # unclosed quote
    ("()", 2),
    ("a (", 4),
    ("title:(a OR b)", 7),             # a field applies to a term
    ("", 1),
    ("   ", 1),
    ("国家安全部 AND", 10),             # columns count characters, not bytes
    ("留学生 ) 间谍", 5),
    ("(國安部 OR 間諜", 11),
])
def test_syntax_error_column_and_caret(query: str, column: int) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse_query(query)
    exc = err.value
    assert isinstance(exc, ValueError)
    assert exc.column == column
    assert f"column {column}" in str(exc)
    assert exc.reason
    lines = exc.caret().split("\n")
    assert lines == [query, " " * (column - 1) + "^"]


def test_blank_phrase_is_a_syntax_error() -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse_query('spy " "')
    assert err.value.column == 5


# ---------------------------------------------------------------- mistakes that matched nothing

@pytest.mark.parametrize(("query", "column", "says"), [
    ("titel:asylum", 1, "unknown field titel: (did you mean title:?"),
    ("students TEXT:asylum", 10, "did you mean text:?"),
    ("spy (foo:bar OR x)", 6, 'quote it: "foo:bar"'),
    ("a NEAR/x b", 3, "write NEAR/n"),
    ("a NEAR b", 3, "from 0 (adjacent) to 1000"),
    ("a NEAR/-1 b", 3, "write NEAR/n"),
    ("a NEAR/5x b", 3, "write NEAR/n"),
    ("a NEAR/1.5 b", 3, "write NEAR/n"),
    ("a NEAR/1001 b", 3, "at most 1000"),
    ("a NEAR/99999999999 b", 3, "at most 1000"),     # crashed the crawl (OverflowError)
    ("a NEAR/" + "9" * 5000 + " b", 3, "at most 1000"),  # beyond int()'s digits
    ("\u200b\ufeff", 1, "empty"),
    ("x" * 10_001, 10_001, "longer than 10,000 characters"),
    ("NOT " * 101 + "spy", 405, "more than 100 deep"),
    ("(a OR " * 101 + "b" + ")" * 101, 602, "more than 100 deep"),
    (" NEAR/1 ".join("a" * 102), 903, "more than 100 deep"),  # each NEAR nests the last
])
def test_mistakes_are_errors_at_their_column(query: str, column: int, says: str) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse_query(query)
    assert (err.value.column, says in err.value.reason) == (column, True), err.value.reason
    caret = err.value.caret().split("\n")
    assert len(caret[0]) <= 122 and caret[1].endswith("^")  # a window on a long query
    at = len(caret[1]) - 1
    assert caret[0][at:at + 1] == err.value.query[column - 1:column]


def test_limits_themselves_are_allowed() -> None:
    assert parse_query("a NEAR/0 b") == Near(t("a"), t("b"), 0)  # adjacent
    assert parse_query("a NEAR/1000 b") == Near(t("a"), t("b"), 1000)
    assert parse_query("a NEAR/0007 b") == Near(t("a"), t("b"), 7)
    assert isinstance(parse_query("NOT " * 100 + "spy"), Not)
    assert parse_query(" ".join(["spy"] * 2500)) == And((t("spy"),) * 2500)  # 9,999 characters
    assert parse_query('"titel:asylum" 10:30') == And((t("titel:asylum"), t("10:30")))
    assert parse_query("url:https://x.example/a") == t("https://x.example/a", "url")
    node = parse_query('"titel:asylum" OR title:"a:b*"')
    assert parse_query(str(node)) == node


def test_format_characters_are_dropped_from_queries() -> None:
    assert parse_query("asylum\u200b") == t("asylum")
    assert parse_query("\ufeffasy\u00adlum \u200d") == t("asylum")
    assert parse_query("國家\u200b安全部 NEAR\u200b/5 spy") == Near(t("国家安全部"), t("spy"), 5)


@pytest.mark.parametrize(("query", "fixed"), [
    ("spy and students", "spy AND students"),
    ("spy near/5 students", "spy NEAR/5 students"),
    ("not spy", "NOT spy"),
    ("(spy Or 间谍) and not film", "(spy OR 间谍) AND NOT film"),
])
def test_lower_case_operators_are_warned_about_with_the_fix(query: str, fixed: str) -> None:
    parse_query(query)  # legal: the words are searched
    [warning] = query_warnings(query)
    assert warning.endswith(f"for the operators write: {fixed}")
    assert query_warnings(fixed) == []


@pytest.mark.parametrize("query", ["near students", "rock and", "AND", '"not guilty"',
                                   "spy AND students"])
def test_no_warning_for_words_that_are_no_operator(query: str) -> None:
    assert query_warnings(query) == []
