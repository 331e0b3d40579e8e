"""Metrics over predictions: accuracy, ties, parse failures, order consistency, categories.

How a tie or a parse failure scores is explicit (``tie_policy``): ``wrong`` scores both 0,
``half`` scores them 0.5 (some benchmarks' rule). Either way they are counted and reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from egt.evaluation.runner import Prediction

TIE_POLICIES = ("wrong", "half")


def score_prediction(p: Prediction, tie_policy: str = "wrong") -> float:
    if p.status == "ok":
        return float(p.correct)
    if tie_policy == "half":
        return 0.5
    if tie_policy == "wrong":
        return 0.0
    raise ValueError(f"unknown tie_policy {tie_policy!r}; known: {TIE_POLICIES}")


def _mean(xs: Sequence[float]) -> float | None:
    return round(sum(xs) / len(xs), 6) if xs else None


def order_consistency(predictions: Sequence[Prediction]) -> float | None:
    """Fraction of items judged in both orders whose two verdicts pick the same stored response
    (both must be valid verdicts). None when no item was judged in both orders."""
    by_id: dict[str, dict[bool, Prediction]] = defaultdict(dict)
    for p in predictions:
        by_id[p.id][p.swapped] = p
    both = [d for d in by_id.values() if len(d) == 2]
    if not both:
        return None
    same = [
        d[False].status == "ok" and d[True].status == "ok" and d[False].predicted == d[True].predicted for d in both
    ]
    return _mean([float(s) for s in same])


def aggregate(predictions: Sequence[Prediction], tie_policy: str = "wrong") -> dict:
    """The ``metrics`` / ``categories`` / ``ties`` / ``parse_failures`` block of a report."""
    scores = [score_prediction(p, tie_policy) for p in predictions]
    n = len(predictions)
    ties = sum(p.status == "tie" for p in predictions)
    failures = sum(p.status == "parse_failure" for p in predictions)
    metrics: dict[str, float | None] = {
        "accuracy": _mean(scores),
        "format_failure_rate": round(failures / n, 6) if n else None,
        "tie_rate": round(ties / n, 6) if n else None,
    }
    for swapped, name in ((False, "accuracy_stored_order"), (True, "accuracy_swapped_order")):
        sub = [s for s, p in zip(scores, predictions) if p.swapped == swapped]
        if sub and len(sub) < n:
            metrics[name] = _mean(sub)
    consistency = order_consistency(predictions)
    if consistency is not None:
        metrics["order_consistency"] = consistency
    if failures:  # the fallback parse is shown separately, never folded into accuracy
        lenient = [
            float(p.correct) if p.status == "ok" else float(p.lenient_predicted == p.preferred) for p in predictions
        ]
        metrics["accuracy_lenient_parse"] = _mean(lenient)

    by_category: dict[str, list[float]] = defaultdict(list)
    items: dict[str, set[str]] = defaultdict(set)
    for s, p in zip(scores, predictions):
        if p.category is not None:
            by_category[p.category].append(s)
            items[p.category].add(p.id)
    categories = {c: {"n": len(items[c]), "accuracy": _mean(v)} for c, v in sorted(by_category.items())}
    return {"metrics": metrics, "categories": categories, "ties": ties, "parse_failures": failures}
