"""Rank statistics of ``egt.analysis.stats`` on inputs whose answers are known by hand."""

from __future__ import annotations

import math

import pytest

from egt.analysis.stats import accuracy_by_bin, analyze_records, auroc, spearman
from synthetic_scores import synthetic_records


def test_perfectly_anti_correlated_entropy_gives_rho_minus_one_and_auroc_one(pool):
    a = analyze_records(synthetic_records(pool), n_bins=4)
    assert a["spearman"]["answer"] == pytest.approx(-1.0)
    assert a["spearman"]["sentence"] == pytest.approx(1.0)  # sentence entropy falls as accuracy falls
    assert a["spearman"]["vote"] is None  # constant → undefined, not NaN
    assert a["auroc_flipped"]["answer"] == pytest.approx(1.0)
    assert a["auroc_flipped"]["sentence"] == pytest.approx(0.0)
    assert a["auroc_flipped"]["rollout_error"] == pytest.approx(1.0)
    assert a["ground_truth"] == ["flipped", "hard"] and a["n_flipped"] == len(pool) // 2
    bins = a["bins"]["answer"]
    assert [b["n"] for b in bins] == [8, 8, 8, 8]
    assert [b["flipped_rate"] for b in bins] == [0.0, 0.0, 1.0, 1.0]
    assert [b["mean_accuracy"] for b in bins] == sorted((b["mean_accuracy"] for b in bins), reverse=True)


def test_auroc_by_hand():
    """Positives {0.9, 0.4}, negatives {0.5, 0.1}: pairs (pos > neg) = 3 of 4 → 0.75."""
    assert auroc([0.9, 0.4, 0.5, 0.1], [True, True, False, False]) == pytest.approx(0.75)
    assert auroc([0.1, 0.2], [True, True]) is None


def test_missing_entropy_ranks_as_most_uncertain():
    # None ranks above 0.9: as a detector it is the highest score
    assert auroc([None, 0.9, 0.1], [True, False, False]) == pytest.approx(1.0)
    rho, p = spearman([None, 0.5, 0.1, 0.2], [0.0, 0.5, 1.0, 0.75])
    assert rho == pytest.approx(-1.0) and p is not None


def test_accuracy_by_bin_equal_counts_ties_by_id_and_ranges():
    values = [0.3, 0.1, None, 0.2, 0.1]
    acc = [0.0, 1.0, 0.0, 0.5, 0.75]
    bins = accuracy_by_bin(values, acc, ["e", "b", "c", "d", "a"], n_bins=2)
    # ascending: a(0.1) b(0.1) d(0.2) | e(0.3) c(None)
    assert [b["n"] for b in bins] == [3, 2]
    assert bins[0]["mean_accuracy"] == pytest.approx((0.75 + 1.0 + 0.5) / 3)
    assert (bins[0]["entropy_min"], bins[0]["entropy_max"], bins[1]["missing"]) == (0.1, 0.2, 1)
    assert not any(isinstance(v, float) and math.isnan(v) for b in bins for v in b.values())


def test_constant_accuracy_gives_none_not_nan():
    assert spearman([0.1, 0.2, 0.3], [1.0, 1.0, 1.0]) == (None, None)


def test_every_signal_and_the_ambiguity_ceiling(pool):
    """Synthetic: ambiguity i/N, flipped iff i ≥ N/2 → ceiling 1; hard iff i odd → ceiling = P(odd i >
    even j) = Σ_{k<16} (k + 1) / 256 = 136/256. answer (i/N) and peak (2i/N) equal the ceiling."""
    a = analyze_records(synthetic_records(pool))
    assert set(a["spearman"]) == {"answer", "sentence", "mixed", "vote", "peak"}
    assert a["spearman"]["peak"] == pytest.approx(-1.0) and a["auroc_flipped"]["peak"] == pytest.approx(1.0)
    assert a["auroc_flipped_ceiling"] == pytest.approx(1.0) and a["auroc_hard_ceiling"] == pytest.approx(136 / 256)
    assert a["ceiling_fraction_flipped"]["answer"] == pytest.approx(1.0)
    assert a["ceiling_fraction_flipped"]["sentence"] == pytest.approx(0.0)
    assert a["ceiling_fraction_hard"]["peak"] == pytest.approx(1.0)
    assert a["ceiling_fraction_hard"]["rollout_error"] == pytest.approx(a["auroc_hard"]["rollout_error"] / (136 / 256))
    no_truth = analyze_records([{k: v for k, v in r.items() if k != "ambiguity"} for r in synthetic_records(pool)])
    assert no_truth["auroc_flipped_ceiling"] is None and no_truth["ceiling_fraction_flipped"]["answer"] is None


def test_a_signal_no_record_carries_is_none_not_a_coin_flip(pool):
    records = [{k: v for k, v in r.items() if k != "peak_entropy"} for r in synthetic_records(pool)]
    a = analyze_records(records)
    assert a["spearman"]["peak"] is None and a["auroc_flipped"]["peak"] is None and a["missing"]["peak"] == len(pool)
    assert auroc([None, None, None], [True, False, False]) is None


def test_items_with_format_failures_rank_as_least_certain_in_the_statistics(pool):
    """As in curation: the flipped item's low entropy comes from the one rollout of four that parsed.
    Without the failure rule it looks like the most certain item (AUROC 0); with it, the least (1)."""
    values, labels = [0.01, 0.5, 0.9], [True, False, False]
    assert auroc(values, labels) == pytest.approx(0.0)
    assert auroc(values, labels, failures=[3, 0, 0]) == pytest.approx(1.0)
    assert auroc([0.9, 0.1, 0.5], [True, False, False], failures=[1, 1, 3]) == pytest.approx(
        0.5
    )  # fewer failures first
    records = synthetic_records(pool)
    records[0].update(format_failures=3, flipped=True)  # lowest answer entropy, label flipped
    a = analyze_records(records)
    assert a["items_with_format_failures"] == 1 and a["auroc_flipped"]["answer"] == pytest.approx(1.0)
    legacy = [{k: v for k, v in r.items() if k != "format_failures"} for r in records]
    legacy[0]["verdicts"] = [None, None, None, 0]  # an older file: failures from its verdicts
    assert analyze_records(legacy)["auroc_flipped"]["answer"] == pytest.approx(1.0)
