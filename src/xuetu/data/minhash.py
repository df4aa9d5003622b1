"""MinHash signatures and an LSH index for near-duplicate detection, vectorised over whole batches.

Shingles are character n-grams, so no tokenizer is needed for Chinese. Their length depends on the
record's script: a record in which at least a tenth of the word characters are Chinese, Japanese or
Korean (a CJK record) is cut into 3-grams (a Chinese word is one or two characters), any other into
5-grams, about an English word. With 5-grams everywhere a one-character edit left a 45-character
Chinese record about 0.8 similar, right at the old threshold, and most such copies were kept (issue
21). The CJK length and the default threshold were chosen on labelled dev pairs
(`benchmarks/dedup_pairs.py`); `benchmarks/data.py` reports precision and recall per language on the
test pairs, before and after.

The shingles of a batch of texts are hashed in one pass (a polynomial rolling hash over their code
points), and 128 multiply-shift hash functions turn them into signatures with one
`np.minimum.reduceat`, so the per-record Python cost is small. Banding parameters minimise false
positives plus false negatives around the threshold (as datasketch does), and every LSH candidate
is verified on its signature before it counts as a duplicate.
"""

from __future__ import annotations

import functools
import itertools
import re

import numpy as np

from xuetu.errors import XuetuError

NGRAM = 5
"""Shingle length of a record that is not a CJK record (English: about one word)."""
CJK_NGRAM = 2
"""Shingle length of a Chinese, Japanese or Korean record (chosen on the labelled dev pairs)."""
CJK_SHARE = 0.1
"""A record is a CJK record when at least this share of its word characters are CJK. A Chinese word is
one or two characters and an English one about five, so a tenth of the characters is about a quarter of
the words ("docker compose里 env_file 和 environment 有啥区别" is a CJK record)."""
THRESHOLD = 0.8
"""Default estimated Jaccard similarity of two records' shingle sets at which they are near duplicates,
for records that are not CJK records (5-grams; unchanged)."""
CJK_THRESHOLD = 0.75
"""The same for CJK records (3-grams; chosen with CJK_NGRAM on the Chinese dev pairs: at 5-grams and 0.8 a
one-character edit of a short Chinese record was usually missed)."""

_BASE = np.uint64(1_000_003)
_PAD = np.uint64(0x110000)  # above every code point: pads texts shorter than one shingle
_MASK32 = np.uint64(0xFFFFFFFF)
_NONE = np.empty(0, dtype=np.int64)
# Han (extension A, unified, compatibility, extensions B-H), kana and Hangul syllables
_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF),
               (0x20000, 0x3FFFF))
_OTHER_RANGES = ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x1FFF))  # digits, letters of alphabetic scripts
_CJK_RE = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _CJK_RANGES) + "]")
_OTHER_RE = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _OTHER_RANGES) + "]")
# the same ranges as a lookup: class of code point c = _CLASS[searchsorted(_STARTS, c, "right") - 1]
_NEUTRAL, _OTHER, _CJK = 0, 1, 2
_STARTS, _CLASS = map(np.array, zip(*sorted(
    [(0, _NEUTRAL)] + [(lo, _OTHER) for lo, _ in _OTHER_RANGES] + [(hi + 1, _NEUTRAL) for _, hi in _OTHER_RANGES]
    + [(lo, _CJK) for lo, _ in _CJK_RANGES] + [(hi + 1, _NEUTRAL) for _, hi in _CJK_RANGES])))
_STARTS = _STARTS.astype(np.uint64)  # the dtype of the code points: searchsorted without a float cast


def is_cjk_text(text: str) -> bool:
    """Whether `text` is a CJK record (see CJK_SHARE): what `batch_ngram_hashes` decides for each text."""
    cjk = len(_CJK_RE.findall(text))
    return cjk > 0 and cjk >= CJK_SHARE * (cjk + len(_OTHER_RE.findall(text)))


def _cjk_texts(codes: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """(count,) bool: is_cjk_text for each text, from the code points of all of them and their owners."""
    kind = _CLASS[np.searchsorted(_STARTS, codes, side="right") - 1]  # (C,)
    per_text = np.bincount(owner * 3 + kind, minlength=3 * count).reshape(count, 3)
    cjk, other = per_text[:, _CJK], per_text[:, _OTHER]
    return (cjk > 0) & (cjk >= CJK_SHARE * (cjk + other))


def check_ngrams(ngram: int, cjk_ngram: int) -> None:
    for name, n in (("ngram", ngram), ("cjk_ngram", cjk_ngram)):
        if not (isinstance(n, int) and 1 <= n <= 12):
            raise XuetuError(f"the near-dedup shingle length {name}={n!r} is not a whole number from 1 to 12",
                             f"Leave it at the default ({NGRAM} for ngram, {CJK_NGRAM} for cjk_ngram), "
                             "or pick a small whole number.")


def shingles(text: str, n: int = NGRAM, cjk_n: int = CJK_NGRAM) -> list[str]:
    """The shingles of one text, in order, as strings: what `batch_ngram_hashes` hashes.

    Slow (Python): for tests, and for giving another MinHash library the same input.
    """
    k = cjk_n if is_cjk_text(text) else n
    text = text + "\0" * (k - len(text)) if len(text) < k else text
    return [text[i:i + k] for i in range(len(text) - k + 1)]


def _codes(texts: list[str]) -> np.ndarray:
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    codes[codes == 0] = _PAD
    return codes


def batch_ngram_hashes(texts: list[str], n: int, cjk_n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of the shingles of every text, and the index of the text each belongs to.

    Shingles are the character n-grams of a text, or its cjk_n-grams when it is a CJK record (see
    `is_cjk_text`; cjk_n defaults to n). A text shorter than its shingle length is padded to it, so every
    text has at least one. Returns (hashes (M,) uint64, owner (M,) int64), grouped by owner in order.
    """
    cjk_n = n if cjk_n is None else cjk_n
    count = len(texts)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=count)
    codes = _codes(texts)  # (C,)
    if cjk_n == n:
        k = np.full(count, n)
    else:
        k = np.where(_cjk_texts(codes, np.repeat(np.arange(count), lengths), count), cjk_n, n)  # (count,)
    if np.any(lengths < k):  # pad short texts to one shingle
        texts = [t + "\0" * (int(w) - len(t)) if len(t) < w else t for t, w in zip(texts, k)]
        lengths = np.maximum(lengths, k)
        codes = _codes(texts)
    size, width = codes.size, max(n, cjk_n)
    ext = np.concatenate([codes, np.full(width - 1, _PAD, dtype=np.uint64)])  # every position has a full window
    h = np.zeros(size, dtype=np.uint64)
    short = None
    for j in range(width):  # h = sum_j codes[i + j] * BASE^(k-1-j) for a k-gram, wrapping mod 2^64
        h = h * _BASE + ext[j:j + size]
        if j + 1 == min(n, cjk_n) and cjk_n != n:
            short = h.copy()
    owner = np.repeat(np.arange(count), lengths)  # (C,)
    position = np.arange(size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    span = k[owner]
    if short is not None:
        h = np.where(span == min(n, cjk_n), short, h)
    keep = position + span <= lengths[owner]
    return h[keep] & _MASK32, owner[keep]


def ngram_hashes(text: str, n: int, cjk_n: int | None = None) -> np.ndarray:
    return batch_ngram_hashes([text], n, cjk_n)[0]


@functools.lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising the false-positive and false-negative areas around the threshold."""
    xs = np.linspace(0, 1, 201)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        r = num_perm // b
        p = 1 - (1 - xs ** r) ** b  # probability that a pair with similarity x becomes a candidate
        fp = np.trapezoid(np.where(xs < threshold, p, 0), xs)
        fn = np.trapezoid(np.where(xs >= threshold, 1 - p, 0), xs)
        if fp + fn < best_err:
            best, best_err = (b, r), fp + fn
    return best


class MinHasher:
    CHUNK = 1 << 16  # n-grams per vectorised step: bounds the (num_perm, chunk) work array to 64 MB

    def __init__(self, num_perm: int = 128, ngram: int = NGRAM, cjk_ngram: int = CJK_NGRAM, seed: int = 1):
        check_ngrams(ngram, cjk_ngram)
        rng = np.random.default_rng(seed)
        # multiply-shift hashing: (a * x + b) mod 2^64, top 32 bits; a odd
        self.a = (rng.integers(0, 1 << 63, size=(num_perm, 1), dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
        self.b = rng.integers(0, 1 << 63, size=(num_perm, 1), dtype=np.uint64)
        self.ngram, self.cjk_ngram = ngram, cjk_ngram
        self.num_perm = num_perm

    def signatures(self, texts: list[str]) -> np.ndarray:
        """(len(texts), num_perm) uint32 signatures."""
        out = np.empty((len(texts), self.num_perm), dtype=np.uint32)
        width = max(self.ngram, self.cjk_ngram)  # at most this many shingles from a padded text
        i = 0
        while i < len(texts):  # group texts so each step handles about CHUNK shingles
            j, count = i, 0
            while j < len(texts) and (count == 0 or count + len(texts[j]) <= self.CHUNK):
                count += max(len(texts[j]), width)
                j += 1
            hashes, owner = batch_ngram_hashes(texts[i:j], self.ngram, self.cjk_ngram)
            values = (self.a * hashes + self.b) >> np.uint64(32)  # (P, M)
            starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            out[i:j] = np.minimum.reduceat(values, starts, axis=1).T
            i = j
        return out

    def signature(self, text: str) -> np.ndarray:
        return self.signatures([text])[0]

    @staticmethod
    def cjk(texts: list[str]) -> np.ndarray:
        """(len(texts),) bool: which texts are CJK records (is_cjk_text, vectorised)."""
        if not texts:
            return np.zeros(0, dtype=bool)
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        return _cjk_texts(_codes(texts), np.repeat(np.arange(len(texts)), lengths), len(texts))


class LSHIndex:
    """Signatures of the records kept so far, bucketed by band."""

    def __init__(self, threshold: float = THRESHOLD, num_perm: int = 128):
        if not 0 < threshold <= 1:
            raise XuetuError(f"the near-duplicate threshold {threshold!r} is not in (0, 1]",
                             f"It is an estimated Jaccard similarity; the default is {THRESHOLD}, "
                             "and higher values merge fewer records.")
        self.threshold = threshold
        self.bands, self.rows = optimal_bands(threshold, num_perm)
        self.buckets: list[dict[int, list[int]]] = [{} for _ in range(self.bands)]
        self._store = np.empty((64, num_perm), dtype=np.uint32)  # grows by doubling
        self.ids: list[object] = []

    @property
    def signatures(self) -> np.ndarray:
        """(items, num_perm) signatures of the indexed items."""
        return self._store[: len(self.ids)]

    def _keys(self, sig: np.ndarray) -> list[int]:
        raw = sig[: self.bands * self.rows].tobytes()
        step = 4 * self.rows
        return [hash(raw[i:i + step]) for i in range(0, len(raw), step)]

    def _candidates(self, sig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions that share a band with sig (some more than once) and their similarities to it.

        Verified in one step: at low thresholds the bands are short, and a large index of similar
        records (one template, one topic) gives each query dozens of candidates.
        """
        buckets = [b for b in map(dict.get, self.buckets, self._keys(sig)) if b]
        if not buckets:
            return _NONE, _NONE
        positions = np.fromiter(itertools.chain.from_iterable(buckets), dtype=np.int64)
        return positions, np.count_nonzero(self._store[positions] == sig, axis=1) / sig.size

    def candidate_count(self, sig: np.ndarray) -> int:
        """How many indexed items share a band with sig (with repeats): the cost of querying it."""
        return sum(len(b) for b in map(dict.get, self.buckets, self._keys(sig)) if b)

    def query(self, sig: np.ndarray) -> tuple[object, float] | None:
        """The earliest indexed item at least `threshold` similar, with its estimated Jaccard similarity."""
        positions, similarity = self._candidates(sig)
        hits = np.flatnonzero(similarity >= self.threshold)
        if not hits.size:
            return None
        first = hits[np.argmin(positions[hits])]
        return self.ids[positions[first]], float(similarity[first])

    def query_all(self, sig: np.ndarray) -> list[int]:
        """Positions of every indexed item at least `threshold` similar."""
        positions, similarity = self._candidates(sig)
        return np.unique(positions[similarity >= self.threshold]).tolist()

    def insert(self, item_id, sig: np.ndarray) -> None:
        i = len(self.ids)
        if i == len(self._store):
            self._store = np.concatenate([self._store, np.empty_like(self._store)])
        self._store[i] = sig
        self.ids.append(item_id)
        for band, key in zip(self.buckets, self._keys(sig)):
            band.setdefault(key, []).append(i)


class NearDupIndex:
    """Kept records in two LSH indexes, CJK records and the others, each with its own threshold: the two
    kinds are shingled differently (see NGRAM, CJK_NGRAM), so a record is compared with its own kind."""

    def __init__(self, threshold: float = THRESHOLD, cjk_threshold: float = CJK_THRESHOLD, num_perm: int = 128):
        self.parts = (LSHIndex(threshold, num_perm), LSHIndex(cjk_threshold, num_perm))

    def query(self, sig: np.ndarray, cjk: bool) -> tuple[object, float] | None:
        return self.parts[bool(cjk)].query(sig)

    def query_all(self, sig: np.ndarray, cjk: bool) -> list:
        """The ids of every kept record of the same kind at least its threshold similar."""
        part = self.parts[bool(cjk)]
        return [part.ids[i] for i in part.query_all(sig)]

    def insert(self, item_id, sig: np.ndarray, cjk: bool) -> None:
        self.parts[bool(cjk)].insert(item_id, sig)


class PartIndex:
    """Near duplicates of records made of parts (a preference pair: prompt, chosen, rejected): a record is a near
    duplicate of a kept one when every part is, each compared with the same part, of the same kind (CJK or not),
    at that kind's threshold. Two pairs that share a prompt but not their answers are distinct.

    The candidates come from the part whose buckets hold the fewest kept records, so a part that many records
    share (one prompt, a stock refusal) costs little; the other parts are checked on their stored signatures."""

    def __init__(self, parts: int, threshold: float = THRESHOLD, cjk_threshold: float = CJK_THRESHOLD,
                 num_perm: int = 128):
        self.indexes = [NearDupIndex(threshold, cjk_threshold, num_perm) for _ in range(parts)]
        self.thresholds = (threshold, cjk_threshold)
        self.sigs: list[np.ndarray] = []  # (parts, num_perm) of each kept record
        self.kinds: list[tuple[bool, ...]] = []
        self.ids: list[object] = []

    def _similar(self, pos: int, sigs: np.ndarray, cjk: tuple[bool, ...]) -> float | None:
        """The least similarity over the parts of kept record pos, or None if a part is below its threshold."""
        if self.kinds[pos] != cjk:
            return None
        sims = np.count_nonzero(self.sigs[pos] == sigs, axis=1) / sigs.shape[1]
        if any(s < self.thresholds[c] for s, c in zip(sims, cjk)):
            return None
        return float(sims.min())

    def query(self, sigs: np.ndarray, cjk) -> tuple[object, float] | None:
        """The earliest kept record similar in every part, with the least of its parts' similarities."""
        cjk = tuple(bool(c) for c in cjk)
        counts = [idx.parts[c].candidate_count(s) for idx, s, c in zip(self.indexes, sigs, cjk)]
        k = int(np.argmin(counts))
        if counts[k] == 0:
            return None
        for pos in sorted(self.indexes[k].query_all(sigs[k], cjk[k])):
            sim = self._similar(pos, sigs, cjk)
            if sim is not None:
                return self.ids[pos], sim
        return None

    def insert(self, item_id, sigs: np.ndarray, cjk) -> None:
        pos = len(self.ids)
        cjk = tuple(bool(c) for c in cjk)
        for idx, s, c in zip(self.indexes, sigs, cjk):
            idx.insert(pos, s, c)
        self.sigs.append(np.asarray(sigs))
        self.kinds.append(cjk)
        self.ids.append(item_id)
