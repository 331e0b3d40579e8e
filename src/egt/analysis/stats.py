"""Does response entropy track accuracy and label noise? (EGT arXiv 2602.01884 §4.2; docs/methods.md §2)

On a scored pool (``egt score`` output) this computes, for each signal — answer-token,
reasoning-sentence, mixed, the verdict vote entropy and the reasoning peak entropy:

* Spearman ρ with rollout accuracy (EGT: accuracy falls as entropy rises, so ρ < 0);
* rollout accuracy by entropy quantile bin (equal-count bins, low → high entropy);
* when the items carry ground truth (the shapes lab): AUROC of the signal as a detector of
  flipped labels and of hard items; ``rollout_error`` (1 − rollout accuracy) is reported beside
  them as the accuracy baseline's detector;
* the lab's **ceiling**: when the items also carry the ``ambiguity`` the lab built them with,
  the AUROC that the true ambiguity itself achieves for each (``auroc_<truth>_ceiling``) and each
  signal's fraction of it (``ceiling_fraction_<truth>``: AUROC ÷ ceiling). Flips and hardness are
  drawn from ambiguity, so no signal read off the judge is expected to beat it by much; the
  fraction says how much of the learnable part a signal recovers.

Spearman and AUROC rank each signal as curation does (``egt.curation.selectors``): an item with
format failures is less certain than every item without, then ``egt.entropy.percentile_rank`` of
the value — a missing entropy (no parsable block in any rollout) counts as the most uncertain.
The bins describe the entropy values alone. A statistic that is undefined (a constant input, a
single class, a signal no record carries) is ``None``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from egt.entropy import mixed_entropy, percentile_rank

ENTROPY_FIELDS = {
    "answer": "answer_entropy",
    "sentence": "sentence_entropy",
    "mixed": "mixed_entropy",
    "vote": "vote_entropy",
    "peak": "peak_entropy",
}
"""Signal name → scores-record field (the selectors' ``ENTROPY_KINDS``)."""
TRUTHS = ("flipped", "hard")
CEILING_FIELD = "ambiguity"


def ranks(values: Sequence[float | None], failures: Sequence[int] | None = None) -> np.ndarray:
    """Percentile ranks in [0, 1], missing values highest (``egt.entropy.percentile_rank``).

    With ``failures`` (per-item format-failure counts) the order is that of the selectors:
    ``(failures, value)`` lexicographic — every item with failures above every item without.
    """
    r = percentile_rank(list(values)).double().numpy()  # [N] in [0, 1]
    if failures is None or not any(failures):
        return r
    return percentile_rank(2.0 * np.asarray(failures, dtype=float) + r).double().numpy()  # r < 2: lexicographic


def _all_missing(values: Sequence[float | None]) -> bool:
    return all(v is None or v != v for v in values)  # None or NaN


def spearman(
    values: Sequence[float | None], accuracy: Sequence[float], failures: Sequence[int] | None = None
) -> tuple[float | None, float | None]:
    """``(ρ, p)`` of the signal's ranks against rollout accuracy (scipy); None when either is constant."""
    from scipy.stats import spearmanr

    if _all_missing(values):
        return None, None
    x, y = ranks(values, failures), np.asarray(accuracy, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def auroc(
    values: Sequence[float | None], labels: Sequence[bool], failures: Sequence[int] | None = None
) -> float | None:
    """AUROC (sklearn) of higher signal ⇒ positive label; None unless both classes occur and some value does."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype=bool)
    if y.all() or not y.any() or _all_missing(values):
        return None
    return float(roc_auc_score(y, ranks(values, failures)))


def ceiling_fraction(value: float | None, ceiling: float | None) -> float | None:
    """``value / ceiling`` (a signal's share of the ceiling AUROC); None when either is missing."""
    if value is None or ceiling is None or ceiling <= 0:
        return None
    return value / ceiling


def accuracy_by_bin(
    values: Sequence[float | None],
    accuracy: Sequence[float],
    ids: Sequence[str],
    n_bins: int = 5,
    truth: dict[str, Sequence[bool]] | None = None,
) -> list[dict]:
    """Equal-count bins of ascending entropy (ties by id): count, entropy range, mean accuracy.

    ``truth`` maps a name (``flipped``, ``hard``) to per-item booleans; each bin then also gets
    ``<name>_rate``.
    """
    r = ranks(values)
    order = sorted(range(len(ids)), key=lambda i: (r[i], ids[i]))
    bins = []
    for number, members in enumerate(np.array_split(np.asarray(order, dtype=int), min(n_bins, len(order)))):
        present = [values[i] for i in members if values[i] is not None]
        row = {
            "bin": number,
            "n": int(len(members)),
            "entropy_min": min(present) if present else None,
            "entropy_max": max(present) if present else None,
            "missing": int(len(members) - len(present)),
            "mean_accuracy": float(np.mean([accuracy[i] for i in members])),
        }
        for name, flags in (truth or {}).items():
            row[f"{name}_rate"] = float(np.mean([bool(flags[i]) for i in members]))
        bins.append(row)
    return bins


def analyze_records(records: Sequence[dict], n_bins: int = 5, lam: float = 0.5) -> dict:
    """The analysis of a scores file's records (the dict written to ``analysis.json``).

    Keys: ``n_items``, ``n_bins``, ``mean_accuracy``, ``mean_format_rate``,
    ``items_with_format_failures``, ``missing`` / ``spearman`` / ``spearman_p`` / ``bins`` (per
    signal), ``ground_truth``; per truth t present: ``auroc_<t>`` (per signal + ``rollout_error``),
    ``n_<t>``, ``auroc_<t>_ceiling`` (None without ``ambiguity``) and ``ceiling_fraction_<t>``
    (per signal and ``rollout_error``).
    """
    from egt.entropy.score_store import format_failures

    records = list(records)
    ids = [r["id"] for r in records]
    accuracy = [float(r["accuracy"]) for r in records]
    failures = [format_failures(r) for r in records]  # [N]
    values = {name: [r.get(key) for r in records] for name, key in ENTROPY_FIELDS.items()}
    if any("mixed_entropy" not in r for r in records):  # a file from elsewhere: recompute EGT's rank mixture
        values["mixed"] = mixed_entropy(values["answer"], values["sentence"], lam).tolist()
    truth = {name: [r[name] for r in records] for name in TRUTHS if all(r.get(name) is not None for r in records)}
    ambiguity = (
        [float(r[CEILING_FIELD]) for r in records] if all(r.get(CEILING_FIELD) is not None for r in records) else None
    )
    out: dict = {
        "n_items": len(records),
        "n_bins": n_bins,
        "mean_accuracy": float(np.mean(accuracy)),
        "mean_format_rate": float(np.mean([r.get("format_rate", 0.0) for r in records])),
        "items_with_format_failures": sum(f > 0 for f in failures),
        "missing": {name: sum(v is None for v in vals) for name, vals in values.items()},
        "spearman": {},
        "spearman_p": {},
        "bins": {},
    }
    for name, vals in values.items():
        out["spearman"][name], out["spearman_p"][name] = spearman(vals, accuracy, failures)
        out["bins"][name] = accuracy_by_bin(vals, accuracy, ids, n_bins, truth)
    error = [1.0 - a for a in accuracy]
    for name, flags in truth.items():
        detectors = {**{k: auroc(v, flags, failures) for k, v in values.items()}, "rollout_error": auroc(error, flags)}
        ceiling = auroc(ambiguity, flags) if ambiguity is not None else None
        out[f"auroc_{name}"] = detectors
        out[f"n_{name}"] = int(sum(bool(f) for f in flags))
        out[f"auroc_{name}_ceiling"] = ceiling
        out[f"ceiling_fraction_{name}"] = {k: ceiling_fraction(v, ceiling) for k, v in detectors.items()}
    out["ground_truth"] = sorted(truth)
    return out
