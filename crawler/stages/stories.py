"""Story threading (pure): an article that is not a copy joins the story of a recent report
from another outlet that states the same event — in any language. What two reports must
share is language-neutral evidence: figures (3,555 = 3555 = 三千五百五十五, $38.2 billion =
382亿美元), dates (November 20 = 11月20日), concepts (国家安全部 = Ministry of State Security,
from the bundled lexicon and config.yaml `aliases:`), names (Wang Yi = 王毅 by pinyin) and
quoted key terms (“学术合作” = "academic cooperation"), within a few days of each other. A
report is compared with a story's anchors only, so weak links never chain (see StoryIndex)."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from ahocorasick_rs import AhoCorasick, MatchKind

from basis.folding import fold

WINDOW = timedelta(days=3)
MIN_SCORE = 3.0  # shared evidence a report needs against one anchor of a story
ANCHOR_SCORE = 5.0  # a report joined on this much evidence is an anchor itself
CONCEPT_WEIGHT, CONCEPT_CAP = 0.5, 1.5  # concepts are vocabulary: they weigh little
MIN_SPECIFIC = 2  # figures, dates and names shared, at least
NEAR = timedelta(days=3)  # a date this near a report's own is its news day
LEXICON = Path(__file__).with_name("lexicon.txt")

# facts are prefixed by kind: n: number, d: date, c: concept, p: Latin-script name,
# q: a quoted Chinese term, q:c: a quoted concept;
# `~` marks the pinyin reading of what may be a Chinese personal name (王毅 → ~p:wang yi),
# which only counts against a Latin-script name, never against another reading
READING = "~"
_SCALE = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12, "万": 4, "亿": 8}
_NUMBER = re.compile(r"(?<![0-9a-z.])(\d+(?:,\d{3})*(?:\.\d+)?)(?:\s*(thousand|million|billion|"
                     r"trillion)\b|\s*([万亿]))?")
# telephone numbers with an area code are contact details, not figures: 0898-5550 1234,
# (02) 5550 1911, +61 2 5550 1911
_PHONE = re.compile(r"\+\d{1,3}(?:[- ]?\d){7,12}|\(?(?<!\d)0\d{1,3}\)?[- ]?\d{3,5}(?:[- ]\d{3,4})?")
_CN_DIGITS = dict(zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9),
                      strict=True))
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千万亿余多]{2,}")
_YEAR = re.compile(r"(?:19|20)\d\d")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_EN_DATE = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b|"
                      rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}", re.IGNORECASE)
_CN_NUM = r"(\d{1,2}|[一二三四五六七八九十]{1,3})"
_ZH_DATE = re.compile(rf"{_CN_NUM}月{_CN_NUM}日")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ZH_WEEKDAYS = {c: i for i, c in enumerate("一二三四五六日")} | {"天": 6}
_EN_WEEKDAY = re.compile(r"\bon (mon|tues|wednes|thurs|fri|satur|sun)day\b", re.IGNORECASE)
_ZH_WEEKDAY = re.compile(r"(?:周|星期|礼拜)([一二三四五六日天])")
_TODAY = re.compile(r"\b(?:today|yesterday)\b|今天|今日|昨天|昨日", re.IGNORECASE)
_ZH_DAY = re.compile(r"(?<![月\d])(\d{1,2})日")
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+\b")  # Daniel Okafor, Home Affairs
_QUOTED_HAN = re.compile(r"[“「『]([\u3400-\u9fff]{2,6})[”」』]")  # “银杉”: a storm, an app
# a key term quoted (“胁迫合作” = “coercive cooperation”): a statement's words, repeated
_QUOTE = re.compile(r"[“「『\"]([^”」』\"\n]{2,120})[”」』\"]")
_LEADING = {"a", "after", "an", "and", "as", "at", "before", "but", "by", "during", "for",
            "from", "in", "last", "next", "of", "on", "since", "the", "this", "to", "until",
            "when", "with", *(m for m in _MONTHS), "january", "february", "march", "april",
            "june", "july", "august", "september", "october", "november", "december"}
_HAN = re.compile(r"[\u3400-\u9fff]+")
_LATIN = re.compile(r"[a-z]")
# the commonest Chinese surnames (about 70% of people), and the readings a surname takes
SURNAMES = set("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
               "于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江"
               "尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤习")
_SURNAME_READING = {"曾": "zeng", "单": "shan", "区": "ou", "解": "xie", "仇": "qiu", "朴": "piao"}


class Lexicon:
    """Concepts by their terms in any language: the bundled lexicon plus alias bundles."""

    def __init__(self, bundles: Mapping[str, Sequence[str]]) -> None:
        self.terms: dict[str, set[str]] = {}  # a term may belong to several concepts
        for key, terms in bundles.items():
            for term in terms:
                self.terms.setdefault(fold(term), set()).add(key)
        # Chinese terms and numbers (a hotline) are looked for as substrings
        han = [t for t in self.terms if not _LATIN.search(t)]
        self._han = AhoCorasick(han) if han else None
        self._numbers = [t for t in han if t.isdigit()]
        # Latin terms as whole words; `term*`: any word beginning so
        self._stems = sorted({t.rstrip("*") for t in self.terms if _LATIN.search(t)})
        self._keys = [self.terms.get(stem, set()) | self.terms.get(f"{stem}*", set())
                      for stem in self._stems]
        self._open = [f"{stem}*" in self.terms for stem in self._stems]
        self._latin = AhoCorasick(self._stems, matchkind=MatchKind.LeftmostLongest) \
            if self._stems else None

    @classmethod
    def bundled(cls, aliases: Mapping[str, Sequence[str]] | None = None) -> Lexicon:
        """The lexicon file's concepts, and config.yaml's alias bundles (as `@name`)."""
        return cls({**_lexicon_file(), **{f"@{k}": v for k, v in (aliases or {}).items()}})

    def concepts(self, folded: str) -> tuple[set[str], str]:
        """The concepts named in folded text, and the text with the Latin terms and numbers
        blanked (so that "Ministry of State Security" is not a name, nor 12339 a figure)."""
        found = set() if self._han is None else set().union(*(
            self.terms[t] for t in self._han.find_matches_as_strings(folded, overlapping=True)))
        for term in self._numbers:
            folded = folded.replace(term, " ")
        if self._latin is None:
            return found, folded
        kept, at = [], 0
        for term, start, end in self._latin.find_matches_as_indexes(folded):
            if start and _word_char(folded[start - 1]):
                continue
            while self._open[term] and end < len(folded) and _word_char(folded[end]):
                end += 1
            if end < len(folded) and _word_char(folded[end]):
                continue
            found |= self._keys[term]
            kept.append(folded[at:start])
            at = end
        return found, " ".join([*kept, folded[at:]])


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


@lru_cache(maxsize=1)
def _lexicon_file() -> dict[str, tuple[str, ...]]:
    bundles = {}
    for line in LEXICON.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, terms = line.split(":", 1)
            bundles[key.strip()] = tuple(t.strip() for t in terms.split("|"))
    return bundles


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    return Lexicon.bundled()


def facts(title: str, text: str, lexicon: Lexicon | None = None,
          published: date | None = None) -> frozenset[str]:
    """What a report states that a report of the same event states too, in any language:
    numbers of three digits or more (years aside), dates (`published`: "on Friday" and
    "24日" too), concepts, names."""
    raw = f"{title}\n{text}"
    folded = fold(raw)
    lexicon = lexicon or default_lexicon()
    concepts, rest = lexicon.concepts(folded)
    found = {f"n:{n}" for n in numbers(rest)} | {f"d:{d}" for d in dates(folded, published)}
    found |= {f"c:{c}" for c in concepts}
    found |= {f"p:{name}" for name in latin_names(raw, rest)}
    found |= {f"q:{term}" for term in _QUOTED_HAN.findall(folded) if term not in lexicon.terms}
    found |= {f"q:c:{c}" for quote in _QUOTE.findall(folded) for c in lexicon.concepts(quote)[0]}
    found |= {f"{READING}p:{name}" for name in chinese_name_readings(folded)}
    return frozenset(found)


def numbers(folded: str) -> set[str]:
    """Figures of three digits or more, years aside, however written: 3,555 / 3555 /
    三千五百五十五; 38.2 billion / 382亿; 12.6万 / 126,000; 8.3 (a percentage)."""
    found = set()
    folded = _PHONE.sub(" ", folded)
    for digits, word, unit in _NUMBER.findall(folded):
        value = _decimal(digits.replace(",", ""), _SCALE.get(word or unit, 0))
        if value is not None:
            found.add(value)
    for run in _CN_NUMBER.findall(folded):
        value = chinese_numeral(run)
        if value is not None:
            found.add(str(value))
    return {n for n in found if len(n.replace(".", "")) >= 3 and not _YEAR.fullmatch(n)}


def _decimal(digits: str, exponent: int) -> str | None:
    try:
        value = Decimal(digits).scaleb(exponent)
    except InvalidOperation:
        return None
    return f"{value.normalize():f}"


def chinese_numeral(run: str) -> int | None:
    """三千五百五十五 → 3555, 四十余万 → 400000, 二〇二六 → 2026; None for words that only
    look like numerals (千万 "by all means", 万一 "in case")."""
    run = run.replace("余", "").replace("多", "")
    if not run or not any(c in _CN_DIGITS for c in run):
        return None
    if all(c in _CN_DIGITS for c in run):
        return int("".join(str(_CN_DIGITS[c]) for c in run)) if len(run) > 1 else None
    total = section = digit = 0
    for char in run:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            section += (digit or 1) * _CN_UNITS[char]
            digit = 0
        elif char == "万":
            total += (section + digit) * 10_000
            section = digit = 0
        else:  # 亿
            total = (total + section + digit) * 100_000_000
            section = digit = 0
    return total + section + digit


def dates(folded: str, published: date | None = None) -> set[str]:
    """Month and day: November 20, 20 Nov., 11月20日, 十一月二十日 → 11-20; with the
    publication date also a weekday (on Friday, 周五), today, yesterday and a bare day (24日)."""
    found = set() if published is None else {f"{d.month}-{d.day}" for d in
                                              relative_dates(folded, published)}
    for month, day, day2, month2 in _EN_DATE.findall(folded):
        found.add(f"{_MONTHS.index((month or month2)[:3].lower()) + 1}-{int(day or day2)}")
    for month, day in _ZH_DATE.findall(folded):
        m, d = _small_number(month), _small_number(day)
        if 1 <= m <= 12 and 1 <= d <= 31:
            found.add(f"{m}-{d}")
    return found


def relative_dates(folded: str, published: date) -> set[date]:
    """The days a report names relative to its publication date."""
    days = set()
    for word in _EN_WEEKDAY.findall(folded) + _ZH_WEEKDAY.findall(folded):
        weekday = _ZH_WEEKDAYS.get(word) or _WEEKDAYS.index(word[:3].lower())
        days.add(published - timedelta(days=(published.weekday() - weekday) % 7))
    for word in _TODAY.findall(folded):
        days.add(published - timedelta(days=word.lower() in ("yesterday", "昨天", "昨日")))
    for day in map(int, _ZH_DAY.findall(folded)):
        month = published if day <= published.day + 7 else \
            published.replace(day=1) - timedelta(1)  # 28日 in a report of the 2nd
        with suppress(ValueError):
            days.add(month.replace(day=day))
    return days


def _small_number(text: str) -> int:
    return int(text) if text.isdigit() else (chinese_numeral(text) or
                                             _CN_UNITS.get(text, _CN_DIGITS.get(text, 0)))


def latin_names(raw: str, rest: str) -> set[str]:
    """Multi-word names in Latin script (not the lexicon's terms): "Lin Zhi-qiang" →
    lin zhiqiang, the way a pinyin reading is written."""
    names = set()
    for name in _NAME.findall(raw):
        folded = fold(name)
        words = folded.split()
        while words and words[0] in _LEADING:  # "On November", "The Hudson Institute"
            words.pop(0)
        if len(words) > 1 and folded in rest:
            names.add(re.sub(r"(?<=[a-z])-(?=[a-z])", "", " ".join(words)))
    return names


def chinese_name_readings(folded: str) -> set[str]:
    """Pinyin of what may be a Chinese personal name: a common surname and one or two
    characters after it (王毅 → wang yi, 林志强 → lin zhiqiang)."""
    readings = set()
    for run in _HAN.findall(folded):
        for i, char in enumerate(run):
            if char not in SURNAMES:
                continue
            surname = _SURNAME_READING.get(char) or _pinyin(char)
            for given in {run[i + 1:i + 2], run[i + 1:i + 3]} - {""}:
                readings.add(f"{surname} {''.join(map(_pinyin, given))}")
    return readings


@lru_cache(maxsize=None)
def _pinyin(char: str) -> str:
    from pypinyin import lazy_pinyin  # a quarter of the CLI's start: only what stores needs it

    return lazy_pinyin(char)[0]


def shared(a: Iterable[str], b: frozenset[str]) -> frozenset[str]:
    """The evidence two reports share (a reading counts against a Latin name only)."""
    out = set()
    for fact in a:
        if fact in b and not fact.startswith(READING):
            out.add(fact)
        elif fact.startswith(READING) and fact[1:] in b:
            out.add(fact[1:])
        elif READING + fact in b:
            out.add(fact)
    return frozenset(out)


def score(evidence: Collection[str], when: Collection[date] = ()) -> float:
    """How strongly shared evidence says "the same event": figures, names, quoted terms and
    dates count one each — but the days around `when` (the reports' own: every report of
    those days names them) one in all; concepts (vocabulary: any two reports on a subject
    share it) little. Nothing without MIN_SPECIFIC of the others, one of them identifying."""
    concepts = sum(fact.startswith("c:") for fact in evidence)
    near = sum(fact.startswith("d:") and _near(fact[2:], when) for fact in evidence)
    identifying = len(evidence) - concepts - near
    day = near > 0
    if identifying < 1 or identifying + day < MIN_SPECIFIC:
        return 0.0
    return identifying + day + min(concepts * CONCEPT_WEIGHT, CONCEPT_CAP)


def _day(moment: datetime) -> str:
    return f"d:{moment.month}-{moment.day}"


def _near(month_day: str, when: Collection[date]) -> bool:
    month, day = map(int, month_day.split("-"))
    for around in when:
        for year in (around.year - 1, around.year, around.year + 1):
            with suppress(ValueError):
                if abs(date(year, month, day) - around) <= NEAR:
                    return True
    return False


@dataclass(frozen=True)
class Link:
    """Why a report joined a story: the report it was compared with and what they share."""

    story_id: int
    article_id: int
    evidence: tuple[str, ...]
    score: float

    @property
    def strong(self) -> bool:
        """Whether the report it joined is an anchor of its story too."""
        return self.score >= ANCHOR_SCORE


@dataclass(frozen=True)
class _Report:
    article_id: int
    story_id: int
    source: str
    facts: frozenset[str]
    seen_at: datetime
    dated: datetime  # published, else first seen: how near in time two reports are
    anchor: bool  # a story's first report, or one that joined on strong evidence


class StoryIndex:
    """The originals seen in the last `window`, with the facts each outlet repeats in all its
    articles (contact numbers, newsletter names) set apart as that outlet's boilerplate.
    A report joins a story on evidence against one of its anchors — never through a chain
    of weak links from report to report."""

    def __init__(self, window: timedelta = WINDOW, min_score: float = MIN_SCORE) -> None:
        self.window, self.min_score = window, min_score
        self._reports: dict[int, _Report] = {}  # by article id, oldest first
        self._by_fact: dict[str, set[int]] = {}
        self._by_source: dict[str, Counter[str]] = {}

    def __contains__(self, article_id: int) -> bool:
        return article_id in self._reports

    def link(self, source: str, found: frozenset[str], dated: datetime) -> Link | None:
        """The story of the recent anchor from another outlet sharing the most evidence."""
        own = self._distinctive(source, found)
        candidates = {article_id for fact in own for article_id in self._lookup(fact)}
        best: Link | None = None
        for article_id in sorted(candidates):
            report = self._reports[article_id]
            if report.source == source or not report.anchor or \
                    abs(report.dated - dated) > self.window:
                continue
            evidence = shared(own, self._distinctive(report.source, report.facts, 1)) | \
                {_day(report.dated)} & own | {_day(dated)} & report.facts  # the other's day
            strength = score(evidence, (dated.date(), report.dated.date()))
            if strength >= self.min_score and (best is None or strength > best.score):
                best = Link(report.story_id, article_id, tuple(sorted(evidence)), strength)
        return best

    def add(self, article_id: int, story_id: int, source: str, found: frozenset[str],
            seen_at: datetime, dated: datetime | None = None, anchor: bool = True) -> None:
        """Index a report (`anchor`: it began its story, or joined it on strong evidence;
        `dated`: published, else first seen)."""
        if article_id in self._reports:
            return
        self._reports[article_id] = _Report(article_id, story_id, source, found, seen_at,
                                            dated or seen_at, anchor)
        self._by_source.setdefault(source, Counter()).update(found)
        for fact in found:
            self._by_fact.setdefault(fact, set()).add(article_id)

    def expire(self, now: datetime) -> None:
        for article_id, report in list(self._reports.items()):
            if report.seen_at >= now - self.window:
                break
            self.discard(article_id)

    def discard(self, article_id: int) -> bool:
        """Forget a report (expired, or now a copy of a better original). → whether it
        was an anchor of its story (or not indexed: a story's first report is one)"""
        report = self._reports.pop(article_id, None)
        if report is None:
            return True
        self._by_source[report.source].subtract(report.facts)
        for fact in report.facts:
            self._by_fact[fact].discard(article_id)
            if not self._by_fact[fact]:
                del self._by_fact[fact]
        return report.anchor

    def _lookup(self, fact: str) -> set[int]:
        """Reports stating `fact`, or its counterpart across scripts."""
        if fact.startswith(READING):
            return self._by_fact.get(fact[1:], set())
        return self._by_fact.get(fact, set()) | self._by_fact.get(READING + fact, set())

    def _distinctive(self, source: str, found: frozenset[str],
                     own_count: int = 0) -> frozenset[str]:
        """`found` without the facts the outlet printed in another of its recent articles
        (`own_count`: how many times the article itself is already counted) — concepts
        aside: an outlet's beat is not its boilerplate."""
        seen = self._by_source.get(source)
        if not seen:
            return found
        return frozenset(f for f in found if seen[f] <= own_count or f.startswith("c:"))
