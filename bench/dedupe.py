"""Dedupe benchmark: exact fingerprint + MinHash/LSH near-copy stage vs a datasketch baseline.

Generates N news articles (about 600 words of English or 1,500 characters of Chinese, half
each, paragraphs on their own lines), 10% of them near-copies of an earlier article: a new
dateline, one or two sentences dropped, a sentence reworded, a wire footer and junk lines
("Read more: …", "关注我们…"), some Chinese copies converted to Traditional with OpenCC
`s2t` and some given pinyin glosses (学术(xué shù)). Everything is deterministic from a
seed, and article i is a pure function of (seed, i), so the articles are generated in
chunks, never all held in memory. Then, each in a fresh subprocess (so peak RSS is its own),
in CPU seconds (`time.process_time`, generation not counted):

* ours:     per article exactly what the crawler does: `text_fingerprint` (exact reprints),
            `sketch` (fold, shingles, rensa MinHash), `NearDuplicateIndex.closest` (LSH query
            and similarity check), `dump_sketch` (the state stored) and `add`, over all N;
* baseline: the way peers do it, `text.lower()`, word 3-grams (English) or character
            5-grams without whitespace and punctuation (Chinese), datasketch
            `MinHash(num_perm=128).update_batch` and `MinHashLSH(threshold=0.4)`
            `query` then `insert`, on the first `--baseline-n` articles (it is slow).

It checks our duplicate decisions against the generator's ground truth (precision and
recall of "copy of original X"), prints RSS at 0/25/50/75/100% of N so the growth of memory
can be seen, the story threading figures on the labeled fixture set (pair precision and
recall, across languages too, and the stories stage's speed), a table, and as its last line
one JSON object.

    python -m bench.dedupe [--n 100000] [--seed 7] [--baseline-n 10000]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.matching import (  # noqa: E402
    EN_COLLOCATIONS,
    EN_DOMAIN,
    EN_FUNCTION,
    ZH_DOMAIN,
    ZH_FUNCTION,
    Zipf,
    _pseudo_words,
    _s2t_table,
    _zh_pseudo_words,
)

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 3
COPY_RATE = 0.10
EN_WORDS = (500, 600)  # words per English article
ZH_LENGTH = (1250, 1500)  # characters per Chinese article
CHUNK = 1000  # articles generated at a time
START = datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc)
SPAN = timedelta(days=29)  # every article within the index's 30-day retention
CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)

# ---------------------------------------------------------------- furniture of the outlets

EN_OUTLETS = ["Valley Courier", "Harbour Herald", "Meridian Times", "Asia Ledger",
              "Northern Post", "Capital Observer", "Strait Review", "Pacific Monitor",
              "Daily Sentinel", "Coastal Chronicle"]
ZH_OUTLETS = ["南海都市报", "湖滨晚报", "东方时报", "华夏日报", "海峡快讯", "星岛观察",
              "环球视点", "京华周刊", "岭南商报", "江城新闻网"]
EN_WIRES = ["Pacific Wire", "Meridian Press", "Global Desk", "Harbour News Service"]
ZH_WIRES = ["太平洋通讯社", "环球快讯社", "海峡新闻社", "亚洲日报社"]
EN_CITIES = ["BEIJING", "HONG KONG", "TAIPEI", "WASHINGTON", "LONDON", "CANBERRA", "OTTAWA",
             "BERLIN", "TOKYO", "SYDNEY", "SINGAPORE", "BRUSSELS"]
ZH_CITIES = ["北京", "香港", "台北", "上海", "深圳", "华盛顿", "伦敦", "东京", "悉尼", "新加坡"]
MONTHS = ["Nov.", "November"]
EN_FOOTERS = [
    "{o} is an independent newsroom covering politics, security and technology across the "
    "region, and our reporting is paid for by readers rather than advertisers.",
    "Subscribe today for unlimited access to every story, the morning newsletter and our "
    "weekly investigations, delivered straight to your inbox.",
    "This site uses cookies to improve your experience and to show advertising tailored to "
    "your interests; see our cookie policy to manage your preferences.",
    "Comments are moderated and may take up to a day to appear, and abusive or off-topic "
    "comments will be removed by the {o} moderation team.",
    "Have a story or a tip for the {o} newsroom? Contact our reporters securely through the "
    "encrypted form on our website or call the news desk.",
    "{o} is a member of the national press council and follows its standards of practice "
    "for accuracy, fairness and the correction of errors.",
    "All material published by {o} is protected by copyright and may not be reproduced "
    "without the written permission of the publisher.",
]
ZH_FOOTERS = [
    "{o}致力于为读者提供及时准确深入的新闻报道与评论，欢迎订阅我们的每日简报与周末特刊。",
    "未经{o}书面授权，任何单位和个人不得转载、摘编或以其他方式使用本网站发布的新闻作品。",
    "如有新闻线索或者意见建议，欢迎通过{o}新闻热线或者官方邮箱与编辑部取得联系，我们将严格保密。",
    "本网站使用缓存技术改善浏览体验，继续访问即表示您同意我们按照隐私政策收集和使用相关信息。",
    "{o}是本地区历史最悠久的新闻机构之一，始终坚持客观公正的报道原则，接受社会各界的监督。",
    "读者评论仅代表网友个人观点，不代表{o}立场，发表评论请遵守国家相关法律法规和社区公约。",
]
EN_JUNK = ["Read more: {t}", "Related: {t}", "Follow us on {p} for breaking news",
           "Sign up for the {o} morning briefing", "Advertisement", "Click here to subscribe",
           "👉 Share this story with your friends 🔥", "Photo: {n}/{w}",
           "Disclaimer: this story was republished from a wire service"]
ZH_JUNK = ["关注我们，获取更多独家资讯", "点击上方蓝字关注{o}", "阅读原文：{t}", "相关阅读：{t}",
           "本文转载自{w}，版权归原作者所有", "👉 点赞、在看、转发，一键三连 🔥",
           "免责声明：本文仅代表作者观点", "更多精彩内容，请下载{o}客户端", "广告"]
PLATFORMS = ["X", "Facebook", "Telegram", "WhatsApp", "Instagram", "LinkedIn"]
PINYIN = """xué shù guó jiā ān quán bù zhōng wén rén dà xiǎo shàng hǎi běi jīng gōng sī
zhèng fǔ jǐng fāng fǎ yuàn jì zhě bào dào diào chá qíng bào jī mì wǎng luò shù jù xìn xī
jīng jì shì chǎng yín háng tóu zī kē jì xīn piàn mào yì guǎn zhì wài jiāo lǐng shì huì
yì xuǎn jǔ mín zhǔ lǜ shī jiào shòu yán jiū huán jìng néng yuán diàn chē hé zuò""".split()

_CJK_TOKEN = re.compile(r"^[\u3400-\u9fff]+$")
_WORD = re.compile(r"\w+")
_NON_WORD = re.compile(r"[\W_]+")


@dataclass
class Article:
    id: int  # 1-based, as the database's
    text: str
    lang: str  # "en" or "zh"
    original: int | None  # the generator's truth: the id this is a near-copy of
    traits: tuple[str, ...] = ()


def pinyin(token: str) -> str:
    return " ".join(PINYIN[ord(c) * 2654435761 % 4093 % len(PINYIN)] for c in token)


class World:
    """Vocabularies, topics and outlets; `article(i)` is a pure function of (seed, i)."""

    def __init__(self, seed: int, n_topics: int = 600) -> None:
        self.seed = seed
        rng = random.Random(f"dedupe/{seed}/world")
        self.s2t_chars = _s2t_table()
        self._opencc = None
        domain = list(dict.fromkeys(EN_DOMAIN))
        pseudo = _pseudo_words(rng, 6000, set(domain) | set(EN_FUNCTION))
        background = pseudo[:]
        for word in domain:
            background.insert(rng.randrange(0, 2000), word)
        self.en_words = background
        self.en_background = Zipf(background, s=1.0, offset=20)
        self.en_function = Zipf(EN_FUNCTION, s=0.9, offset=1)
        pseudo_colloc = [f"{a} {b}" for a, b in zip(rng.sample(pseudo, 400),
                                                    rng.sample(pseudo, 400), strict=True)]
        colloc = EN_COLLOCATIONS + pseudo_colloc

        zh_domain = list(dict.fromkeys(ZH_DOMAIN))
        zh_pseudo = _zh_pseudo_words(rng, 6000, set(zh_domain))
        zh_background = zh_pseudo[:]
        for word in zh_domain:
            zh_background.insert(rng.randrange(0, 2000), word)
        self.zh_words = zh_background
        self.zh_background = Zipf(zh_background, s=1.0, offset=20)
        self.zh_function = Zipf(ZH_FUNCTION, s=0.8, offset=1)

        topic_en = Zipf(domain + pseudo[1000:3000], s=0.7, offset=30)
        topic_zh = Zipf(zh_domain + zh_pseudo[1000:3000], s=0.7, offset=30)
        topic_colloc = Zipf(colloc, s=0.8, offset=5)
        self.topics = []
        for _ in range(n_topics):
            en = list(dict.fromkeys(topic_en.draw(rng, rng.randint(12, 24))))
            phrases = list(dict.fromkeys(topic_colloc.draw(rng, rng.randint(1, 3))))
            zh = list(dict.fromkeys(topic_zh.draw(rng, rng.randint(10, 20))))
            self.topics.append((en, phrases, zh))
        self.topic_pick = Zipf([str(i) for i in range(n_topics)], s=0.6, offset=10)

        names = [w.capitalize() for w in pseudo[3000:3200]]
        self.en_names = [f"{a} {b}" for a, b in zip(names[::2], names[1::2], strict=True)]
        self.zh_names = ["".join(rng.sample("王李张刘陈杨黄赵周吴徐孙马朱胡郭何林罗高", 1))
                         + "".join(rng.sample("伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚", 2))
                         for _ in range(100)]
        self.en_footer = {o: " ".join(s.format(o=o) for s in rng.sample(EN_FOOTERS, 3))
                          for o in EN_OUTLETS}
        self.zh_footer = {o: "".join(s.format(o=o) for s in rng.sample(ZH_FOOTERS, 2))
                          for o in ZH_OUTLETS}

    # ------------------------------------------------------------ ground truth

    def _is_copy(self, i: int) -> bool:
        return i > 1 and random.Random(f"dedupe/{self.seed}/{i}/kind").random() < COPY_RATE

    def original_of(self, i: int) -> int | None:
        """The id article i is a near-copy of (always an original), or None."""
        if not self._is_copy(i):
            return None
        rng = random.Random(f"dedupe/{self.seed}/{i}/from")
        for _ in range(100):
            if rng.random() < 0.8:  # mostly recent news, sometimes an older piece
                j = i - 1 - min(i - 2, int(rng.expovariate(1 / 300)))
            else:
                j = rng.randint(1, i - 1)
            if not self._is_copy(j):
                return j
        return None

    # ------------------------------------------------------------ articles

    def article(self, i: int) -> Article:
        original = self.original_of(i)
        if original is None:
            lang, paragraphs, outlet, extras = self._original(i)
            return Article(i, self._render(lang, paragraphs, outlet, extras), lang, None)
        return self._copy(i, original)

    def _original(self, i: int) -> tuple[str, list[list[list[str]]], str, dict]:
        rng = random.Random(f"dedupe/{self.seed}/{i}")
        lang = "en" if rng.random() < 0.5 else "zh"
        main = int(self.topic_pick.one(rng))
        extra = int(self.topic_pick.one(rng)) if rng.random() < 0.35 else None
        if lang == "en":
            outlet, paragraphs = rng.choice(EN_OUTLETS), self._english(rng, main, extra)
        else:
            outlet, paragraphs = rng.choice(ZH_OUTLETS), self._chinese(rng, main, extra)
        extras = {"header": rng.random() < 0.4, "footer": rng.random() < 0.6,
                  "traditional": lang == "zh" and rng.random() < 0.1}
        return lang, paragraphs, outlet, extras

    def _render(self, lang: str, paragraphs: list[list[list[str]]], outlet: str,
                extras: dict) -> str:
        if lang == "en":
            lines = [" ".join(" ".join(s) for s in p) for p in paragraphs]
            if extras.get("footer"):
                lines.append(self.en_footer[outlet])
            if extras.get("header"):
                lines.insert(0, f"{outlet.upper()} | News")
            text = "\n\n".join(lines)
        else:
            lines = ["".join("".join(s) for s in p) for p in paragraphs]
            if extras.get("footer"):
                lines.append(self.zh_footer[outlet])
            if extras.get("header"):
                lines.insert(0, f"{outlet} · 新闻频道")
            text = "\n".join(lines)
        if extras.get("traditional"):  # a Hong Kong or Taiwan outlet
            text = text.translate(self.s2t_chars)
        return text

    def _english(self, rng: random.Random, main: int,
                 extra: int | None) -> list[list[list[str]]]:
        en, phrases, zh = self.topics[main]
        en2, phrases2, _ = self.topics[extra] if extra is not None else ([], [], [])
        target = rng.randint(*EN_WORDS)
        paragraphs, words_so_far = [], 0
        while words_so_far < target:
            paragraph, words_in = [], 0
            while len(paragraph) < 2 or (words_in < 30 and len(paragraph) < 6):
                sentence = self._english_sentence(rng, en, phrases, zh, en2, phrases2)
                paragraph.append(sentence)
                words_in += len(sentence)
            paragraphs.append(paragraph)
            words_so_far += words_in
        return paragraphs

    def _english_sentence(self, rng: random.Random, en: list[str], phrases: list[str],
                          zh: list[str], en2: list[str], phrases2: list[str]) -> list[str]:
        n = rng.randint(8, 28)
        background = self.en_background.draw(rng, n)
        function = self.en_function.draw(rng, n)
        words = []
        for k in range(n):
            r = rng.random()
            if r < 0.42:
                words.append(function[k])
            elif r < 0.52:
                word = rng.choice(en) if r < 0.5 else rng.choice(phrases)
                words.append(word.title() if rng.random() < 0.15 else word)
            elif r < 0.55:
                if en2:
                    words.append(rng.choice(en2) if r < 0.545 else rng.choice(phrases2))
                else:
                    words.append(background[k])
            elif r < 0.5505:
                words.append(f"({rng.choice(zh)})")  # a name given in Chinese too
            else:
                words.append(background[k])
            if rng.random() < 0.06:
                words[-1] += ","
        words[-1] = words[-1].rstrip(",")
        words[0] = words[0][0].upper() + words[0][1:]
        end = rng.choices(".?!;", (90, 4, 2, 4))[0]
        if rng.random() < 0.1:
            words[0] = "“" + words[0]
            words[-1] += ",”"
            words += [rng.choice(("he", "she", "they")), "said" + end]
        else:
            words[-1] += end
        return words

    def _chinese(self, rng: random.Random, main: int,
                 extra: int | None) -> list[list[list[str]]]:
        _, phrases, zh = self.topics[main]
        zh2 = self.topics[extra][2] if extra is not None else []
        target = rng.randint(*ZH_LENGTH)
        paragraphs, size = [], 0
        while size < target:
            paragraph, chars = [], 0
            while len(paragraph) < 2 or (chars < 80 and len(paragraph) < 6):
                sentence = self._chinese_sentence(rng, zh, zh2, phrases)
                paragraph.append(sentence)
                chars += sum(map(len, sentence))
            paragraphs.append(paragraph)
            size += chars + 1
        return paragraphs

    def _chinese_sentence(self, rng: random.Random, zh: list[str], zh2: list[str],
                          phrases: list[str]) -> list[str]:
        n = rng.randint(8, 24)
        background = self.zh_background.draw(rng, n)
        function = self.zh_function.draw(rng, n)
        words = []
        for k in range(n):
            r = rng.random()
            if r < 0.3:
                words.append(function[k])
            elif r < 0.45:
                words.append(rng.choice(zh))
            elif r < 0.48:
                words.append(rng.choice(zh2) if zh2 else background[k])
            elif r < 0.483:
                words.append(f"（{rng.choice(phrases).upper()}）")
            else:
                words.append(background[k])
            if rng.random() < 0.08 and 0 < k < n - 1:
                words.append("，")
        if rng.random() < 0.08:
            words = ["“", *words, "”"]
        words.append(rng.choices("。？！；", (90, 3, 2, 5))[0])
        return words

    # ------------------------------------------------------------ near-copies

    def _copy(self, i: int, original: int) -> Article:
        lang, paragraphs, outlet, extras = self._original(original)
        rng = random.Random(f"dedupe/{self.seed}/{i}/edit")
        traits = []
        paragraphs = [[list(s) for s in p] for p in paragraphs]
        # one or two sentences dropped, from paragraphs that keep at least two
        for _ in range(rng.choice((1, 1, 2))):
            long = [p for p in paragraphs if len(p) >= 3]
            if long:
                p = rng.choice(long)
                del p[rng.randrange(len(p))]
        traits.append("dropped")
        if rng.random() < 0.8:  # a sentence reworded: a few words replaced or swapped
            sentence = rng.choice(rng.choice(paragraphs))
            draw = self.en_background if lang == "en" else self.zh_background
            for _ in range(rng.randint(2, 3)):
                k = rng.randrange(len(sentence) - 1)
                if rng.random() < 0.6 and sentence[k].isalpha():
                    sentence[k] = draw.one(rng)
                elif k + 2 < len(sentence):
                    sentence[k], sentence[k + 1] = sentence[k + 1], sentence[k]
            traits.append("reworded")
        gloss = lang == "zh" and rng.random() < 0.3
        if gloss:  # a content farm's pinyin after a few words
            spots = [(p, s, k) for p, para in enumerate(paragraphs)
                     for s, sentence in enumerate(para)
                     for k, token in enumerate(sentence) if _CJK_TOKEN.match(token)]
            for p, s, k in rng.sample(spots, min(len(spots), rng.randint(3, 8))):
                token = paragraphs[p][s][k]
                paragraphs[p][s][k] = f"{token}({pinyin(token)})"
            traits.append("pinyin")
        copy_outlet = rng.choice(EN_OUTLETS if lang == "en" else ZH_OUTLETS)
        if rng.random() < 0.5:  # republished under the other outlet's furniture
            outlet, extras = copy_outlet, {**extras, "footer": rng.random() < 0.5,
                                           "header": rng.random() < 0.4}
        text = self._render(lang, paragraphs, outlet, extras)
        lines = text.split("\n")
        sep = "\n\n" if lang == "en" else "\n"
        lines = [line for line in lines if line]
        # a new dateline: on a line of its own or in front of the first paragraph
        wire = rng.choice(EN_WIRES if lang == "en" else ZH_WIRES)
        if lang == "en":
            dateline = (f"{rng.choice(EN_CITIES)}, {rng.choice(MONTHS)} {rng.randint(1, 30)} "
                        f"({wire}) —")
            footer = (f"(Reporting by {rng.choice(self.en_names)}; Editing by "
                      f"{rng.choice(self.en_names)})")
        else:
            dateline = f"【{wire}{rng.choice(ZH_CITIES)}11月{rng.randint(1, 30)}日电】"
            footer = f"（记者：{rng.choice(self.zh_names)}　编辑：{rng.choice(self.zh_names)}）"
        first = 1 if lines[0].endswith(("| News", "新闻频道")) else 0
        if rng.random() < 0.5:
            lines.insert(first, dateline)
        else:
            lines[first] = f"{dateline} {lines[first]}" if lang == "en" \
                else dateline + lines[first]
        if rng.random() < 0.8:
            lines.append(footer)
        if rng.random() < 0.7:  # junk lines
            junk = EN_JUNK if lang == "en" else ZH_JUNK
            for _ in range(rng.randint(1, 3)):
                line = rng.choice(junk).format(
                    t=self._headline(rng, lang), o=copy_outlet, w=wire,
                    p=rng.choice(PLATFORMS), n=rng.choice(self.en_names))
                lines.insert(rng.randint(1, len(lines)), line)
            traits.append("junk")
        text = sep.join(lines)
        if lang == "zh" and not extras.get("traditional") and rng.random() < 0.35:
            text = self.opencc().convert(text)
            traits.append("traditional")
        return Article(i, text, lang, original, tuple(traits))

    def _headline(self, rng: random.Random, lang: str) -> str:
        en, phrases, zh = self.topics[int(self.topic_pick.one(rng))]
        if lang == "en":
            return " ".join(w.capitalize() for w in rng.sample(en + phrases, 5))
        return "".join(rng.sample(zh, 4))

    def opencc(self):  # noqa: ANN201 — opencc has no types
        if self._opencc is None:
            import opencc

            self._opencc = opencc.OpenCC("s2t")
        return self._opencc


def chunks(world: World, n: int, size: int = CHUNK) -> Iterator[list[Article]]:
    """Articles 1..n, `size` at a time."""
    for start in range(1, n + 1, size):
        yield [world.article(i) for i in range(start, min(n + 1, start + size))]


def seen_at(i: int, n: int) -> datetime:
    return START + SPAN * (i / max(1, n))


# ---------------------------------------------------------------- measurements (children)

def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process, in MB."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def run_ours(n: int, seed: int, sample: int) -> dict:
    from crawler.stages.dedupe import NearDuplicateIndex, dump_sketch, sketch
    from crawler.stages.normalize import text_fingerprint

    clock, wall, ns = time.process_time, time.perf_counter, time.perf_counter_ns
    world = World(seed)
    t0 = clock()
    for i in range(1, 9):  # tables and patterns are built once per process, not per article
        text = world.article(i).text
        text_fingerprint(text)
        sketch(text)
    t_warm = clock() - t0
    index = NearDuplicateIndex()
    seen_hashes: dict[str, int] = {}
    predicted = array("q", [0]) * (n + 1)  # 0: not a duplicate
    truth = array("q", [0]) * (n + 1)
    steps = dict.fromkeys(("fingerprint", "sketch", "closest", "dump", "add"), 0)
    counts = {"en": 0, "zh": 0, "copies": 0, "exact": 0, "unsketched": 0}
    traits: dict[str, int] = {}
    marks = {max(1, round(n * f)) for f in CHECKPOINTS}
    checkpoints = [{"done": 0, "rss_mb": round(rss_mb()[0], 1), "cpu_s": 0.0}]
    t_stage = t_wall = t_gen = 0.0
    t_sample = None
    start = 1
    for stop in sorted(set(range(CHUNK, n, CHUNK)) | marks | {sample, n}):
        if stop > n:
            break
        g0 = clock()
        batch = []
        for i in range(start, stop + 1):
            a = world.article(i)
            batch.append((i, a.text, seen_at(i, n)))
            counts[a.lang] += 1
            if a.original is not None:
                truth[i] = a.original
                counts["copies"] += 1
                for trait in a.traits:
                    traits[trait] = traits.get(trait, 0) + 1
        del a
        t_gen += clock() - g0
        c0, w0 = clock(), wall()
        for i, text, when in batch:
            a = ns()
            h = text_fingerprint(text)
            b = ns()
            steps["fingerprint"] += b - a
            if h in seen_hashes:
                first = seen_hashes[h]
                predicted[i] = predicted[first] or first
                counts["exact"] += 1
                continue
            seen_hashes[h] = i
            m = sketch(text)
            c = ns()
            steps["sketch"] += c - b
            if m is None:
                counts["unsketched"] += 1
                continue
            found = index.closest(m)
            d = ns()
            dump_sketch(m)
            e = ns()
            index.add(i, m, found.original_id if found else None, when)
            steps["closest"] += d - c
            steps["dump"] += e - d
            steps["add"] += ns() - e
            if found is not None:
                predicted[i] = found.original_id
        t_stage += clock() - c0
        t_wall += wall() - w0
        del batch
        if stop == sample:
            t_sample = t_stage
        if stop in marks:
            checkpoints.append({"done": stop, "rss_mb": round(rss_mb()[0], 1),
                                "cpu_s": round(t_stage, 2)})
            print(f"ours: {stop:,}/{n:,} articles, {stop / t_stage:,.0f} articles/s, "
                  f"RSS {checkpoints[-1]['rss_mb']:,.0f} MB", file=sys.stderr, flush=True)
        start = stop + 1
    tp = sum(1 for i in range(1, n + 1) if truth[i] and predicted[i] == truth[i])
    flagged = sum(1 for i in range(1, n + 1) if predicted[i])
    wrong_original = sum(1 for i in range(1, n + 1)
                         if truth[i] and predicted[i] and predicted[i] != truth[i])
    missed = {}
    for i in range(1, n + 1):
        if truth[i] and predicted[i] != truth[i]:
            a = world.article(i)
            for trait in a.traits:
                missed[trait] = missed.get(trait, 0) + 1
    return {"n": n, "cpu_s": t_stage, "wall_s": t_wall, "gen_cpu_s": t_gen,
            "warmup_cpu_s": t_warm, "sample": min(sample, n), "sample_cpu_s": t_sample,
            "steps_ns": steps, "counts": counts, "traits": traits,
            "tp": tp, "flagged": flagged, "copies": counts["copies"],
            "wrong_original": wrong_original, "missed_traits": missed,
            "indexed": len(index), "checkpoints": checkpoints, "peak_rss_mb": rss_mb()[1]}


def peer_shingles(text: str, lang: str) -> set[str]:
    lower = text.lower()
    if lang == "zh":
        body = _NON_WORD.sub("", lower)
        return {body[k:k + 5] for k in range(len(body) - 4)}
    words = _WORD.findall(lower)
    return {" ".join(words[k:k + 3]) for k in range(len(words) - 2)}


def run_baseline(n: int, seed: int) -> dict:
    from datasketch import MinHash, MinHashLSH

    clock, wall = time.process_time, time.perf_counter
    world = World(seed)
    lsh = MinHashLSH(threshold=0.4, num_perm=128)
    predicted = array("q", [0]) * (n + 1)
    truth = array("q", [0]) * (n + 1)
    t_stage = t_wall = 0.0
    done = 0
    rss0 = rss_mb()[0]
    for chunk in chunks(world, n):
        for a in chunk:
            truth[a.id] = a.original or 0
        c0, w0 = clock(), wall()
        for a in chunk:
            m = MinHash(num_perm=128)
            m.update_batch([s.encode() for s in peer_shingles(a.text, a.lang)])
            candidates = lsh.query(m)
            lsh.insert(str(a.id), m)
            if candidates:  # the earliest candidate, resolved to its original
                first = min(map(int, candidates))
                predicted[a.id] = predicted[first] or first
        t_stage += clock() - c0
        t_wall += wall() - w0
        done += len(chunk)
        print(f"baseline: {done:,}/{n:,} articles, {done / t_stage:,.0f} articles/s",
              file=sys.stderr, flush=True)
    tp = sum(1 for i in range(1, n + 1) if truth[i] and predicted[i] == truth[i])
    return {"n": n, "cpu_s": t_stage, "wall_s": t_wall, "tp": tp,
            "flagged": sum(1 for i in range(1, n + 1) if predicted[i]),
            "copies": sum(1 for i in range(1, n + 1) if truth[i]),
            "rss_start_mb": rss0, "peak_rss_mb": rss_mb()[1]}


def labeled_stories(rounds: int = 5) -> dict:
    """Story threading on the labeled fixture set (tests/fixtures/dedupe/): pair precision
    and recall (all pairs, and same-event pairs in two languages), copies placed under
    their labeled original, the reports threaded in publication order; and the speed of the
    stories stage over it (best of `rounds`)."""
    from itertools import combinations

    from crawler.stages.stories import StoryIndex, default_lexicon, facts

    path = REPO / "tests/fixtures/dedupe/articles.jsonl"
    articles = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    default_lexicon()  # built once per process, not per article
    best = float("inf")
    for _ in range(rounds):
        t0, index, story = time.process_time(), StoryIndex(), {}
        for number, a in enumerate(articles):
            if a["duplicate_of"]:
                story[a["id"]] = story[a["duplicate_of"]]
                continue
            dated = datetime.fromisoformat(a["published_at"])
            found = facts(a["title"], a["text"], published=dated.date())
            link = index.link(a["source"], found, dated)
            story[a["id"]] = link.story_id if link else -number - 1
            index.add(number, story[a["id"]], a["source"], found, dated, dated,
                      anchor=link is None or link.strong)
        best = min(best, time.process_time() - t0)
    tp = fp = fn = across = across_found = 0
    for a, b in combinations(articles, 2):
        same, said = a["story"] == b["story"], story[a["id"]] == story[b["id"]]
        tp, fp, fn = tp + (same and said), fp + (said and not same), fn + (same and not said)
        if same and a["language"] != b["language"]:
            across, across_found = across + 1, across_found + said
    originals = sum(not a["duplicate_of"] for a in articles)
    return {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
            "across": ratio(across_found, across), "articles": len(articles),
            "stories": len({a["story"] for a in articles}), "originals": originals,
            "per_s": ratio(originals, best)}


def child(kind: str, args: argparse.Namespace) -> dict:
    """Run one side in a fresh interpreter; → its result and its peak RSS."""
    cmd = [sys.executable, "-m", "bench.dedupe", "--child", kind, "--n", str(args.n),
           "--seed", str(args.seed), "--baseline-n", str(args.baseline_n)]
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed with exit status {done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result.setdefault("peak_rss_mb", children_peak)
    return result


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="articles through our stage")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline-n", type=int, default=10_000,
                        help="articles through the (slow) datasketch baseline: the first "
                             "min(N, this)")
    parser.add_argument("--child", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n < 1 or args.baseline_n < 1:
        parser.error("--n and --baseline-n must be positive")
    args.baseline_n = min(args.n, args.baseline_n)

    if args.child == "ours":
        print(json.dumps(run_ours(args.n, args.seed, args.baseline_n)))
        return 0
    if args.child == "baseline":
        print(json.dumps(run_baseline(args.baseline_n, args.seed)))
        return 0

    ours = child("ours", args)  # first, in its own process: the peak RSS is ours alone
    base = child("baseline", args)
    threads = labeled_stories()

    n = ours["n"]
    per_s = n / ours["cpu_s"]
    sample_per_s = ours["sample"] / ours["sample_cpu_s"] if ours["sample_cpu_s"] else per_s
    base_per_s = base["n"] / base["cpu_s"]
    precision = ratio(ours["tp"], ours["flagged"]) if ours["flagged"] else 1.0
    recall = ratio(ours["tp"], ours["copies"]) if ours["copies"] else 1.0
    base_precision = ratio(base["tp"], base["flagged"]) if base["flagged"] else 1.0
    base_recall = ratio(base["tp"], base["copies"]) if base["copies"] else 1.0
    counts, traits = ours["counts"], ours["traits"]
    steps = ours["steps_ns"]
    total_ns = sum(steps.values()) or 1
    checkpoints = ours["checkpoints"]
    growth = []
    for before, after in zip(checkpoints, checkpoints[1:], strict=False):
        per_article = (after["rss_mb"] - before["rss_mb"]) * 1024 / max(1, after["done"]
                                                                        - before["done"])
        growth.append(f"{per_article:.1f}")
    rows = [
        ("articles", f"{n:,} ({counts['en']:,} English of ~600 words, {counts['zh']:,} "
                     f"Chinese of ~1,500 characters; seed {args.seed})"),
        ("near-copies", f"{ours['copies']:,} ({ratio(ours['copies'], n):.1%}: "
                        + ", ".join(f"{k} {v:,}" for k, v in sorted(traits.items())) + ")"),
        ("generation", f"{ours['gen_cpu_s']:.1f} s CPU, not counted; warm-up (fold tables, "
                       f"patterns) {ours['warmup_cpu_s']:.1f} s CPU, not counted"),
        ("ours", f"{per_s:,.0f} articles/s ({ours['cpu_s']:.1f} s CPU, {ours['wall_s']:.1f} s "
                 "wall: fingerprint, sketch, LSH query + check, dump, add)"),
        ("  time split", ", ".join(f"{k} {v / total_ns:.0%}" for k, v in steps.items())),
        (f"  ours, first {ours['sample']:,}", f"{sample_per_s:,.0f} articles/s"),
        ("baseline", f"{base_per_s:,.0f} articles/s (datasketch MinHash(128) + MinHashLSH(0.4) "
                     f"on the first {base['n']:,}, {base['cpu_s']:.1f} s CPU)"),
        ("ours / baseline", f"{per_s / base_per_s:.1f}× (target ≥ {TARGET_RATIO}×: "
                            f"{'met' if per_s >= TARGET_RATIO * base_per_s else 'MISSED'})"),
        ("quality, ours", f"precision {precision:.4f}, recall {recall:.4f} ({ours['tp']:,} "
                          f"right of {ours['flagged']:,} flagged, {ours['copies']:,} copies; "
                          f"{ours['wrong_original']} wrong original, {counts['exact']} exact "
                          f"hits)"),
        ("  missed copies by trait", ", ".join(f"{k} {v}" for k, v in
                                              sorted(ours["missed_traits"].items())) or "none"),
        ("quality, baseline", f"precision {base_precision:.4f}, recall {base_recall:.4f} "
                              f"(earliest LSH candidate, no check; on its {base['n']:,})"),
        ("peak RSS, ours", f"{ours['peak_rss_mb']:,.0f} MB ({ours['indexed']:,} sketches indexed)"),
        ("peak RSS, baseline", f"{base['peak_rss_mb']:,.0f} MB (for {base['n']:,} articles)"),
        ("RSS, ours", ", ".join(f"{c['done']:,}: {c['rss_mb']:,.0f} MB" for c in checkpoints)),
        ("  growth", f"KB per article in each quarter: {', '.join(growth)}"),
        ("stories, labeled set", f"precision {threads['precision']:.4f}, recall "
                                 f"{threads['recall']:.4f}, across languages "
                                 f"{threads['across']:.4f} (gate: ≥ 0.95, ≥ 0.90, ≥ 0.80; "
                                 f"{threads['articles']} articles, {threads['stories']} stories)"),
        ("  stories stage", f"{threads['per_s']:,.0f} reports/s (evidence + link + add, "
                            f"{threads['originals']} reports in publication order)"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(json.dumps({"bench": "dedupe", "n": n, "articles_per_s": round(per_s, 1),
                      "baseline_per_s": round(base_per_s, 1),
                      "ratio": round(per_s / base_per_s, 2),
                      "peak_rss_mb": round(ours["peak_rss_mb"], 1),
                      "precision": round(precision, 4), "recall": round(recall, 4),
                      "baseline_n": base["n"], "baseline_peak_rss_mb":
                          round(base["peak_rss_mb"], 1), "seed": args.seed,
                      "story_precision": round(threads["precision"], 4),
                      "story_recall": round(threads["recall"], 4),
                      "story_recall_across_languages": round(threads["across"], 4),
                      "stories_per_s": round(threads["per_s"], 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
