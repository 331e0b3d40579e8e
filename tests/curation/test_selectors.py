"""Selectors: lowest-N / fraction by entropy, seeded random, highest accuracy; deterministic orders."""

from __future__ import annotations

import pytest

from egt.curation.selectors import (
    ENTROPY_KINDS,
    item_scores,
    keep_count,
    order_by_accuracy,
    order_by_entropy,
    order_random,
    select,
)
from egt.errors import EgtError


def scores(rows):
    """{id: scores} from (id, answer, sentence, accuracy) rows."""
    return {i: {"answer": a, "sentence": s, "mixed": None, "accuracy": acc} for i, a, s, acc in rows}


POOL = scores(
    [("d", 0.5, 1.0, 0.25), ("a", 0.2, 2.0, 1.0), ("c", None, 0.5, 0.0), ("b", 0.2, 3.0, 1.0), ("e", 0.9, None, 0.5)]
)


def test_entropy_selector_keeps_the_lowest_n_ties_by_id_missing_last():
    rows = select(POOL, "entropy", by="answer", n=2)
    assert [r["id"] for r in rows] == ["a", "b", "d", "e", "c"]
    assert [r["kept"] for r in rows] == [True, True, False, False, False]
    assert [r["rank"] for r in rows] == [0, 1, 2, 3, 4]
    assert rows[0]["selector"] == "entropy:answer" and rows[0]["by"] == "answer"
    assert rows[0]["reason"].startswith("kept: answer entropy 0.2 is #1 lowest of 5")
    assert rows[-1]["reason"].startswith("dropped: no answer entropy")
    assert [r["id"] for r in select(POOL, "entropy", by="sentence", n=1)] == ["c", "d", "a", "b", "e"]


def test_fraction_rounds_half_up_and_bad_counts_are_user_errors():
    assert keep_count(5, fraction=0.5) == 3 and keep_count(4, fraction=0.5) == 2 and keep_count(10, fraction=0.01) == 1
    assert sum(r["kept"] for r in select(POOL, "entropy", fraction=0.4)) == 2
    for kwargs, why in (
        ({}, "give exactly one of --n N"),
        ({"n": 2, "fraction": 0.5}, "give exactly one of --n N"),
        ({"n": 6}, "--n 6: the pool has only 5 items"),
        ({"fraction": 1.5}, r"--fraction 1.5: must be in \(0, 1\]"),
    ):
        with pytest.raises(EgtError, match=why):
            keep_count(5, **kwargs)
    with pytest.raises(EgtError, match="--by"):
        select(POOL, "entropy", by="loudness", n=1)
    with pytest.raises(EgtError, match="--selector"):
        select(POOL, "loudest", n=1)


def test_random_selector_is_seeded_and_independent_of_input_order():
    pool = scores([(f"id{i:03d}", float(i), 0.0, 0.5) for i in range(200)])
    reversed_pool = dict(reversed(list(pool.items())))
    assert order_random(pool, 1) == order_random(reversed_pool, 1)
    assert order_random(pool, 1) != order_random(pool, 2)
    kept = [r["id"] for r in select(pool, "random", n=100, seed=1) if r["kept"]]
    assert 20 < sum(int(i[2:]) < 100 for i in kept) < 80  # not the lowest entropies


def test_accuracy_selector_keeps_highest_accuracy_with_seeded_tie_break():
    order = order_by_accuracy(POOL, seed=0)
    assert set(order[:2]) == {"a", "b"} and order[2:] == ["e", "d", "c"]
    pool = scores([(f"id{i}", 0.1, 0.1, 1.0) for i in range(50)])
    assert order_by_accuracy(pool, 0) != order_by_accuracy(pool, 1)
    assert order_by_accuracy(pool, 3) == order_by_accuracy(pool, 3)
    assert select(POOL, "accuracy", n=2)[0]["reason"].startswith("kept: rollout accuracy 1 is #1 highest")


def test_item_scores_recomputes_the_mixed_rank_over_the_pool():
    records = [
        {"id": "x", "answer_entropy": 0.1, "sentence_entropy": 0.9, "accuracy": 1.0},
        {"id": "y", "answer_entropy": 0.5, "sentence_entropy": 0.2, "accuracy": 0.0},
        {"id": "z", "answer_entropy": None, "sentence_entropy": 0.5, "accuracy": 0.5},
    ]
    s = item_scores(records, lam=1.0)
    assert [s[i]["mixed"] for i in "xyz"] == [0.0, 0.5, 1.0]  # λ = 1: the answer rank alone, missing highest
    assert order_by_entropy(s, "mixed") == ["x", "y", "z"]


def test_an_item_with_format_failures_ranks_after_every_clean_item_for_every_kind():
    """Issue 14: "f3" failed the strict format in 3 of 4 rollouts; its one parsed rollout is very
    certain, so every entropy of it is the lowest of the pool. The old order put it first; now it
    goes after both clean items, and "f1" (1 failure) before it; a clean item without a value
    still ranks after clean items with one, but before any item with failures."""
    pool = {
        "f3": {
            "answer": 0.01,
            "sentence": 0.01,
            "mixed": 0.0,
            "vote": 0.0,
            "peak": 0.01,
            "accuracy": 0.25,
            "format_failures": 3,
        },
        "f1": {
            "answer": 0.5,
            "sentence": 0.5,
            "mixed": 0.5,
            "vote": 0.5,
            "peak": 0.5,
            "accuracy": 0.75,
            "format_failures": 1,
        },
        "clean": {
            "answer": 0.9,
            "sentence": 0.9,
            "mixed": 0.9,
            "vote": 0.9,
            "peak": 0.9,
            "accuracy": 0.5,
            "format_failures": 0,
        },
        "clean_missing": {
            "answer": None,
            "sentence": None,
            "mixed": 1.0,
            "vote": 1.0,
            "peak": None,
            "accuracy": 0.5,
            "format_failures": 0,
        },
    }
    assert ENTROPY_KINDS == ("answer", "sentence", "mixed", "vote", "peak")
    for by in ENTROPY_KINDS:
        assert order_by_entropy(pool, by) == ["clean", "clean_missing", "f1", "f3"], by
        rows = select(pool, "entropy", by=by, n=1)
        assert rows[0]["id"] == "clean" and rows[0]["kept"]
        assert "format" not in rows[0]["reason"]
        assert rows[-1]["reason"].startswith(
            "dropped: 3 rollout(s) failed the strict format, so it ranks after every item without format failures"
        ), rows[-1]["reason"]


def test_vote_entropy_ties_are_broken_by_sentence_entropy_then_id():
    pool = {
        i: {"answer": 0.1, "sentence": s, "mixed": 0.5, "vote": v, "peak": 0.1, "accuracy": 1.0}
        for i, v, s in [("a", 0.69, 0.1), ("b", 0.0, 0.9), ("c", 0.0, 0.2), ("d", 0.0, None), ("e", 0.0, 0.2)]
    }
    assert order_by_entropy(pool, "vote") == ["c", "e", "b", "d", "a"]
    assert order_by_entropy(pool, "peak") == ["a", "b", "c", "d", "e"]  # other kinds: ties by id only
    assert "(ties broken by sentence entropy 0.2)" in select(pool, "entropy", by="vote", n=1)[0]["reason"]


def test_item_scores_carry_vote_peak_and_format_failures():
    records = [
        {
            "id": "x",
            "answer_entropy": 0.1,
            "sentence_entropy": 0.9,
            "vote_entropy": 0.0,
            "peak_entropy": 2.0,
            "accuracy": 1.0,
            "format_failures": 0,
            "verdicts": [0, 0],
        },
        {
            "id": "old",
            "answer_entropy": 0.2,
            "sentence_entropy": 0.2,
            "vote_entropy": 0.69,
            "accuracy": 0.5,
            "verdicts": [0, None],
        },
    ]  # written before peak and format_failures existed
    s = item_scores(records)
    assert set(s["x"]) == {"answer", "sentence", "mixed", "vote", "peak", "accuracy", "format_failures"}
    assert (s["x"]["vote"], s["x"]["peak"], s["x"]["format_failures"]) == (0.0, 2.0, 0)
    assert (s["old"]["peak"], s["old"]["format_failures"]) == (None, 1)
    assert order_by_entropy(s, "peak") == ["x", "old"]


def test_pass_rate_selector_keeps_the_learnable_items_in_entropy_order():
    """POOL's pass rates: d 0.25, a 1, c 0, b 1, e 0.5. Band (0, 1): d and e inside (answer entropy 0.5, 0.9),
    then c (0: below), then a, b (1: above; entropy tie by id)."""
    from egt.curation.selectors import parse_pass_band

    rows = select(POOL, "pass_rate", by="answer")
    assert [r["id"] for r in rows] == ["d", "e", "c", "a", "b"]
    assert [r["kept"] for r in rows] == [True, True, False, False, False]
    assert rows[0]["selector"] == "pass_rate" and rows[0]["reason"].startswith("kept: pass rate 0.25 is inside (0, 1)")
    assert rows[2]["reason"].startswith("dropped: pass rate 0 <= 0") and "disagrees" in rows[2]["reason"]
    assert rows[3]["reason"].startswith("dropped: pass rate 1 >= 1") and "agrees" in rows[3]["reason"]
    # band (0.3, 1): only e inside; d (0.25) joins c below, d first by entropy (c has none)
    assert [(r["id"], r["kept"]) for r in select(POOL, "pass_rate", pass_band=(0.3, 1.0))] == [
        ("e", True),
        ("d", False),
        ("c", False),
        ("a", False),
        ("b", False),
    ]
    assert [r["id"] for r in select(POOL, "pass_rate", n=1) if r["kept"]] == ["d"]  # the lowest entropy in band
    with pytest.raises(EgtError, match="only 2 have a pass rate inside"):
        select(POOL, "pass_rate", n=3)
    with pytest.raises(EgtError, match="no item's pass rate is strictly inside"):
        select(POOL, "pass_rate", pass_band=(0.6, 0.9))
    assert parse_pass_band("0,1") == (0.0, 1.0) and parse_pass_band("0.01, 0.99") == (0.01, 0.99)
    for bad in ("1,0", "0.5,0.5", "x", "0,1,2", "-0.1,1"):
        with pytest.raises(EgtError, match="--pass_band"):
            parse_pass_band(bad)
