"""RQ1 of the demo, end to end: score the lab's pool with the judge, then analyse and curate it.

The numbers and targets are :mod:`egt.analysis.rq1`'s (:func:`egt.analysis.rq1.rq1_from_scores`);
this adds the scoring run in front of them (:func:`egt.pipelines.scoring.run.score_pool`).
"""

from __future__ import annotations

import time
from pathlib import Path

from egt.analysis.rq1 import rq1_from_scores
from egt.curation.selectors import check_kind
from egt.models.args import ModelArgs
from egt.pipelines.scoring import run as scoring
from egt.pipelines.scoring.config import ScoringConfig

__all__ = ["run_rq1"]


def run_rq1(
    judge_dir: str | Path,
    pool_path: str | Path,
    images_root: str | Path | None,
    out_dir: str | Path,
    rollouts: int = 4,
    seed: int = 0,
    *,
    batch_size: int = 16,
    device: str = "cpu",
    fraction: float = 0.5,
    max_new_tokens: int = 0,
    signal: str = "answer",
    peak_k: int = 3,
    temperature: float = 1.0,
    backend: str = "transformers",
) -> dict:
    """Score → analyse → curate (by ``signal``) under ``out_dir``; the numbers for ``report.json``'s ``rq1``.

    ``rollouts``, ``temperature``, ``peak_k``, ``max_new_tokens``, ``batch_size`` and ``backend``
    (transformers | vllm) are the scoring's (:class:`egt.pipelines.scoring.config.ScoringConfig`).
    Reruns resume an unfinished scoring run and replace outputs written by another judge or config.
    Keys: those of :func:`egt.analysis.rq1.rq1_from_scores`, plus ``rollouts`` and ``seconds["score"]``.
    """
    check_kind(signal)  # before the expensive part
    out = Path(out_dir)
    t0 = time.perf_counter()
    scores_path = out / "scores.jsonl"
    scoring.score_pool(
        ModelArgs(model=str(judge_dir), device=device),
        pool_path,
        scores_path,
        ScoringConfig(
            rollouts=rollouts,
            seed=seed,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            peak_k=peak_k,
            backend=backend,
        ),
        images_dir=images_root,
        overwrite=True,
    )
    score_seconds = round(time.perf_counter() - t0, 1)
    result = rq1_from_scores(scores_path, pool_path, images_root, out, signal=signal, fraction=fraction, seed=seed)
    result["rollouts"] = rollouts
    result["seconds"] = {"score": score_seconds, **result["seconds"]}
    return result
