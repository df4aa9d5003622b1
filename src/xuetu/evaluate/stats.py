"""Confidence intervals by bootstrap: is a difference between two prompts or models more than noise?

`bootstrap_ci(scores)` resamples the examples with replacement and reads the percentile interval of the
mean; `paired_bootstrap(a, b)` resamples the same examples for both sides, so the interval is of the
difference on the same questions, and `p_better` is the share of resamples where B beats A.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Interval:
    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class Difference:
    delta: Interval
    """mean(b - a) with its interval"""
    p_better: float
    """share of resamples where b's mean beats a's"""

    @property
    def significant(self) -> bool:
        return self.delta.low > 0 or self.delta.high < 0


def _resample_means(values: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    return values[idx].mean(axis=1)


def bootstrap_ci(scores, n: int = 2000, confidence: float = 0.95, seed: int = 0) -> Interval:
    values = np.asarray(scores, dtype=float)
    if values.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    means = _resample_means(values, n, seed)
    tail = (1 - confidence) / 2 * 100
    return Interval(float(values.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)))


def paired_bootstrap(a, b, n: int = 2000, confidence: float = 0.95, seed: int = 0) -> Difference:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same examples: {a.shape} vs {b.shape}")
    diffs = b - a
    means = _resample_means(diffs, n, seed) if diffs.size else np.array([np.nan])
    tail = (1 - confidence) / 2 * 100
    delta = Interval(float(diffs.mean()) if diffs.size else float("nan"), float(np.percentile(means, tail)),
                     float(np.percentile(means, 100 - tail)))
    return Difference(delta, float((means > 0).mean()))
