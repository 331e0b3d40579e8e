"""The hierarchical bootstrap: hand-worked limits (one seed; constant items) and the paired deltas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import bootstrap

from egt.pipelines.experiment.stats import hierarchical_bootstrap, paired_deltas


def test_one_seed_is_the_item_bootstrap():
    x = np.random.default_rng(1).binomial(1, 0.7, size=400).astype(float)
    got = hierarchical_bootstrap([x], resamples=4000, seed=0)
    ref = bootstrap((x,), np.mean, n_resamples=4000, method="percentile", random_state=np.random.default_rng(0))
    assert got["mean"] == pytest.approx(x.mean()) and got["per_seed"] == [pytest.approx(x.mean())]
    # both are Monte Carlo percentiles of the same distribution (SE of the mean 0.023): within 0.006
    assert got["ci95"][0] == pytest.approx(ref.confidence_interval.low, abs=0.006)
    assert got["ci95"][1] == pytest.approx(ref.confidence_interval.high, abs=0.006)


def test_constant_items_leave_only_the_seed_spread():
    """Seeds whose items all equal 0, 0, 1: a resample's mean is k/3 with k ~ Binomial(3, 1/3).

    P(k=0..3) = 8/27, 12/27, 6/27, 1/27; cumulative 0.296, 0.741, 0.963, 1: the 2.5th percentile is 0
    and the 97.5th is 1 (0.963 < 0.975). The item stage adds nothing: every item of a seed is equal.
    """
    per_seed = [np.zeros(50), np.zeros(80), np.ones(30)]
    got = hierarchical_bootstrap(per_seed, resamples=20000, seed=3)
    assert got["mean"] == pytest.approx(1 / 3) and got["per_seed"] == [0.0, 0.0, 1.0]
    assert got["ci95"] == (0.0, 1.0)
    # identical seeds: no spread at all, however many items
    assert hierarchical_bootstrap([np.full(10, 0.2)] * 3, resamples=500)["ci95"] == pytest.approx((0.2, 0.2))


def test_seed_spread_widens_the_interval_over_the_pooled_item_bootstrap():
    """Three seeds whose deltas differ by seed (+0.1, −0.05, +0.2 with item noise): lab_full's pooled
    item bootstrap is far narrower than the seed-level one."""
    rng = np.random.default_rng(0)
    per_seed = [m + rng.normal(0, 0.3, 500) for m in (0.1, -0.05, 0.2)]
    hier = hierarchical_bootstrap(per_seed, resamples=4000)
    pooled = bootstrap((np.concatenate(per_seed),), np.mean, n_resamples=4000, method="percentile")
    assert hier["ci95"][1] - hier["ci95"][0] > 2 * (pooled.confidence_interval.high - pooled.confidence_interval.low)
    assert hier["ci95"][0] < 0.0 < pooled.confidence_interval.low  # the seed view does not exclude 0


def test_degenerate_inputs():
    assert hierarchical_bootstrap([]) is None and hierarchical_bootstrap([[]]) is None
    one = hierarchical_bootstrap([[0.5]])
    assert one["mean"] == 0.5 and one["ci95"] is None and one["n_items"] == 1


def test_paired_deltas_use_shared_seeds_and_the_mask():
    arm = {0: np.array([1.0, 1.0, 0.5]), 1: np.array([0.0, 1.0, 1.0]), 2: np.array([1.0, 1.0, 1.0])}
    base = {0: np.array([1.0, 0.0, 0.5]), 1: np.array([1.0, 1.0, 0.0])}
    mask = {0: np.array([True, True, False]), 1: np.array([False, True, True])}
    got = paired_deltas(arm, base, mask)
    assert [d.tolist() for d in got] == [[0.0, 1.0], [0.0, 1.0]]  # seed 2 has no base run
