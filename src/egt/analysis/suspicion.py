"""Which stored labels to review first: label-aware and label-free suspicion rankings (issue 25).

A dataset owner reviewing a pool wants the items whose *stored label* is most likely wrong at the
top. Every signal here is a score per item, higher = review first (:func:`suspicion_scores`):

* ``disagreement`` [label-aware; our default for review] — the share of an item's parsed rollouts
  whose verdict goes against the stored label. With K rollouts it takes K + 1 values, so ties are
  broken by the judge's confidence, cleanlab's *self-confidence* idea (``find_label_issues``,
  ``rank_by="self_confidence"``) carried over to pairs: the estimated probability the judge gives
  the stored label, ``mean_r p_r(label)``, where rollout r's confidence in its own verdict is
  ``c_r = h⁻¹(H_r)`` — the binary-entropy inverse of its answer-token entropy, in [½, 1] (H = 0 →
  certain, H ≥ ln 2 → a coin; a rollout without an answer entropy counts as certain) — and
  ``p_r(label) = c_r`` when it agrees, ``1 − c_r`` when not. The key is lexicographic: first the
  share against, then ``1 − self-confidence``. So 4/4 confidently against ranks above 4/4 hesitantly
  against, and 0/4 hesitantly with the label above 0/4 confidently with it. An item with no parsed
  verdict at all has no evidence about its label: it ranks *last* here (the review page lists such
  items in a section of their own, the format failures).
* the entropy signals ``answer``, ``sentence``, ``mixed``, ``vote``, ``peak`` [label-free; EGT] —
  ranked as curation and the statistics rank them (:func:`egt.analysis.stats.ranks`): an item with
  format failures above every item without, a missing entropy as the most uncertain.
* ``combined`` [our choice] — ``λ·rank(disagreement) + (1 − λ)·rank(peak)`` with λ = ½ (percentile
  ranks over the pool): the label-aware signal and the label-free one our results support
  (``docs/results/lab_full``: peak is the entropy with the highest AUROC for flipped labels).

On the lab (items carry ``flipped``) :func:`suspicion_report` measures each ranking as a detector
of flipped labels: AUROC (``sklearn.metrics.roc_auc_score``) and precision@k
(``sklearn.metrics.precision_score`` of the top k, ties by id), for k in :data:`PRECISION_AT` and
k = the number of flipped items (R-precision). The defaults the commands use follow those
measurements: ``disagreement`` to review (AUROC 0.997 at SFT convergence on ``lab_full``, where no
entropy passes 0.61), ``peak`` to curate by; EGT's choice, ``answer``, stays selectable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from egt.analysis.stats import ENTROPY_FIELDS, ranks

LABEL_AWARE = ("disagreement", "combined")
SIGNALS = ("disagreement", "combined", *ENTROPY_FIELDS)
"""Every ranking, the label-aware ones first."""
DEFAULT_REVIEW_BY = "disagreement"
DEFAULT_CURATE_BY = "peak"
PRECISION_AT = (10, 50)
LAMBDA = 0.5
"""Weight of the disagreement rank in ``combined``."""


def rollout_confidence(entropy: float | None) -> float:
    """``h⁻¹(H)`` in [½, 1]: the probability p ≥ ½ whose binary entropy is ``H`` nats (module doc).

    None (no answer entropy) → 1; ``H ≥ ln 2`` → ½. Bisection: h is decreasing on [½, 1].
    """
    if entropy is None or entropy != entropy:
        return 1.0
    if entropy <= 0:
        return 1.0
    if entropy >= math.log(2):
        return 0.5
    lo, hi = 0.5, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        h = -(mid * math.log(mid) + (1 - mid) * math.log(1 - mid))
        lo, hi = (mid, hi) if h > entropy else (lo, mid)
    return (lo + hi) / 2


def label_votes(record: dict) -> dict:
    """``{"against", "parsed", "k", "disagreement", "self_confidence"}`` of one scores record.

    ``disagreement`` and ``self_confidence`` are None when no rollout parsed.
    """
    label = record.get("preferred")
    verdicts = record.get("verdicts") or []
    entropies = record.get("answer_entropies") or [None] * len(verdicts)
    parsed = [(v, h) for v, h in zip(verdicts, entropies, strict=False) if v is not None]
    against = sum(v != label for v, _ in parsed)
    if not parsed:
        return {"against": 0, "parsed": 0, "k": len(verdicts), "disagreement": None, "self_confidence": None}
    p_label = [rollout_confidence(h) if v == label else 1.0 - rollout_confidence(h) for v, h in parsed]
    return {
        "against": against,
        "parsed": len(parsed),
        "k": len(verdicts),
        "disagreement": against / len(parsed),
        "self_confidence": float(np.mean(p_label)),
    }


def _lexicographic_rank(keys: Sequence[tuple]) -> np.ndarray:
    """Percentile ranks in [0, 1] of tuples (equal tuples tie)."""
    order = {key: i for i, key in enumerate(sorted(set(keys)))}
    return ranks([float(order[k]) for k in keys])


def suspicion_scores(records: Sequence[dict], lam: float = 0.5) -> dict[str, np.ndarray]:
    """Per signal (:data:`SIGNALS`) a ``[N]`` float array, higher = review first (module doc).

    ``lam`` is the λ of EGT's mixed entropy when the file lacks it (as in the statistics).
    """
    from egt.entropy import mixed_entropy
    from egt.entropy.score_store import format_failures

    failures = [format_failures(r) for r in records]
    votes = [label_votes(r) for r in records]
    keys = [(-1.0, 0.0) if v["parsed"] == 0 else (v["disagreement"], 1.0 - v["self_confidence"]) for v in votes]
    out = {"disagreement": _lexicographic_rank(keys)}
    values = {name: [r.get(key) for r in records] for name, key in ENTROPY_FIELDS.items()}
    if any("mixed_entropy" not in r for r in records):
        values["mixed"] = mixed_entropy(values["answer"], values["sentence"], lam).tolist()
    for name, vals in values.items():
        out[name] = ranks(vals, failures)
    out["combined"] = LAMBDA * out["disagreement"] + (1.0 - LAMBDA) * out["peak"]
    return {name: out[name] for name in SIGNALS}


def missing_counts(records: Sequence[dict]) -> dict[str, int]:
    """How many items have no value for each signal (no parsed verdict for the label-aware ones)."""
    no_verdict = sum(all(v is None for v in (r.get("verdicts") or [None])) for r in records)
    out = dict.fromkeys(LABEL_AWARE, no_verdict)
    out.update({name: sum(r.get(key) is None for r in records) for name, key in ENTROPY_FIELDS.items()})
    if any("mixed_entropy" not in r for r in records):
        out["mixed"] = sum(r.get("answer_entropy") is None or r.get("sentence_entropy") is None for r in records)
    return out


def ranked_ids(records: Sequence[dict], scores: np.ndarray) -> list[str]:
    """Ids by descending score, ties by id (the page's and precision@k's order)."""
    order = sorted(range(len(records)), key=lambda i: (-scores[i], records[i]["id"]))
    return [records[i]["id"] for i in order]


def precision_at_k(ids_ranked: Sequence[str], truth: dict[str, bool], k: int) -> float | None:
    """Share of flipped items among the first ``k`` (``sklearn.metrics.precision_score``); None if k < 1."""
    from sklearn.metrics import precision_score

    if k < 1:
        return None
    top = set(ids_ranked[:k])
    ids = list(truth)
    return float(precision_score([truth[i] for i in ids], [i in top for i in ids], zero_division=0.0))


def suspicion_report(records: Sequence[dict], lam: float = 0.5) -> dict:
    """``{"signals", "missing", "n_items", "position", [lab: "n_flipped", "k", "auroc_flipped",
    "precision_at_k_flipped", "best"]}``.

    ``position``: :func:`position_bias` (a judge that answers by position makes every label-aware
    ranking follow the presentation order).

    The flipped-label numbers only when every record carries ``flipped`` (the lab); a signal no
    record carries, or that is the same for every item, has None. ``best`` is the signal with the
    highest AUROC (ties: the earlier in :data:`SIGNALS`).
    """
    from sklearn.metrics import roc_auc_score

    records = list(records)
    out: dict = {
        "signals": list(SIGNALS),
        "n_items": len(records),
        "missing": missing_counts(records),
        "position": position_bias(records),
    }
    if not records or not all(r.get("flipped") is not None for r in records):
        return out
    flipped = {r["id"]: bool(r["flipped"]) for r in records}
    labels = [flipped[r["id"]] for r in records]
    n_flipped = sum(labels)
    ks = sorted({k for k in (*PRECISION_AT, n_flipped) if 0 < k <= len(records)})
    scores = suspicion_scores(records, lam)
    two_classes = 0 < n_flipped < len(records)
    aurocs, precisions = {}, {}
    for name in SIGNALS:
        absent = out["missing"][name] == len(records) or np.ptp(scores[name]) == 0  # nothing measured
        aurocs[name] = None if absent or not two_classes else float(roc_auc_score(labels, scores[name]))
        ranked = ranked_ids(records, scores[name])
        precisions[name] = {str(k): None if absent else precision_at_k(ranked, flipped, k) for k in ks}
    present = [s for s in SIGNALS if aurocs[s] is not None]
    out.update(
        n_flipped=n_flipped,
        k=ks,
        auroc_flipped=aurocs,
        precision_at_k_flipped=precisions,
        best=max(present, key=lambda s: aurocs[s]) if present else None,
    )
    return out


POSITION_BIAS = 0.9  # share of parsed verdicts on one presented position from which analyze and the page warn
MIN_POSITION_VERDICTS = 20


def position_bias(records: Sequence[dict]) -> dict:
    """``{"first", "n", "both_orders"}``: the share of parsed rollout verdicts that pick the response
    shown first, over ``n`` parsed verdicts; ``both_orders`` when rollouts saw both presentation
    orders (only then is the share about position rather than about where the labels sit)."""
    first = n = 0
    orders = set()
    for r in records:
        for verdict, swapped in zip(r.get("verdicts") or [], r.get("swapped") or [], strict=False):
            orders.add(bool(swapped))
            if verdict is None:
                continue
            n += 1
            first += verdict == (1 if swapped else 0)  # verdicts are stored-order indices
    return {"first": first / n if n else None, "n": n, "both_orders": len(orders) == 2}


def position_warning(bias: dict) -> str | None:
    """One line when the judge picks one presented position in ≥ :data:`POSITION_BIAS` of its verdicts."""
    share = bias.get("first")
    if share is None or bias["n"] < MIN_POSITION_VERDICTS or not bias["both_orders"]:
        return None
    side, rate = ("first", share) if share >= 0.5 else ("second", 1 - share)
    if rate < POSITION_BIAS:
        return None
    return (
        f"the judge picks the response shown {side} in {rate:.0%} of its {bias['n']} parsed rollouts, whatever "
        "the content: its verdicts follow position, so the label-aware rankings (disagreement, combined) "
        "flag items by the order they were shown in, not by whether the label is wrong; train the judge further"
    )


def signal_warning(missing: int, total: int, signal: str) -> str | None:
    """:func:`egt.entropy.summary.missing_signal_warning` for any of :data:`SIGNALS`."""
    from egt.entropy.summary import missing_signal_warning

    what = "no parsable verdict (every rollout failed the judge format)" if signal in LABEL_AWARE else ""
    return missing_signal_warning(missing, total, signal, what)


__all__ = [
    "DEFAULT_CURATE_BY",
    "DEFAULT_REVIEW_BY",
    "LABEL_AWARE",
    "PRECISION_AT",
    "SIGNALS",
    "label_votes",
    "position_bias",
    "position_warning",
    "missing_counts",
    "precision_at_k",
    "ranked_ids",
    "rollout_confidence",
    "signal_warning",
    "suspicion_report",
    "suspicion_scores",
]
