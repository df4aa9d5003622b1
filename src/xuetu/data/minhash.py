"""MinHash signatures and an LSH index for near-duplicate detection, vectorised over whole batches.

Shingles are character n-grams, which works for Chinese (no spaces to split on) as well as for
English. The n-grams of a batch of texts are hashed in one pass (a polynomial rolling hash over
their code points), and 128 multiply-shift hash functions turn them into signatures with one
`np.minimum.reduceat`, so the per-record Python cost is small. Banding parameters minimise false
positives plus false negatives around the threshold (as datasketch does), and every LSH candidate
is verified on its signature before it counts as a duplicate.
"""

from __future__ import annotations

import numpy as np

_BASE = np.uint64(1_000_003)
_PAD = np.uint64(0x110000)  # above every code point: pads texts shorter than one n-gram
_MASK32 = np.uint64(0xFFFFFFFF)


def batch_ngram_hashes(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every character n-gram of every text, and the index of the text each belongs to.

    A text shorter than n counts as one (padded) n-gram. Returns (hashes (M,) uint64, owner (M,) int64),
    grouped by owner in order.
    """
    padded = [t if len(t) >= n else t + "\0" * (n - len(t)) for t in texts]
    lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    codes[codes == 0] = _PAD
    total = codes.size - n + 1
    h = np.zeros(total, dtype=np.uint64)
    for j in range(n):  # h = sum_j codes[i + j] * BASE^(n-1-j), wrapping mod 2^64
        h = h * _BASE + codes[j:j + total]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    windows = lengths - n + 1  # windows that stay inside each text
    owner = np.repeat(np.arange(len(texts)), windows)
    offset = np.arange(owner.size) - np.repeat(np.cumsum(windows) - windows, windows)
    return h[np.repeat(starts, windows) + offset] & _MASK32, owner


def ngram_hashes(text: str, n: int) -> np.ndarray:
    return batch_ngram_hashes([text], n)[0]


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

    def __init__(self, num_perm: int = 128, ngram: int = 5, seed: int = 1):
        rng = np.random.default_rng(seed)
        # multiply-shift hashing: (a * x + b) mod 2^64, top 32 bits; a odd
        self.a = (rng.integers(0, 1 << 63, size=(num_perm, 1), dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
        self.b = rng.integers(0, 1 << 63, size=(num_perm, 1), dtype=np.uint64)
        self.ngram = ngram
        self.num_perm = num_perm

    def signatures(self, texts: list[str]) -> np.ndarray:
        """(len(texts), num_perm) uint32 signatures."""
        out = np.empty((len(texts), self.num_perm), dtype=np.uint32)
        i = 0
        while i < len(texts):  # group texts so each step handles about CHUNK n-grams
            j, count = i, 0
            while j < len(texts) and (count == 0 or count + len(texts[j]) <= self.CHUNK):
                count += max(len(texts[j]), self.ngram)
                j += 1
            hashes, owner = batch_ngram_hashes(texts[i:j], self.ngram)
            values = (self.a * hashes + self.b) >> np.uint64(32)  # (P, M)
            starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            out[i:j] = np.minimum.reduceat(values, starts, axis=1).T
            i = j
        return out

    def signature(self, text: str) -> np.ndarray:
        return self.signatures([text])[0]


class LSHIndex:
    """Signatures of the records kept so far, bucketed by band."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128):
        self.threshold = threshold
        self.bands, self.rows = optimal_bands(threshold, num_perm)
        self.buckets: list[dict[int, list[int]]] = [{} for _ in range(self.bands)]
        self.signatures: list[np.ndarray] = []
        self.ids: list[object] = []

    def _keys(self, sig: np.ndarray) -> list[int]:
        raw = sig[: self.bands * self.rows].tobytes()
        step = 4 * self.rows
        return [hash(raw[i:i + step]) for i in range(0, len(raw), step)]

    def query(self, sig: np.ndarray) -> tuple[object, float] | None:
        """The first indexed item at least `threshold` similar, with its estimated Jaccard similarity."""
        seen = set()
        for band, key in zip(self.buckets, self._keys(sig)):
            for i in band.get(key, ()):
                if i in seen:
                    continue
                seen.add(i)
                similarity = float(np.count_nonzero(self.signatures[i] == sig)) / sig.size
                if similarity >= self.threshold:
                    return self.ids[i], similarity
        return None

    def query_all(self, sig: np.ndarray) -> list[int]:
        """Positions of every indexed item at least `threshold` similar."""
        found = set()
        for band, key in zip(self.buckets, self._keys(sig)):
            found.update(band.get(key, ()))
        return [i for i in sorted(found) if np.count_nonzero(self.signatures[i] == sig) / sig.size >= self.threshold]

    def insert(self, item_id, sig: np.ndarray) -> None:
        i = len(self.signatures)
        self.signatures.append(sig)
        self.ids.append(item_id)
        for band, key in zip(self.buckets, self._keys(sig)):
            band.setdefault(key, []).append(i)
