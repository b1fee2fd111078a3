"""Matching benchmark (issue 5): topic rules × articles, matcher vs naive vs raw scan.

Builds N generated topic rules (3–12 terms, nested AND/OR/NOT, phrases, prefixes, fields,
some NEAR/n and SENTENCE; English, Chinese and bilingual) and M generated news articles
(about 4 KB of UTF-8 text each: English, Simplified and some Traditional Chinese), all
deterministic from a seed, then measures in one run, in CPU seconds (`time.process_time`):

* matcher: `Matcher.match(Document(...))` per article, folding and highlights included;
* preparation: `Matcher.prepare` alone, what every article costs before any rule is
           tested (folding, word sets, the scan of the matcher's keys);
* scan:    the raw Aho-Corasick scan over every key of every term and the same
           already-folded text, iterating the matches and nothing else: the floor
           (ahocorasick-rs, the matcher's library, for the JSON; pyahocorasick shown too);
* lower bound: folding, the raw scan, and making the matcher's results (Match and
           Highlight objects) again in Python from ready values: what a matcher written
           in Python that folds and returns those results spends before it tests a rule;
* naive:   `match_one` of every rule on a sample of the articles.

The measures take turns on each chunk of CHUNK articles, so that a slow spell of a noisy
machine weighs on all of them alike. It asserts that the matcher's results equal the naive
ones on that sample, prints a table, and as its last line one JSON object.

    python -m bench.matching [--rules 10000] [--articles 20000] [--seed 5]
                             [--naive-sample 16]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

import ahocorasick_rs

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.match import (  # noqa: E402
    SCANNED_FIELDS,
    Document,
    Highlight,
    Match,
    Matcher,
    match_one,
    presearch_key,
)
from alerts.query import Node, parse_query, terms  # noqa: E402
from basis.folding import fold  # noqa: E402

TARGET_PER_S = 1000
TARGET_VS_NAIVE = 100
TARGET_VS_SCAN = 3
ARTICLE_BYTES = 4096
CHUNK = 250  # articles per turn of the interleaved measures

# ---------------------------------------------------------------- vocabulary

EN_FUNCTION = """the of and to in a is that for on with as by was said it from at his her
has have be are were an this which who they will would not but its their had been also
after more than about over into new two one last year all other some when there up out
could we he she what can most before while only because under since three between during
may such against both where them these those so through including then many first us any
our very no just now if how should any while four week month told according""".split()

EN_DOMAIN = """ministry security state students espionage asylum spy spies intelligence police
arrest arrested court trial embassy consulate diplomat diplomats sanctions hacker hackers
cyber data leak leaked surveillance border visa visas deportation refugee refugees protest
protests election parliament minister foreign national law detained charged sentenced
university universities campus overseas influence interference military navy army taiwan
beijing china chinese tibet xinjiang uyghur uyghurs dissident dissidents activist activists
journalist journalists media censorship propaganda party communist government official
officials agency report investigation secret secrets classified document documents warning
threat threats attack attacks defense defence technology semiconductor semiconductors export
exports controls trade tariff tariffs economy market markets company companies bank banks
investment investors prosecutors prosecutor judge jury verdict appeal prison jail bail
police officers crackdown network networks malware ransomware phishing breach breaches
researcher researchers scientist scientists laboratory patent patents theft stolen smuggling
informant informants recruitment recruited handler handlers covert agent agents operative
operatives counterintelligence counterespionage treason subversion sedition separatism
terrorism extremism hongkong macau shanghai shenzhen guangdong washington london canberra
ottawa berlin paris brussels tokyo seoul moscow delhi sydney melbourne toronto vancouver
auckland minister's ministry's spokesperson spokesman statement press conference briefing
embassy's consular passport passports immigration citizenship residency permit permits
scholarship scholars exchange program programme confucius institute institutes lecturer
professor professors faculty academic academics funding grant grants collaboration
partnership partnerships infrastructure telecom telecommunications satellite satellites
drone drones missile missiles warship warships aircraft carrier exercise exercises drills
coast guard fishing vessel vessels island islands reef reefs dispute disputes territorial
sovereignty election interference disinformation misinformation bots accounts platform
platforms tiktok wechat weibo app apps encryption password passwords server servers cloud
hardware software chip chips lithography supply chain rare earths minerals battery
batteries electric vehicles solar steel aluminium aluminum antidumping subsidy subsidies
quota quotas embargo blacklist entity list delisting listing shares stocks yuan renminbi
dollar currency inflation growth recession property developer developers debt default
lockdown pandemic vaccine virus outbreak hospital hospitals doctors nurses health
""".split()

EN_COLLOCATIONS = """ministry of state security|national security|united front|hong kong|
state secrets|foreign agent|human rights|cyber attack|data security|national security law|
overseas students|police station|trade war|supply chain|export controls|south china sea|
communist party|prime minister|foreign ministry|chinese embassy|intelligence service|
court of appeal|asylum seekers|secret police|security services|foreign interference|
espionage charges|state media|student union|visa restrictions|trade secrets|
critical infrastructure|counter espionage law|public security bureau|military intelligence|
transnational repression|overseas police stations|united front work department|
people's liberation army|taiwan strait|belt and road|confucius institutes|
intellectual property|personal information|security review|entity list|rare earth metals
""".replace("\n", "").split("|")

# a few thousand characters of a news register, for Chinese pseudo-words
ZH_CHARS = """的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工
也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加
量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重
新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通
并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见
计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海
口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车
例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需
段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习
响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格
养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严""".replace("\n", "")

ZH_FUNCTION = list("的了在是和与也有对将被等中上为并就都而及其从到这该已于但")

ZH_DOMAIN = """国家安全部 国家安全 留学生 间谍 学生 大学 外交部 大使馆 领事馆 警方 逮捕 法院 审判
判刑 起诉 情报 机密 泄露 网络 黑客 攻击 数据 安全 监控 边境 签证 移民 难民 庇护 抗议 选举
议会 部长 外国 法律 香港 台湾 北京 上海 中国 美国 英国 日本 俄罗斯 政府 官员 机构 报告 调查
秘密 文件 警告 威胁 国防 科技 芯片 半导体 出口 管制 贸易 关税 经济 市场 公司 银行 投资 统一战线
统战部 渗透 策反 境外 反间谍法 国家秘密 军事 海军 解放军 记者 媒体 审查 宣传 共产党 人权
维吾尔 新疆 西藏 异见人士 活动人士 境外势力 间谍活动 国安 公安部 检察院 嫌疑人 案件 违法 犯罪
教育 提醒 海外 华人 社区 网络安全 个人信息 数据安全 科研 合作 交流 项目 基金 外交官 驱逐 制裁
声明 发言人 记者会 新闻 社会 发展 建设 工作 问题 会议 表示 指出 认为 今年 去年 目前 相关 部门
国际 地区 人员 进行 通过 开展 加强 坚决 依法 维护 窃取 境外间谍 情报机构 国家安全机关 敏感
涉密 保密 军工 航天 卫星 无人机 导弹 军舰 演习 海警 渔船 岛礁 主权 领土 争端 虚假信息 社交媒体
平台 账号 微信 微博 加密 服务器 供应链 稀土 电池 电动汽车 光伏 钢铁 补贴 反倾销 禁运 实体清单
人民币 美元 通胀 增长 衰退 房地产 开发商 债务 违约 疫情 疫苗 病毒 医院 医生 学者 教授 研究人员
实验室 专利 知识产权 奖学金 孔子学院 大学生 研究生 毕业 求职 诈骗 电信诈骗 跨境 警务站 海外警察站
""".split()

OPERATORS = {"and", "or", "not", "near", "sentence"}


def _pseudo_words(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    onsets = ("b c d f g h j k l m n p r s t v w z br ch cl cr dr fl fr gl gr pl pr sc sh sk "
              "sl sp st str th tr").split()
    vowels = "a e i o u ai ea ee io oa ou ia".split()
    codas = ["", "", "n", "r", "s", "t", "l", "nd", "st", "rt", "ng", "ck", "m", "x"]
    out: list[str] = []
    seen = set(taken) | OPERATORS
    while len(out) < n:
        word = "".join(rng.choice(onsets) + rng.choice(vowels)
                       for _ in range(rng.choice((1, 2, 2, 2, 3, 3)))) + rng.choice(codas)
        if 3 <= len(word) <= 12 and word not in seen:
            seen.add(word)
            out.append(word)
    return out


def _zh_pseudo_words(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    seen = set(taken)
    while len(out) < n:
        word = "".join(rng.choice(ZH_CHARS) for _ in range(rng.choice((2, 2, 2, 3))))
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def _s2t_table() -> dict[int, str]:
    """Simplified → Traditional by character (first candidate of OpenCC's STCharacters)."""
    import opencc

    path = Path(opencc.__file__).with_name("dictionary") / "STCharacters.txt"
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        simplified, _, traditional = line.partition("\t")
        if len(simplified) == 1 and traditional:
            table[ord(simplified)] = traditional.split()[0]
    return table


class Zipf:
    """Draws from a list with weight 1/(rank + offset)^s."""

    def __init__(self, items: list[str], s: float = 1.0, offset: float = 2.0) -> None:
        self.items = items
        self.cum = list(accumulate(1.0 / (i + offset) ** s for i in range(len(items))))

    def draw(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.items, cum_weights=self.cum, k=k)

    def one(self, rng: random.Random) -> str:
        return self.items[bisect_right(self.cum, rng.random() * self.cum[-1])]


class World:
    """Vocabularies and topics; articles and rules are drawn around the same topics, so a
    realistic small fraction of the rules matches each article."""

    def __init__(self, seed: int, n_topics: int = 400) -> None:
        rng = random.Random(seed)
        self.s2t = _s2t_table()
        domain = list(dict.fromkeys(EN_DOMAIN))
        pseudo = _pseudo_words(rng, 4000, set(domain) | set(EN_FUNCTION))
        # the background vocabulary: domain words spread over the first ranks
        background = pseudo[:]
        for word in domain:
            background.insert(rng.randrange(0, min(len(background), 1500)), word)
        self.en_words = background
        self.en_background = Zipf(background, s=1.05, offset=20)
        self.en_function = Zipf(EN_FUNCTION, s=0.9, offset=1)
        pseudo_colloc = [f"{a} {b}" for a, b in zip(rng.sample(pseudo, 300),
                                                    rng.sample(pseudo, 300), strict=True)]
        self.en_collocations = EN_COLLOCATIONS + pseudo_colloc

        zh_domain = list(dict.fromkeys(ZH_DOMAIN))
        zh_pseudo = _zh_pseudo_words(rng, 4000, set(zh_domain))
        zh_background = zh_pseudo[:]
        for word in zh_domain:
            zh_background.insert(rng.randrange(0, min(len(zh_background), 1500)), word)
        self.zh_words = zh_background
        self.zh_background = Zipf(zh_background, s=1.05, offset=20)
        self.zh_function = Zipf(ZH_FUNCTION, s=0.8, offset=1)

        # topics: clusters of English words, collocations and Chinese words; the words of
        # the domain are popular in topics, so they recur across topics as in real news
        topic_en = Zipf(domain + pseudo[1000:2600], s=0.7, offset=30)
        topic_zh = Zipf(zh_domain + zh_pseudo[1000:2600], s=0.7, offset=30)
        colloc = Zipf(self.en_collocations, s=0.8, offset=5)
        self.topics = []
        for _ in range(n_topics):
            en = list(dict.fromkeys(topic_en.draw(rng, rng.randint(12, 24))))
            phrases = list(dict.fromkeys(colloc.draw(rng, rng.randint(1, 3))))
            zh = list(dict.fromkeys(topic_zh.draw(rng, rng.randint(10, 20))))
            self.topics.append((en, phrases, zh))

    # ------------------------------------------------------------ articles

    def article(self, rng: random.Random, index: int) -> Document:
        main = rng.randrange(len(self.topics))
        extra = rng.randrange(len(self.topics)) if rng.random() < 0.35 else None
        kind = rng.random()
        if kind < 0.65:
            title, text, lang = self._english(rng, main, extra)
        else:
            title, text = self._chinese(rng, main, extra)
            lang = "zh"
            if kind > 0.9:  # Traditional (Hong Kong, Taiwan)
                title, text, lang = title.translate(self.s2t), text.translate(self.s2t), "zh-hant"
        slug = "-".join(rng.sample(self.en_words[:3000], 4))
        source = rng.choice(("wire", "mss", "hk", "world", "xinhua", "scmp", "rfa", "bbc"))
        return Document(title, text, url=f"https://{source}.example.org/2026/11/{index}-{slug}",
                        source=source, language=lang)

    def _english(self, rng: random.Random, main: int, extra: int | None) -> tuple[str, str, str]:
        en, phrases, zh = self.topics[main]
        en2, phrases2, zh2 = self.topics[extra] if extra is not None else ([], [], [])
        topical = en + phrases + en2[: len(en2) // 2] + phrases2[:1]
        title_words = [w for w in rng.choices(topical, k=rng.randint(5, 9))]
        title = " ".join(w.capitalize() if rng.random() < 0.6 else w for w in title_words)
        paragraphs, size = [], 0
        while size < ARTICLE_BYTES:
            sentences = []
            for _ in range(rng.randint(2, 5)):
                n = rng.randint(8, 28)
                background = self.en_background.draw(rng, n)
                function = self.en_function.draw(rng, n)
                words = []
                for i in range(n):
                    r = rng.random()
                    if r < 0.42:
                        words.append(function[i])
                    elif r < 0.53:
                        word = rng.choice(en) if rng.random() < 0.8 else rng.choice(phrases)
                        words.append(word.title() if rng.random() < 0.15 else word)
                    elif r < 0.56 and en2:
                        words.append(rng.choice(en2) if rng.random() < 0.8
                                     else rng.choice(phrases2))
                    elif r < 0.5605:
                        words.append(f"({rng.choice(zh)})")  # a name given in Chinese too
                    else:
                        words.append(background[i])
                    if rng.random() < 0.06:
                        words[-1] += ","
                sentence = " ".join(words).rstrip(",")
                sentence = sentence[0].upper() + sentence[1:]
                if rng.random() < 0.1:
                    sentence = f"“{sentence},” he said"
                sentences.append(sentence + rng.choices((".", "?", "!", ";"), (90, 4, 2, 4))[0])
            paragraph = " ".join(sentences)
            paragraphs.append(paragraph)
            size += len(paragraph) + 2
        return title, "\n\n".join(paragraphs), "en"

    def _chinese(self, rng: random.Random, main: int, extra: int | None) -> tuple[str, str]:
        _, phrases, zh = self.topics[main]
        zh2 = self.topics[extra][2] if extra is not None else []
        topical = zh + zh2[: len(zh2) // 2]
        title = "".join(rng.choices(topical, k=rng.randint(3, 6)))
        paragraphs, size = [], 0
        while size < ARTICLE_BYTES:
            sentences = []
            for _ in range(rng.randint(2, 4)):
                n = rng.randint(8, 24)
                background = self.zh_background.draw(rng, n)
                function = self.zh_function.draw(rng, n)
                words = []
                for i in range(n):
                    r = rng.random()
                    if r < 0.3:
                        words.append(function[i])
                    elif r < 0.45:
                        words.append(rng.choice(zh))
                    elif r < 0.48 and zh2:
                        words.append(rng.choice(zh2))
                    elif r < 0.483:
                        words.append(f"（{rng.choice(phrases).upper()}）")
                    else:
                        words.append(background[i])
                    if rng.random() < 0.08:
                        words.append("，")
                sentence = "".join(words).strip("，")
                if rng.random() < 0.08:
                    sentence = f"“{sentence}”"
                sentences.append(sentence + rng.choices("。？！；", (90, 3, 2, 5))[0])
            paragraph = "".join(sentences)
            paragraphs.append(paragraph)
            size += len(paragraph.encode()) + 1
        return title, "\n".join(paragraphs)

    # ------------------------------------------------------------ rules

    def rule(self, rng: random.Random) -> str:
        en, phrases, zh = self.topics[rng.randrange(len(self.topics))]
        mode = rng.random()
        languages = ("en",) if mode < 0.55 else ("zh",) if mode < 0.8 else ("en", "zh")
        n_terms = rng.choices(range(3, 13), (14, 16, 15, 13, 11, 9, 8, 6, 5, 3))[0]

        def term() -> str:
            lang = rng.choice(languages)
            r = rng.random()
            if lang == "zh":
                word = rng.choice(zh) if r < 0.85 else rng.choice(self.zh_words[100:])
                if rng.random() < 0.1:
                    word = word.translate(self.s2t)
                return f"title:{word}" if rng.random() < 0.04 else word
            if r < 0.15:
                return f'"{rng.choice(phrases)}"'
            word = rng.choice(en) if r < 0.87 else rng.choice(self.en_words[100:])
            if len(word) >= 7 and rng.random() < 0.12:
                word = word[: rng.randint(4, len(word) - 2)] + "*"
            elif rng.random() < 0.1:
                word = word.upper() if len(word) <= 4 else word.capitalize()
            return f"title:{word}" if rng.random() < 0.04 else word

        def split(n: int, k: int, least: int) -> list[int]:
            sizes = [least] * k
            for _ in range(n - least * k):
                sizes[rng.randrange(k)] += 1
            return sizes

        def build(n: int, op: str, top: bool) -> str:
            if n == 1:
                return term()
            if n == 2 and not top and rng.random() < 0.25:
                near = f"NEAR/{rng.choice((3, 5, 10, 20))}" if rng.random() < 0.7 else "SENTENCE"
                return f"{term()} {near} {term()}"
            if top and op == "OR":  # alternatives of whole conjunctions, not of single words
                sizes = split(n, rng.randint(2, max(2, min(3, n // 2))), 2)
            else:
                sizes = split(n, min(n, rng.randint(2, 4)), 1)
            child_op = "OR" if op == "AND" else "AND"
            children = []
            for size in sizes:
                child = build(size, child_op, False)
                children.append(child if size == 1 else f"({child})")
            joiner = (" OR " if op == "OR" else " AND " if rng.random() < 0.7 else " ")
            body = joiner.join(children)
            if op == "AND" and rng.random() < 0.2:
                body += f" NOT {term()}" if rng.random() < 0.6 else f" -{term()}"
            return body

        query = build(n_terms, "AND" if n_terms < 4 or rng.random() < 0.85 else "OR", True)
        if rng.random() < 0.02:
            query = f"({query}) AND lang:{'zh' if 'zh' in languages else 'en'}"
        return query


# ---------------------------------------------------------------- the benchmark

def scanned_text(doc: Document) -> str:
    """What the presearcher scans: the folded scanned fields, one per line."""
    return "\n".join(fold(getattr(doc, name)) for name in SCANNED_FIELDS)


def naive_matches(rules: dict[str, Node], doc: Document) -> list:
    return [m for name, query in rules.items() if (m := match_one(name, query, doc)) is not None]


def make_results(ready: list[tuple[str, list[tuple], str]]) -> list[Match]:
    """The matcher's results made again from ready values: the Match and Highlight
    objects alone, which any matcher returning them must make."""
    return [Match(topic, tuple([Highlight(*h) for h in spans]), text)
            for topic, spans, text in ready]


def floor_scanners(keys: list[str]) -> dict[str, Callable[[list[str]], None]]:
    """The raw scans: each library's automaton over every key, iterating every
    (overlapping) match over already-folded texts, and nothing else."""
    out = {}
    automaton = ahocorasick_rs.AhoCorasick(keys)

    def scan_rs(texts: list[str]) -> None:
        for text in texts:
            for _ in automaton.find_matches_as_indexes(text, overlapping=True):
                pass

    out["ahocorasick-rs"] = scan_rs
    try:
        import ahocorasick
    except ImportError:
        return out
    py = ahocorasick.Automaton()
    for key in keys:
        py.add_word(key, key)
    py.make_automaton()

    def scan_py(texts: list[str]) -> None:
        for text in texts:
            for _ in py.iter(text):
                pass

    out["pyahocorasick"] = scan_py
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--naive-sample", type=int, default=16,
                        help="articles on which every rule is evaluated naively, and the "
                             "matcher's results checked against naive evaluation's")
    args = parser.parse_args(argv)

    clock = time.process_time
    t0 = clock()
    world = World(args.seed)
    rng = random.Random(args.seed * 7919 + 1)
    rule_texts = {f"topic-{i:05d}": world.rule(rng) for i in range(args.rules)}
    rules: dict[str, Node] = {name: parse_query(text) for name, text in rule_texts.items()}
    docs = [world.article(rng, i) for i in range(args.articles)]
    t_generate = clock() - t0
    n_terms = sum(len(terms(q)) for q in rules.values())
    text_bytes = sum(len(d.text.encode()) for d in docs)

    t0 = clock()
    matcher = Matcher(rules)
    t_build = clock() - t0
    keys = sorted({presearch_key(t) for q in rules.values() for t in terms(q)} - {None, ""})
    scanners = floor_scanners(keys)
    sample_size = max(1, min(args.naive_sample, len(docs)))
    sample = [i * len(docs) // sample_size for i in range(sample_size)]

    # Each measure in turn on each chunk of articles, so that a slow spell of this noisy
    # machine weighs on all of them alike and their ratios hold:
    # * the matcher: folding, scan, evaluation, highlights; then its results made again;
    # * `Matcher.prepare`: what every article costs before any rule is tested;
    # * folding alone, then the floor: each raw scan of the folded texts;
    # * naive evaluation of every rule, on the sampled articles in the chunk.
    times: Counter[str] = Counter()
    matched = 0
    expected: dict[int, list] = {}
    for first in range(0, len(docs), CHUNK):
        chunk = docs[first:first + CHUNK]
        for doc in chunk:  # each article's results made again right after it is matched
            t0 = clock()
            found = matcher.match(Document(doc.title, doc.text, doc.url, doc.source, doc.tags,
                                           doc.language))
            t1 = clock()
            ready = [(m.topic, [tuple(h) for h in m.highlights], m.snippet) for m in found]
            t2 = clock()
            make_results(ready)
            times["results"] += clock() - t2
            times["match"] += t1 - t0
            matched += len(found)
        t1 = clock()
        for doc in chunk:
            matcher.prepare(doc)
        t2 = clock()
        texts = [scanned_text(doc) for doc in chunk]
        times["prepare"] += t2 - t1
        times["fold"] += clock() - t2
        for name, scan in scanners.items():
            t0 = clock()
            scan(texts)
            times[name] += clock() - t0
        for i in (i for i in sample if first <= i < first + CHUNK):
            t0 = clock()
            expected[i] = naive_matches(rules, docs[i])
            times["naive"] += clock() - t0
    t_match, t_prepare, t_fold, t_naive = (times[k] for k in ("match", "prepare", "fold", "naive"))
    floors = {name: times[name] for name in scanners}
    floor_name = "ahocorasick-rs"
    t_scan = floors[floor_name]
    t_bound = t_fold + t_scan + times["results"]

    # the matcher checked against naive evaluation on the sample
    for i, want in expected.items():
        doc = docs[i]
        got = matcher.match(doc)
        if got != want:
            print(f"MISMATCH on {doc.url}: matcher {[m.topic for m in got]} "
                  f"naive {[m.topic for m in want]}", file=sys.stderr)
            for g, w in zip(got, want, strict=False):
                if g != w:
                    print(f"  first difference: {g} != {w}", file=sys.stderr)
                    break
            return 1
    sample_matches = sum(len(w) for w in expected.values())

    per_s = len(docs) / t_match
    naive_per_s = sample_size / t_naive
    scan_per_s = len(docs) / t_scan
    match_rate = matched / len(docs) / max(1, len(rules))
    rows = [
        ("rules", f"{len(rules):,} ({n_terms / max(1, len(rules)):.1f} terms each, "
                  f"{len(keys):,} distinct keys)"),
        ("articles", f"{len(docs):,} ({text_bytes / len(docs) / 1024:.1f} KiB of text each, "
                     "English, Simplified and Traditional Chinese)"),
        ("generation + parsing", f"{t_generate:.1f} s CPU"),
        ("matcher build", f"{t_build:.1f} s CPU"),
        ("matches", f"{matched:,} ({matched / len(docs):.1f} rules per article, "
                    f"{match_rate:.2%} of the rules)"),
        ("matcher", f"{per_s:,.0f} articles/s ({t_match:.1f} s CPU, folding, scan, "
                    "evaluation and highlights)"),
        ("preparation", f"{len(docs) / t_prepare:,.0f} articles/s ({t_prepare:.1f} s CPU, "
                        "`Matcher.prepare`: folding with offsets, word sets and the scan, "
                        f"before any rule is tested; {t_prepare / t_scan:.1f}× the raw scan)"),
        ("folding alone", f"{len(docs) / t_fold:,.0f} articles/s ({t_fold:.1f} s CPU, the "
                          "scanned fields through basis.folding.fold)"),
        *((f"raw scan, {name}", f"{len(docs) / t:,.0f} articles/s ({t:.1f} s CPU, every key, "
                                "already-folded text)") for name, t in floors.items()),
        ("lower bound", f"{len(docs) / t_bound:,.0f} articles/s (folding + the raw scan + "
                        f"making the {matched:,} results' Match and Highlight objects from "
                        "ready values: what a matcher in Python that folds and returns "
                        f"them spends before it tests a rule; {t_bound / t_scan:.1f}× the raw "
                        "scan)"),
        ("naive (sample)", f"{naive_per_s:,.3f} articles/s ({sample_size} articles × every "
                           f"rule, {t_naive:.1f} s CPU, {sample_matches} matches; the "
                           "matcher's results identical)"),
        ("matcher / naive", f"{per_s / naive_per_s:,.0f}× (target ≥ {TARGET_VS_NAIVE}×)"),
        ("matcher vs floor", f"{scan_per_s / per_s:.1f}× slower than the {floor_name} scan "
                             f"(target ≤ {TARGET_VS_SCAN}×)"),
        ("target", f"≥ {TARGET_PER_S:,} articles/s: "
                   f"{'met' if per_s >= TARGET_PER_S else 'MISSED'}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(json.dumps({"bench": "matching", "rules": len(rules), "articles": len(docs),
                      "articles_per_s": round(per_s, 1), "naive_per_s": round(naive_per_s, 3),
                      "scan_per_s": round(scan_per_s, 1),
                      "prepare_per_s": round(len(docs) / t_prepare, 1),
                      "bound_per_s": round(len(docs) / t_bound, 1),
                      "naive_sample": sample_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
