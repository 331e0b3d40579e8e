"""RQ1 of the demo: does the SFT judge's response entropy flag hard items and label noise?

``run_rq1`` scores the lab's ``rl_pool`` with the judge (K rollouts at τ = 1), analyses the scores
and curates the lowest-entropy half by answer-token entropy — EGT steps (2) and (3) (METHODS §3).
The issue's targets on the lab: Spearman(answer entropy, rollout accuracy) < 0, AUROC for hard
items ≥ 0.70 and for flipped labels ≥ 0.60; the returned dict says whether each was met.
"""

from __future__ import annotations

import time
from pathlib import Path

TARGETS = {"spearman_answer": ("<", 0.0), "auroc_hard_answer": (">=", 0.70), "auroc_flipped_answer": (">=", 0.60)}


def _met(value, op: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value < bound if op == "<" else value >= bound


def run_rq1(judge_dir: str | Path, pool_path: str | Path, images_root: str | Path | None, out_dir: str | Path,
            rollouts: int = 4, seed: int = 0, *, batch_size: int = 16, device: str = "cpu", fraction: float = 0.5,
            max_new_tokens: int = 0) -> dict:
    """Score → analyse → curate under ``out_dir``; returns the numbers for ``report.json``'s ``rq1``.

    Reruns resume an unfinished scoring run and replace outputs written by another judge.
    Keys: ``spearman_{answer,sentence,mixed}``, ``auroc_{flipped,hard}_{answer,sentence,mixed,rollout_error}``,
    ``mean_rollout_accuracy``, ``format_rate``, ``curation`` (counts and kept/dropped flip rates),
    ``targets`` (met or not), ``paths``, ``seconds``.
    """
    from egt.analysis.analyze import analyze_scores
    from egt.curation.manifest import curate_pool
    from egt.entropy.scoring import ScoringConfig, score_pool
    from egt.models.load import ModelArgs

    out = Path(out_dir)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    scores_path = out / "scores.jsonl"
    score_pool(ModelArgs(model=str(judge_dir), device=device), pool_path, scores_path,
               ScoringConfig(rollouts=rollouts, seed=seed, batch_size=batch_size, max_new_tokens=max_new_tokens),
               images_dir=images_root, overwrite=True)
    seconds["score"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    analysis = analyze_scores(scores_path, out / "analysis", data=pool_path, images_dir=images_root)
    seconds["analyze"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    selection = curate_pool(scores_path, pool_path, out / "curation", selector="entropy", by="answer",
                            fraction=fraction, seed=seed, images_dir=images_root)
    seconds["curate"] = round(time.perf_counter() - t0, 1)

    result: dict = {f"spearman_{k}": analysis["spearman"].get(k) for k in ("answer", "sentence", "mixed", "vote")}
    for truth in ("flipped", "hard"):
        for k, v in (analysis.get(f"auroc_{truth}") or {}).items():
            result[f"auroc_{truth}_{k}"] = v
    result.setdefault("auroc_flipped_answer", None)
    result.setdefault("auroc_hard_answer", None)
    result.update(
        mean_rollout_accuracy=analysis["mean_accuracy"], format_rate=analysis["mean_format_rate"],
        n_items=analysis["n_items"], rollouts=rollouts,
        curation={"selector": selection["selector"], **selection["counts"], **selection.get("lab", {})},
        targets={k: _met(result.get(k), op, bound) for k, (op, bound) in TARGETS.items()},
        paths={"scores": str(scores_path), "analysis": str(out / "analysis" / "analysis.json"),
               "review": analysis["files"].get("review"), "manifest": str(out / "curation" / "manifest.jsonl"),
               "selected": str(out / "curation" / selection["files"]["selected"])},
        seconds=seconds,
    )
    return result


def rq1_summary_rows(rq1: dict) -> list[list[str]]:
    """Rows for ``egt demo``'s summary table."""
    def num(x, fmt="+.3f"):
        return "–" if x is None else format(x, fmt)

    def mark(key):
        met = rq1.get("targets", {}).get(key)
        return "" if met is None else (" ✓" if met else " ✗")

    cur = rq1.get("curation", {})
    rows = [
        ["RQ1 Spearman ρ(answer entropy, rollout accuracy)", f"{num(rq1.get('spearman_answer'))} (target < 0){mark('spearman_answer')}"],
        ["RQ1 AUROC flipped labels (answer entropy)", f"{num(rq1.get('auroc_flipped_answer'), '.3f')} (target ≥ 0.60){mark('auroc_flipped_answer')}"],
        ["RQ1 AUROC hard items (answer entropy)", f"{num(rq1.get('auroc_hard_answer'), '.3f')} (target ≥ 0.70){mark('auroc_hard_answer')}"],
        ["  same for sentence entropy: ρ / AUROC flipped / hard",
         f"{num(rq1.get('spearman_sentence'))} / {num(rq1.get('auroc_flipped_sentence'), '.3f')} / "
         f"{num(rq1.get('auroc_hard_sentence'), '.3f')}"],
    ]
    if cur.get("flip_rate_kept") is not None:
        rows.append(["curated lowest-entropy half: flip rate kept / dropped",
                     f"{100 * cur['flip_rate_kept']:.1f}% / {100 * cur['flip_rate_dropped']:.1f}%"])
    return rows
