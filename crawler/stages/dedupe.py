"""Near-duplicate detection (pure): MinHash sketches of an article's comparison text and an
LSH index of recent sketches that names the original a copy was made from."""
from __future__ import annotations

import re
import struct
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import blake2b

from rensa import RMinHash, RMinHashLSH

from basis.folding import fold

NUM_PERM = 128
BANDS = 32  # 4 rows per band: a pair at similarity 0.6 is a candidate 99% of the time
SEED = 1128
THRESHOLD = 0.4  # fixtures: copies ≥ 0.64, unrelated articles sharing boilerplate ≤ 0.23
RETENTION = timedelta(days=30)
MIN_SHINGLES = 20  # shorter texts (teasers, empty bodies) are compared exactly only

# a content farm's pinyin gloss after Chinese characters: 学术(xué shù)
_PINYIN_GLOSS = re.compile(r"(?<=[\u3400-\u9fff])\s*\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü ]+\)")
_NON_WORD = re.compile(r"[\W_]+")
_WORD = re.compile(r"[^\W_]+")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")
# lines shorter than this are dropped before shingling: bylines, "Read more:", share
# prompts, disclaimers and the other junk copies add or drop around the body
MIN_LINE_WORDS = 12
MIN_LINE_CJK_CHARS = 30
CJK_SHINGLE = 5  # characters; Latin shingles are 3 words
# a watched page changed materially when more words or CJK characters than this differ;
# digits never count (dates, counters, view counts), nor case, punctuation or spacing
MATERIAL_CHANGE = 8
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W\d_]+")


def shingles(text: str) -> list[str]:
    """Character 5-grams of CJK text, word 3-grams of other text, taken from the folded
    body without glosses and short junk lines."""
    folded = fold(text)
    if folded.isascii():
        return _word_shingles(folded)
    if "(" in folded:
        folded = _PINYIN_GLOSS.sub("", folded)
    if sum(map(len, _CJK_RUN.findall(folded))) * 3 < len(folded):
        return _word_shingles(folded)
    lines = [_NON_WORD.sub("", line) for line in folded.splitlines()]
    body = "".join(line for line in lines if len(line) >= MIN_LINE_CJK_CHARS) or "".join(lines)
    return [body[i:i + CJK_SHINGLE] for i in range(len(body) - CJK_SHINGLE + 1)]


def _word_shingles(folded: str) -> list[str]:
    lines = [_WORD.findall(line) for line in folded.splitlines()]
    words = [w for line in lines if len(line) >= MIN_LINE_WORDS for w in line] \
        or [w for line in lines for w in line]
    return [f"{a} {b} {c}" for a, b, c in zip(words, words[1:], words[2:], strict=False)]


def material_change(old: str, new: str) -> bool:
    """Whether a watched page's new text says something the old one did not."""
    before, after = Counter(_TOKEN.findall(fold(old))), Counter(_TOKEN.findall(fold(new)))
    return (before - after).total() + (after - before).total() > MATERIAL_CHANGE


def sketch(text: str) -> RMinHash | None:
    """The MinHash of a text, or None when it is too short to compare by resemblance."""
    grams = shingles(text)
    if len(grams) < MIN_SHINGLES:
        return None
    minhash = RMinHash(NUM_PERM, SEED)
    minhash.update(grams)
    return minhash


def dump_sketch(minhash: RMinHash) -> bytes:
    return minhash.__getstate__()


def load_sketch(state: bytes) -> RMinHash | None:
    """A stored sketch; None when it was made by an incompatible version of rensa
    (the caller re-sketches the text)."""
    minhash = RMinHash(NUM_PERM, SEED)
    try:
        minhash.__setstate__(state)
    except ValueError:
        return None
    return minhash


def band_keys(minhash: RMinHash) -> tuple[int, ...]:
    """The LSH buckets of a sketch as numbers a database indexes (signed 64-bit, the same in
    every process and version): one a band of NUM_PERM / BANDS rows, the band's number
    hashed in. Two sketches are candidates when they share one, as in `RMinHashLSH`."""
    rows = NUM_PERM // BANDS
    packed = struct.pack(f"<{NUM_PERM}I", *minhash.digest())
    return tuple(sorted({int.from_bytes(blake2b(packed[band * rows * 4:(band + 1) * rows * 4],
                                                digest_size=8, salt=band.to_bytes(16)).digest(),
                                        "little", signed=True)
                         for band in range(BANDS)}))


@dataclass(frozen=True)
class Resemblance:
    original_id: int
    similarity: float


def closest_of(minhash: RMinHash, candidates: Iterable[tuple[int, RMinHash]],
               threshold: float = THRESHOLD) -> Resemblance | None:
    """Of the candidates (the original each copies, or itself; its sketch), the original of
    the most similar at or above the threshold; on a tie, the lower original id."""
    best: Resemblance | None = None
    for original_id, other in candidates:
        similarity = minhash.jaccard(other)
        if similarity >= threshold and (best is None or similarity > best.similarity
                                        or (similarity == best.similarity
                                            and original_id < best.original_id)):
            best = Resemblance(original_id, similarity)
    return best


@dataclass
class _Entry:
    minhash: RMinHash
    original_id: int
    seen_at: datetime


class NearDuplicateIndex:
    """Sketches of the articles seen in the retention window, by article id. A copy found
    here resolves to the original its closest match was copied from."""

    def __init__(self, threshold: float = THRESHOLD, retention: timedelta = RETENTION) -> None:
        self.threshold, self.retention = threshold, retention
        self._lsh = RMinHashLSH(threshold, NUM_PERM, BANDS)
        self._entries: dict[int, _Entry] = {}
        self._arrivals: deque[tuple[datetime, int]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, article_id: int) -> bool:
        return article_id in self._entries

    def closest(self, minhash: RMinHash) -> Resemblance | None:
        """The original of the most similar indexed article at or above the threshold."""
        entries = (self._entries[key] for key in self._lsh.query(minhash))
        return closest_of(minhash, ((e.original_id, e.minhash) for e in entries),
                          self.threshold)

    def add(self, article_id: int, minhash: RMinHash, original_id: int | None,
            seen_at: datetime) -> None:
        """Index an article (a copy too: a copy of a copy still finds the original)."""
        if article_id in self._entries:
            return
        self._lsh.insert(article_id, minhash)
        self._entries[article_id] = _Entry(
            minhash, article_id if original_id is None else original_id, seen_at)
        self._arrivals.append((seen_at, article_id))

    def reassign(self, former: int, original: int) -> None:
        """`original` took the place of `former`: copies of `former` resolve to it."""
        for entry in self._entries.values():
            if entry.original_id == former:
                entry.original_id = original

    def expire(self, now: datetime) -> int:
        """Forget articles seen before the retention window. → how many were dropped"""
        dropped = 0
        while self._arrivals and self._arrivals[0][0] < now - self.retention:
            _, article_id = self._arrivals.popleft()
            if self._entries.pop(article_id, None) is not None:
                self._lsh.remove(article_id)
                dropped += 1
        return dropped
