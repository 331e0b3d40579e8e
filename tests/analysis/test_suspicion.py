"""Suspicion rankings (``egt.analysis.suspicion``) on records whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from egt.analysis.suspicion import (
    label_votes,
    precision_at_k,
    ranked_ids,
    rollout_confidence,
    signal_warning,
    suspicion_report,
    suspicion_scores,
)


def record(rid, against, k=4, label=0, entropies=None, peak=None, flipped=None, failures=0):
    """``against`` of the ``k - failures`` parsed rollouts prefer the other response."""
    parsed = k - failures
    verdicts = [1 - label] * against + [label] * (parsed - against) + [None] * failures
    r = {
        "id": rid,
        "preferred": label,
        "verdicts": verdicts,
        "answer_entropies": entropies or [None] * k,
        "answer_entropy": None if not parsed else 0.3,
        "sentence_entropy": 0.5,
        "vote_entropy": 0.0,
        "peak_entropy": peak,
        "accuracy": (parsed - against) / k,
        "format_failures": failures,
    }
    if flipped is not None:
        r["flipped"] = flipped
    return r


def test_rollout_confidence_inverts_the_binary_entropy():
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))  # 0.325 nats
    assert rollout_confidence(h) == pytest.approx(0.9, abs=1e-6)
    assert rollout_confidence(0.0) == 1.0 and rollout_confidence(None) == 1.0
    assert rollout_confidence(math.log(2)) == 0.5 and rollout_confidence(3.0) == 0.5


def test_label_votes_count_parsed_rollouts_against_the_label():
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    v = label_votes(record("a", against=2, failures=1, entropies=[h, 0.0, 0.0, None], label=1))
    # verdicts [0, 0, 1, None]: two against (c = 0.9, 1.0), one with (c = 1.0) → p(label) = (0.1 + 0 + 1) / 3
    assert (v["against"], v["parsed"], v["k"]) == (2, 3, 4)
    assert v["disagreement"] == pytest.approx(2 / 3) and v["self_confidence"] == pytest.approx(1.1 / 3)
    none = label_votes(record("b", against=0, failures=4))
    assert none["disagreement"] is None and none["parsed"] == 0


def test_disagreement_breaks_ties_by_confidence_and_ranks_no_verdict_last():
    records = [
        record("hesitant_against", 4, entropies=[0.6] * 4),
        record("confident_against", 4, entropies=[0.01] * 4),
        record("confident_with", 0, entropies=[0.01] * 4),
        record("hesitant_with", 0, entropies=[0.6] * 4),
        record("no_verdict", 0, failures=4),
        record("half", 2),
    ]
    s = suspicion_scores(records)["disagreement"]
    assert ranked_ids(records, s) == [
        "confident_against",
        "hesitant_against",
        "half",
        "hesitant_with",
        "confident_with",
        "no_verdict",
    ]


def test_auroc_and_precision_at_k_for_flipped_labels_by_hand():
    """Disagreement a 1 > c ½ > b ¼ > d = e = f 0; flipped {a, b}: pairs won 4 + 3 of 8 → AUROC 0.875;
    the top 2 (= n flipped) are a, c → P@2 = ½. Peak: b highest, a lowest → AUROC 4/8."""
    spec = {"a": (4, 0.1, True), "b": (1, 0.9, True), "c": (2, 0.5, False)}
    spec.update({x: (0, p, False) for x, p in zip("def", (0.2, 0.3, 0.4), strict=True)})
    records = [record(rid, against, peak=peak, flipped=f) for rid, (against, peak, f) in spec.items()]
    r = suspicion_report(records)
    assert r["n_flipped"] == 2 and r["k"] == [2]
    assert r["auroc_flipped"]["disagreement"] == pytest.approx(0.875)
    assert r["precision_at_k_flipped"]["disagreement"]["2"] == pytest.approx(0.5)
    assert r["auroc_flipped"]["peak"] == pytest.approx(0.5)
    assert r["best"] == "disagreement"
    assert precision_at_k(["b", "a", "c"], {"a": True, "b": False, "c": True}, 1) == 0.0


def test_an_untrained_judge_has_no_ranking_and_says_so():
    records = [record(f"x{i}", 0, failures=4, flipped=i == 0) for i in range(4)]
    for r in records:
        r["peak_entropy"] = None
    rep = suspicion_report(records)
    assert rep["auroc_flipped"]["disagreement"] is None and rep["auroc_flipped"]["peak"] is None
    assert rep["missing"]["disagreement"] == 4 and rep["best"] is None
    message = signal_warning(rep["missing"]["disagreement"], 4, "disagreement")
    assert "4 of 4 items (100%) have no parsable verdict" in message
    assert signal_warning(2, 4, "peak") is None  # half is not "most"
    assert "no peak entropy" in signal_warning(3, 4, "peak")


def _shown(verdict_first: list[bool], swapped: list[bool]) -> dict:
    """A record whose rollouts pick the response shown first (True) or second, in the given orders."""
    verdicts = [(1 if s else 0) if first else (0 if s else 1) for first, s in zip(verdict_first, swapped)]
    return {"id": "x", "preferred": 0, "verdicts": verdicts, "swapped": swapped}


def test_a_judge_that_answers_by_position_is_named():
    from egt.analysis.suspicion import position_bias, position_warning

    # 10 items × 4 rollouts, two in each order; 38 of 40 pick the response shown first
    records = [_shown([True, True, True, True], [False, True, False, True]) for _ in range(9)]
    records.append(_shown([True, False, None, False], [False, True, False, True]))
    records[-1]["verdicts"][2] = None  # a format failure is not a verdict
    bias = position_bias(records)
    assert bias == {"first": 37 / 39, "n": 39, "both_orders": True}
    message = position_warning(bias)
    assert "picks the response shown first in 95% of its 39 parsed rollouts" in message
    assert suspicion_report(records)["position"] == bias
    # the content decides (half the picks on each side), or too few verdicts, or one order only: no warning
    even = [_shown([True, False], [False, True]) for _ in range(20)]
    assert position_bias(even)["first"] == 0.5 and position_warning(position_bias(even)) is None
    assert position_warning(position_bias(records[:4])) is None  # 16 verdicts < 20
    one_order = [_shown([True] * 4, [False] * 4) for _ in range(10)]
    assert position_bias(one_order)["both_orders"] is False and position_warning(position_bias(one_order)) is None
    second = [_shown([False] * 4, [False, True, False, True]) for _ in range(10)]
    assert "shown second in 100%" in position_warning(position_bias(second))
