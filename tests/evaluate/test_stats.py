"""Bootstrap intervals: they cover the truth about as often as they claim, and tell noise from a real gap."""

from __future__ import annotations

import numpy as np
import pytest

from xuetu.evaluate.stats import bootstrap_ci, paired_bootstrap


def test_interval_matches_scipys_percentile_bootstrap():
    from scipy import stats

    data = np.random.default_rng(1).normal(0.6, 0.2, size=80)
    ours = bootstrap_ci(data, n=4000)
    ref = stats.bootstrap((data,), np.mean, n_resamples=4000, method="percentile", random_state=0).confidence_interval
    assert ours.low == pytest.approx(ref.low, abs=0.01) and ours.high == pytest.approx(ref.high, abs=0.01)
    assert ours.low < data.mean() < ours.high


def test_coverage_is_about_the_nominal_95_percent():
    rng = np.random.default_rng(2)
    covered = 0
    for i in range(200):
        ci = bootstrap_ci(rng.binomial(1, 0.7, size=60), n=500, seed=i)
        covered += ci.low <= 0.7 <= ci.high
    assert 0.88 <= covered / 200 <= 0.99


def test_paired_difference_separates_a_real_gap_from_noise():
    rng = np.random.default_rng(3)
    a = rng.binomial(1, 0.4, size=100).astype(float)
    better = np.where(rng.random(100) < 0.35, 1.0, a)  # the same questions, a third of the misses fixed
    real = paired_bootstrap(a, better)
    assert real.significant and real.delta.low > 0 and real.p_better > 0.99
    same = paired_bootstrap(a, rng.permutation(a))
    assert same.delta.low < 0 < same.delta.high and not same.significant
    with pytest.raises(ValueError, match="same examples"):
        paired_bootstrap([1, 0], [1])
