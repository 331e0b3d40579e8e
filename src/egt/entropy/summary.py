"""Per-item statistics of ``egt score``: one scores record from an item's K rollouts, and pool summaries.

Failure rules (issue 14; :mod:`egt.pipelines.scoring.run`): a rollout whose text fails the strict
parser has no answer-token entropy and no verdict; item entropies are means over the rollouts that
have one. Every field of a record: :mod:`egt.entropy.score_store`.
"""

from __future__ import annotations

from collections.abc import Sequence

from egt.entropy.signals import mixed_entropy, vote_entropy
from egt.judge.base import original_choice

__all__ = [
    "MOSTLY_MISSING",
    "TRUTH_KEYS",
    "add_mixed_entropy",
    "missing_signal_warning",
    "pool_summary",
    "summarise_item",
]

TRUTH_KEYS = ("flipped", "hard", "difficulty", "true_preferred", "ambiguity")
"""The lab's ground truth, copied from an item's meta into its scores record when present
(``ambiguity`` is the perceptual ambiguity the lab built the item with: the analysis's ceiling)."""


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def summarise_item(pair, index: int, rollouts: Sequence[dict], keep_texts: bool = True) -> dict:
    """One item's scores record from its K rollouts.

    Each rollout dict has ``swapped``, ``text``, ``n_tokens``, ``answer_entropy``,
    ``sentence_entropy``, ``peak_entropy`` (optional) and ``choice`` (presented order, None when
    the strict parse fails). Failure rules (module doc): a rollout with ``choice`` None is a format
    failure and has no answer-token entropy, whatever it was given; ``format_failures`` counts
    them. Item entropies are means over the rollouts that have one (None when none has: it then
    ranks as the most uncertain, see ``percentile_rank``); a parse failure counts as a wrong
    verdict for ``accuracy`` and as an outcome of its own for ``vote_entropy``.
    """
    verdicts = [original_choice(r["choice"], r["swapped"]) for r in rollouts]
    answers = [None if r["choice"] is None else r["answer_entropy"] for r in rollouts]  # [K]
    peaks = [r.get("peak_entropy") for r in rollouts]  # [K]
    failures = sum(r["choice"] is None for r in rollouts)
    record = {
        "id": pair.id,
        "index": index,
        "preferred": pair.preferred,
        "answer_entropy": _mean(answers),
        "sentence_entropy": _mean([r["sentence_entropy"] for r in rollouts]),
        "peak_entropy": _mean(peaks),
        "vote_entropy": vote_entropy(verdicts),
        "accuracy": sum(v == pair.preferred for v in verdicts) / len(verdicts),
        "format_rate": (len(rollouts) - failures) / len(rollouts),
        "format_failures": failures,
        "verdicts": verdicts,
        "swapped": [r["swapped"] for r in rollouts],
        "answer_entropies": answers,
        "sentence_entropies": [r["sentence_entropy"] for r in rollouts],
        "peak_entropies": peaks,
        "n_tokens": [r["n_tokens"] for r in rollouts],
    }
    if pair.category is not None:
        record["category"] = pair.category
    record.update({k: pair.meta[k] for k in TRUTH_KEYS if k in pair.meta})
    if keep_texts:
        record["texts"] = [r["text"] for r in rollouts]
    return record


def add_mixed_entropy(records: list[dict], lam: float) -> list[dict]:
    """Set ``mixed_entropy`` = λ·rank(H_ans) + (1−λ)·rank(H_sent) over the pool (docs/methods.md §2)."""
    mixed = mixed_entropy([r["answer_entropy"] for r in records], [r["sentence_entropy"] for r in records], lam)
    for r, m in zip(records, mixed.tolist(), strict=True):
        r["mixed_entropy"] = round(float(m), 6)
    return records


def pool_summary(records: Sequence[dict]) -> dict:
    """Pool-level means written to the sidecar (deterministic: no timings)."""
    n = len(records)

    def mean(key: str) -> float | None:
        values = [r[key] for r in records if r.get(key) is not None]
        return round(sum(values) / len(values), 6) if values else None

    missing = sum(r["answer_entropy"] is None for r in records)
    failed = sum(bool(r.get("format_failures")) for r in records)
    return {
        "n_items": n,
        "mean_accuracy": mean("accuracy"),
        "mean_format_rate": mean("format_rate"),
        "mean_answer_entropy": mean("answer_entropy"),
        "mean_sentence_entropy": mean("sentence_entropy"),
        "mean_peak_entropy": mean("peak_entropy"),
        "items_without_answer_entropy": missing,
        "items_with_format_failures": failed,
    }


MOSTLY_MISSING = 0.5
"""A ranking signal missing for more than this share of a pool is warned about (score, analyze,
curate, the review page's banner) and refused by ``egt curate`` unless ``--allow_missing_signal``."""


def missing_signal_warning(missing: int, total: int, signal: str, what: str = "") -> str | None:
    """The loud one-liner when ``signal`` is missing for most of a pool (:data:`MOSTLY_MISSING`), else None.

    ``what`` says what the items lack; default: the entropy (no parsable block in any rollout).
    """
    if total == 0 or missing / total <= MOSTLY_MISSING:
        return None
    what = what or f"no {signal} entropy (no parsable block in any rollout)"
    return (
        f"{missing} of {total} items ({missing / total:.0%}) have {what}: a ranking by {signal} is "
        "mostly ties, not a measurement — is the judge trained for this prompt format?"
    )
