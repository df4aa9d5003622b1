"""What the scorer sees of a text: the de-obfuscated text with a document marker, cut into windows, as
hashed character 1-3-grams and word 1-2-grams. Learning, scoring and explanation all read texts this way."""

from __future__ import annotations

import functools

import numpy as np

from xuetu.safety.normalize import deleet, fold, join_spaced

N_CHAR, N_WORD = 2**20, 2**18
WINDOW, STRIDE = 400, 300
DOC_MARK = "〔doc〕 "


def prepare(text: str, channel: str) -> str:
    return (DOC_MARK if channel == "document" else "") + join_spaced(deleet(fold(text)))


@functools.cache
def vectorizers():
    """(characters, words): the hashing vectorizers that define the feature space."""
    from sklearn.feature_extraction.text import HashingVectorizer

    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=N_CHAR, alternate_sign=False,
                              norm=None)
    words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=N_WORD, alternate_sign=False,
                              norm=None, token_pattern=r"(?u)\b\w+\b")
    return chars, words


def counts(texts: list[str]):
    """(n, N_CHAR + N_WORD) sparse n-gram counts of prepared texts."""
    import scipy.sparse as sp

    chars, words = vectorizers()
    return sp.hstack([chars.transform(texts), words.transform(texts)], format="csr")


def windows(text: str) -> list[str]:
    if len(text) <= WINDOW:
        return [text]
    return [text[i:i + WINDOW] for i in range(0, len(text) - WINDOW + STRIDE, STRIDE)]


@functools.cache
def _analyzers():
    chars, words = vectorizers()
    return chars.build_analyzer(), words.build_analyzer()


_IDS: tuple[dict[str, int], dict[str, int]] = ({}, {})  # n-gram -> hashed feature index, memoised


def feature_ids(prepared: str) -> np.ndarray:
    """The hashed feature index of every n-gram of a prepared text, repeats included: the same indices as
    counts() (HashingVectorizer), but each n-gram's hash is remembered, so scoring costs a dict lookup per
    n-gram instead of a sparse matrix over 1.3M columns."""
    from sklearn.utils import murmurhash3_32

    out: list[int] = []
    for grams, memo, size, offset in zip((a(prepared) for a in _analyzers()), _IDS, (N_CHAR, N_WORD), (0, N_CHAR)):
        if len(memo) > 1_000_000:
            memo.clear()  # bounded: a long-running server sees endless new n-grams
        for g in grams:
            i = memo.get(g)
            if i is None:
                i = memo[g] = abs(murmurhash3_32(g, seed=0)) % size + offset
            out.append(i)
    return np.array(out, dtype=np.int64)
