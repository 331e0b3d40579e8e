"""RQ1 of the demo: does the SFT judge's response entropy flag hard items and label noise?

:func:`egt.pipelines.rq1.run_rq1` scores the lab's ``rl_pool`` with the judge (K rollouts at τ = 1);
:func:`rq1_from_scores` here analyses the scores and curates the lowest-entropy part by one signal
(``signal``, default answer-token entropy) — EGT steps (2) and (3) (docs/methods.md §3). Every
signal (:data:`SIGNALS`: answer, sentence, mixed, vote, peak) is measured: Spearman ρ with rollout
accuracy and AUROC for flipped labels and hard items.

The targets are relative to the lab's **ceiling** — the AUROC that the true ``ambiguity`` the lab
built each item with achieves (flips and hardness are drawn from it, so no signal read off the
judge should beat it by much). For the best signal (:func:`best_signal`):

* ``auroc_flipped_vs_ceiling`` — AUROC for flipped labels ≥ 0.85 × the flipped ceiling;
* ``auroc_hard_vs_ceiling`` — AUROC for hard items ≥ 0.80 × the hard ceiling;
* ``spearman_negative`` — ρ(signal, rollout accuracy) < 0;

and for the curation by ``signal``: ``curation_flip_rate`` — the kept part's flip rate is below
the dropped part's. The returned ``targets`` says met (True), missed (False) or not measurable
(None) for each.
"""

from __future__ import annotations

import time
from pathlib import Path

from egt.curation.selectors import ENTROPY_KINDS

SIGNALS = ENTROPY_KINDS
"""The entropies RQ1 measures: answer, sentence, mixed, vote, peak."""
TRUTHS = ("flipped", "hard")
CEILING_SHARE = {"flipped": 0.85, "hard": 0.80}
"""A target is met when the best signal's AUROC reaches this share of the ceiling AUROC."""
TARGETS = {
    "auroc_flipped_vs_ceiling": "best signal's AUROC for flipped labels ≥ 0.85 × the true-ambiguity ceiling",
    "auroc_hard_vs_ceiling": "best signal's AUROC for hard items ≥ 0.80 × the true-ambiguity ceiling",
    "spearman_negative": "best signal's Spearman ρ with rollout accuracy < 0",
    "curation_flip_rate": "flip rate of the kept (lowest-entropy) items < flip rate of the dropped ones",
}


def best_signal(result: dict) -> str | None:
    """The signal with the highest mean share of the ceiling over flipped and hard.

    Without a ceiling (no ``ambiguity``), the highest mean AUROC; without ground truth, the most
    negative Spearman ρ. Signals missing a number are skipped; ties go to the earlier signal in
    :data:`SIGNALS`; None when no signal has a number.
    """

    def mean(values):
        present = [v for v in values if v is not None]
        return sum(present) / len(present) if present else None

    for prefix in ("ceiling_fraction", "auroc"):
        scores = {s: mean([result.get(f"{prefix}_{t}_{s}") for t in TRUTHS]) for s in SIGNALS}
        if any(v is not None for v in scores.values()):
            return max((s for s in SIGNALS if scores[s] is not None), key=lambda s: scores[s])
    rhos = {s: result.get(f"spearman_{s}") for s in SIGNALS}
    present = [s for s in SIGNALS if rhos[s] is not None]
    return min(present, key=lambda s: rhos[s]) if present else None


def _targets(result: dict, best: str | None) -> dict[str, bool | None]:
    def at_least(value, ceiling, share):
        return None if value is None or ceiling is None else value >= share * ceiling

    get = result.get
    rho = get(f"spearman_{best}") if best else None
    cur = get("curation", {})
    kept, dropped = cur.get("flip_rate_kept"), cur.get("flip_rate_dropped")
    return {
        "auroc_flipped_vs_ceiling": at_least(
            get(f"auroc_flipped_{best}") if best else None, get("auroc_flipped_ceiling"), CEILING_SHARE["flipped"]
        ),
        "auroc_hard_vs_ceiling": at_least(
            get(f"auroc_hard_{best}") if best else None, get("auroc_hard_ceiling"), CEILING_SHARE["hard"]
        ),
        "spearman_negative": None if rho is None else rho < 0,
        "curation_flip_rate": None if kept is None or dropped is None else kept < dropped,
    }


def rq1_from_scores(
    scores_path: str | Path,
    pool_path: str | Path,
    images_root: str | Path | None,
    out_dir: str | Path,
    *,
    signal: str = "answer",
    fraction: float = 0.5,
    seed: int = 0,
) -> dict:
    """Analyse and curate an already scored pool under ``out_dir``; the numbers of :func:`egt.pipelines.rq1.run_rq1`.

    Keys (s over :data:`SIGNALS`, t over flipped / hard): ``signal``, ``best_signal``,
    ``spearman_<s>``, ``auroc_<t>_<s>``, ``auroc_<t>_rollout_error``, ``auroc_<t>_ceiling``,
    ``ceiling_fraction_<t>_<s>``, ``mean_rollout_accuracy``, ``format_rate``,
    ``items_with_format_failures``, ``n_items``, ``curation`` (selector, counts and the kept /
    dropped flip and hard rates), ``targets`` (:data:`TARGETS`: True / False / None), ``paths``,
    ``seconds``, ``suspicion`` (:func:`egt.analysis.suspicion.suspicion_report`) and ``warnings``
    (e.g. most items without the signal: the curation then goes ahead and says so). A number that
    cannot be computed (no ground truth, no ambiguity) is None.
    """
    from egt.analysis.analyze import analyze_scores
    from egt.curation.manifest import curate_pool
    from egt.curation.selectors import check_kind

    check_kind(signal)
    out = Path(out_dir)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    # the review page ranks by the default review signal (what finds flipped labels), not by the entropy
    # under study: the signal's own AUROC is in the RQ1 numbers
    analysis = analyze_scores(scores_path, out / "analysis", data=pool_path, images_dir=images_root)
    seconds["analyze"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    selection = curate_pool(
        scores_path,
        pool_path,
        out / "curation",
        selector="entropy",
        by=signal,
        fraction=fraction,
        seed=seed,
        images_dir=images_root,
        allow_missing_signal=True,  # the demo reports an untrained judge (its warnings below) rather than stopping
    )
    seconds["curate"] = round(time.perf_counter() - t0, 1)

    result: dict = {"signal": signal}
    result.update({f"spearman_{s}": analysis["spearman"].get(s) for s in SIGNALS})
    for t in TRUTHS:
        aurocs = analysis.get(f"auroc_{t}") or {}
        fractions = analysis.get(f"ceiling_fraction_{t}") or {}
        result.update({f"auroc_{t}_{s}": aurocs.get(s) for s in (*SIGNALS, "rollout_error")})
        result[f"auroc_{t}_ceiling"] = analysis.get(f"auroc_{t}_ceiling")
        result.update({f"ceiling_fraction_{t}_{s}": fractions.get(s) for s in SIGNALS})
    result.update(
        mean_rollout_accuracy=analysis["mean_accuracy"],
        format_rate=analysis["mean_format_rate"],
        items_with_format_failures=analysis["items_with_format_failures"],
        n_items=analysis["n_items"],
        curation={"selector": selection["selector"], "by": signal, **selection["counts"], **selection.get("lab", {})},
        paths={
            "scores": str(scores_path),
            "analysis": str(out / "analysis" / "analysis.json"),
            "review": analysis["files"].get("review"),
            "manifest": str(out / "curation" / "manifest.jsonl"),
            "selected": str(out / "curation" / selection["files"]["selected"]),
        },
        seconds=seconds,
    )
    result["suspicion"] = analysis["suspicion"]
    result["warnings"] = [*analysis["warnings"], *selection.get("warnings", [])]
    result["best_signal"] = best_signal(result)
    result["targets"] = _targets(result, result["best_signal"])
    return result


def rq1_summary_rows(rq1: dict) -> list[list[str]]:
    """Rows for ``egt demo``'s summary table: every signal, the ceiling, the best signal, the curation."""

    def num(x, fmt="+.3f"):
        return "–" if x is None else format(x, fmt)

    def mark(key):
        met = rq1.get("targets", {}).get(key)
        return "" if met is None else (" ✓" if met else " ✗")

    def share(t, s):
        frac = rq1.get(f"ceiling_fraction_{t}_{s}")
        return "" if frac is None else f" ({frac:.0%})"

    signal, best = rq1.get("signal", "answer"), rq1.get("best_signal")
    rows = [["RQ1 signal: ρ vs rollout accuracy / AUROC flipped / AUROC hard (share of ceiling)", ""]]
    for s in SIGNALS:
        notes = [n for n, on in (("curated by", s == signal), ("best", s == best)) if on]
        rows.append(
            [
                f"  {s} entropy" + (f" ({', '.join(notes)})" if notes else ""),
                f"{num(rq1.get(f'spearman_{s}'))} / {num(rq1.get(f'auroc_flipped_{s}'), '.3f')}{share('flipped', s)}"
                f" / {num(rq1.get(f'auroc_hard_{s}'), '.3f')}{share('hard', s)}",
            ]
        )
    rows.append(
        [
            "  ceiling: the true ambiguity's AUROC flipped / hard",
            f"{num(rq1.get('auroc_flipped_ceiling'), '.3f')} / {num(rq1.get('auroc_hard_ceiling'), '.3f')}",
        ]
    )
    if best is not None:
        rows.append(
            [
                f"RQ1 targets for the best signal ({best})",
                f"flipped ≥ 0.85 × ceiling{mark('auroc_flipped_vs_ceiling')} · hard ≥ 0.80 × ceiling"
                f"{mark('auroc_hard_vs_ceiling')} · ρ < 0{mark('spearman_negative')}",
            ]
        )
    cur = rq1.get("curation", {})
    if cur.get("flip_rate_kept") is not None and cur.get("flip_rate_dropped") is not None:
        rows.append(
            [
                f"curated lowest-entropy part by {signal}: flip rate kept / dropped",
                f"{100 * cur['flip_rate_kept']:.1f}% / "
                f"{100 * cur['flip_rate_dropped']:.1f}%{mark('curation_flip_rate')}",
            ]
        )
    sus = rq1.get("suspicion", {})
    if sus.get("auroc_flipped"):
        k = str(sus["n_flipped"])
        rows.append([f"review rankings for flipped labels: AUROC / precision@{k} (= n flipped)", ""])
        for name in sus["signals"]:
            precision = sus["precision_at_k_flipped"][name].get(k)
            rows.append(
                [
                    f"  {name}" + (" (best)" if name == sus.get("best") else ""),
                    f"{num(sus['auroc_flipped'][name], '.3f')} / {num(precision, '.2f')}",
                ]
            )
    rows += [["warning", w] for w in rq1.get("warnings", [])]
    return rows
