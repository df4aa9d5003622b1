"""Explanation: which words of a text pushed the scorer from benign towards a category, for the finding a
reader sees ("words that weighed most: 'ignore', 'instructions'")."""

from __future__ import annotations

import re

from xuetu.safety.scorer.features import DOC_MARK, N_CHAR, N_WORD, prepare, vectorizers
from xuetu.safety.scorer.model import ON_DOCUMENTS, Model


def evidence(m: Model, text: str, channel: str, category: str, n: int = 5) -> list[str]:
    """The words that pushed hardest from benign towards `category`: a Latin word weighs its own
    feature plus the character n-grams inside it; Chinese shows its 2- and 3-character n-grams."""
    from sklearn.utils import murmurhash3_32

    classes = m.classes
    label = next((c for c in (category, *[k for k, v in ON_DOCUMENTS.items() if v == category]) if c in classes),
                 None)
    if label is None:
        return []
    chars = vectorizers()[0].build_analyzer()
    prepared = prepare(text, channel).removeprefix(DOC_MARK)
    grams: dict[str, list[int]] = {}  # a shown word or n-gram -> the features it stands for
    for word in set(re.findall(r"[a-z0-9']{3,}", prepared)):  # shorter words say little to a reader
        grams[word] = [N_CHAR + abs(murmurhash3_32(word, seed=0)) % N_WORD,
                       *(abs(murmurhash3_32(g, seed=0)) % N_CHAR for g in set(chars(word)))]
    for run in re.findall(r"[\u3400-\u9fff]+", prepared):
        for k in (2, 3):
            for i in range(len(run) - k + 1):
                grams[run[i:i + k]] = [abs(murmurhash3_32(run[i:i + k], seed=0)) % N_CHAR]
    if not grams:
        return []
    index = sorted({j for js in grams.values() for j in js})
    rows = m.coef[index].toarray()  # only the features this text has: fast
    weight = dict(zip(index, (rows[:, classes.index(label)] - rows[:, classes.index("benign")])
                      * m.idf[index]))
    scores = {g: float(sum(weight[j] for j in js)) for g, js in grams.items()}
    out: list[str] = []
    for gram in sorted((g for g in scores if scores[g] > 0), key=scores.get, reverse=True):
        if not any(gram in o or o in gram for o in out):  # one of overlapping n-grams is enough
            out.append(gram)
        if len(out) == n:
            break
    return [repr(g) for g in out]
