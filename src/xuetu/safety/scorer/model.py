"""The fitted scorer: its classes, idf weights and linear weights, and the probabilities it gives prepared
texts. Learnt by learn.py, saved and loaded by storage.py, used by scoring.py and explain.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xuetu.safety.scorer.features import counts, feature_ids

LABELS = ("benign", "violence", "sexual", "hate", "self_harm", "illegal", "injection", "jailbreak",
          "system_prompt_extraction", "exfiltration", "indirect_injection")
ON_DOCUMENTS = {"injection": "indirect_injection", "jailbreak": "indirect_injection",
                "system_prompt_extraction": "indirect_injection"}
"""What a category means when the text is a retrieved document."""
ON_USER = {"indirect_injection": "injection"}
"""What a category means when the text is a user's message."""


@dataclass
class Model:
    classes: list[str]
    idf: np.ndarray
    """(features,) float32; zero where no example had the feature"""
    coef: object
    """(features, classes) sparse"""
    intercept: np.ndarray
    info: dict

    def __post_init__(self):
        # Dense weights for just the features some example had (a few hundred thousand rows of 11): a text
        # is then scored in a few small numpy steps.
        nz = np.flatnonzero(self.idf)
        self._row = np.full(self.idf.shape[0], -1, dtype=np.int32)
        self._row[nz] = np.arange(len(nz), dtype=np.int32)
        self._idf = self.idf[nz]
        self._w = np.asarray(self.coef[nz].todense(), dtype=np.float32)

    def probabilities(self, prepared: list[str]) -> np.ndarray:
        """(texts, classes): sublinear tf-idf, L2-normalised, through the linear model and a softmax."""
        z = np.empty((len(prepared), len(self.classes)), dtype=np.float64)
        for k, text in enumerate(prepared):
            ids, n = np.unique(feature_ids(text), return_counts=True)
            rows = self._row[ids]
            seen = rows >= 0  # n-grams no example had weigh nothing (their idf is 0)
            rows = rows[seen]
            x = (np.log(n[seen]) + 1.0) * self._idf[rows]
            z[k] = x @ self._w[rows] / max(float(np.sqrt(x @ x)), 1e-12) + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def probabilities_sparse(self, prepared: list[str]) -> np.ndarray:
        """The same through scipy's sparse matrices, as in training: kept to check the fast path against."""
        x = counts(prepared)
        x.data = np.log(x.data) + 1.0  # sublinear tf, as sklearn's TfidfTransformer(sublinear_tf=True)
        x = x.multiply(self.idf).tocsr()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        z = np.asarray((x @ self.coef).todense()) / np.maximum(norms, 1e-12)[:, None] + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
