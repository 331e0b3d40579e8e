"""Evaluation: order handling maps verdicts back; metrics count ties, failures, consistency."""

from __future__ import annotations

from egt.evaluation import aggregate, evaluate, presentations
from egt.evaluation.runner import Prediction
from egt.judge.base import FirstJudge, Judgement, LongerJudge, RandomJudge
from egt.records import PreferencePair


def _pairs(n=40, winner_first=True):
    return [
        PreferencePair(
            id=f"p{i}",
            question="q",
            responses=("a" * (i % 3 + 1), "b" * 2),
            preferred=0 if winner_first else i % 2,
            category="even" if i % 2 == 0 else "odd",
        )
        for i in range(n)
    ]


def test_first_judge_is_at_chance_in_both_orders():
    report, preds = evaluate(FirstJudge(), _pairs(), order="both")
    m = report["metrics"]
    assert len(preds) == 80 and report["n_items"] == 40
    assert m["accuracy_stored_order"] == 1.0 and m["accuracy_swapped_order"] == 0.0
    assert m["accuracy"] == 0.5 and m["order_consistency"] == 0.0


def test_stored_order_alone_is_fooled():
    report, _ = evaluate(FirstJudge(), _pairs(), order="stored")
    assert report["metrics"]["accuracy"] == 1.0 and "order_consistency" not in report["metrics"]


def test_random_order_is_seeded_and_mixed():
    a = presentations(_pairs(), "random", seed=1)
    assert a == presentations(_pairs(), "random", seed=1) != presentations(_pairs(), "random", seed=2)
    assert 5 < sum(s for _, s in a) < 35


def test_longer_judge_ties_and_policies():
    pairs = _pairs(winner_first=False)
    wrong, _ = evaluate(LongerJudge(), pairs, order="stored", tie_policy="wrong")
    half, _ = evaluate(LongerJudge(), pairs, order="stored", tie_policy="half")
    ties = sum(len(p.responses[0]) == len(p.responses[1]) for p in pairs)
    assert wrong["ties"] == half["ties"] == ties > 0
    assert abs((half["metrics"]["accuracy"] - wrong["metrics"]["accuracy"]) * len(pairs) - 0.5 * ties) < 1e-6


def test_random_judge_is_near_half_and_deterministic():
    pairs = _pairs(400, winner_first=False)
    r1, p1 = evaluate(RandomJudge(seed=0), pairs, order="both")
    r2, p2 = evaluate(RandomJudge(seed=0), pairs, order="both")
    assert [p.predicted for p in p1] == [p.predicted for p in p2]
    assert 0.43 < r1["metrics"]["accuracy"] < 0.57


def test_aggregate_by_hand():
    """Two items, both orders. Item a: right in both → consistent. Item b: right once, parse
    failure once (lenient parse right) → inconsistent. accuracy = 3/4, failures 1/4."""
    preds = [
        Prediction("a", False, "ok", 0, 0, "x"),
        Prediction("a", True, "ok", 0, 0, "x"),
        Prediction("b", False, "ok", 1, 1, "y"),
        Prediction("b", True, "parse_failure", None, 1, "y", lenient_predicted=1),
    ]
    out = aggregate(preds)
    assert out["metrics"]["accuracy"] == 0.75 and out["metrics"]["format_failure_rate"] == 0.25
    assert out["metrics"]["order_consistency"] == 0.5 and out["metrics"]["accuracy_lenient_parse"] == 1.0
    assert out["categories"] == {"x": {"n": 1, "accuracy": 1.0}, "y": {"n": 1, "accuracy": 0.5}}
    assert out["parse_failures"] == 1 and out["ties"] == 0


def test_scores_are_mapped_back_to_stored_order():
    class Scalar:
        name, reads_images = "scalar", False

        def judge(self, requests):
            out = []
            for r in requests:
                s = tuple(float(len(x)) for x in r.shown)
                out.append(Judgement(choice=int(s[1] > s[0]), scores=s))
            return out

    pairs = [PreferencePair(id="z", question="q", responses=("long answer", "s"), preferred=0)]
    _, preds = evaluate(Scalar(), pairs, order="both")
    assert [p.scores for p in preds] == [(11.0, 1.0), (11.0, 1.0)]
    assert all(p.correct for p in preds)
