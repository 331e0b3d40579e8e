"""What a review budget buys in accuracy (issue 25, item 4): RL on a pool a reviewer corrected.

A simulated reviewer (the lab's truth) reads the first ``k`` items of a suspicion ranking
(:mod:`egt.analysis.suspicion`) and flips each one whose label the lab says is flipped; its decisions
are written as the review page's ``corrections.jsonl`` and applied with ``egt relabel``
(:func:`egt.curation.relabel.relabel_pool`). Then the experiment's strong RL setting trains the
weak SFT judge on the *whole* corrected pool (shuffled, as table N's ``full`` arm) and the judge is
evaluated on the clean test, overall and in the biased region. ``random`` spends the same budget on
a seeded random order, ``all`` corrects every flipped label (the ceiling); ``k = 0`` is table N's
``full`` cell of the same seed (the uncorrected pool), reused when it has finished.

Cells live in ``<output_dir>/review/seed{s}/{ranking}-{k}/`` with a ``done.json`` each, on the
systematic noise model of a finished ``egt experiment`` folder (its labs, SFT judges and scores),
so a rerun skips what is done and an RL run resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import numpy as np

from egt.data.atomic import atomic_write_json
from egt.errors import EgtError
from egt.pipelines.experiment import steps
from egt.pipelines.experiment.cells import relabel_scores, select, train_rl, write_manifest
from egt.pipelines.experiment.config import ExperimentConfig
from egt.pipelines.experiment.grid import Arm
from egt.pipelines.experiment.stats import hierarchical_bootstrap, paired_deltas

NOISE, STRENGTH = "systematic", "strong"
FULL = Arm("full")


def scored_pool(cfg: ExperimentConfig, seed: int) -> tuple[list[dict], list]:
    """The weak judge's score records against the systematic labels, and the systematic pool's pairs."""
    from egt.entropy.score_store import read_scores
    from egt.records import read_pairs

    stats = steps.regime_stats_dir(cfg, seed, cfg.main_regime)
    if not steps.is_done(stats):
        raise EgtError(f"{stats}: the {cfg.main_regime} judge of seed {seed} has not been scored yet (egt experiment)")
    pool = read_pairs(steps.data_files(cfg, seed, cfg.rl_teacher, NOISE)["pool"])
    _, records = read_scores(stats / "rq1" / "scores.jsonl")
    return relabel_scores(records, pool, steps.region_of(cfg)), pool


def review_order(records: list[dict], ranking: str, seed: int) -> list[str]:
    """Pool ids in the order the reviewer reads them (``random``: seeded; ``all``: flipped first)."""
    from egt.analysis.suspicion import SIGNALS, ranked_ids, suspicion_scores

    ids = [r["id"] for r in records]
    if ranking == "random":
        random.Random(seed).shuffle(ids)
        return ids
    if ranking == "all":
        flipped = {r["id"] for r in records if r.get("flipped")}
        return sorted(ids, key=lambda i: i not in flipped)
    if ranking not in SIGNALS:
        raise EgtError(f"review ranking {ranking!r}: one of random | all | {' | '.join(SIGNALS)}")
    return ranked_ids(records, suspicion_scores(records)[ranking])


def review_dir(cfg: ExperimentConfig, seed: int, ranking: str, k: int) -> Path:
    """``<output_dir>/review/seed{s}/{ranking}-{k}``: one review cell."""
    return Path(cfg.output_dir) / "review" / f"seed{seed}" / f"{ranking}-{k}"


def run_review_cell(cfg: ExperimentConfig, seed: int, ranking: str, k: int) -> dict:
    """Correct the top ``k`` of ``ranking``, RL on the corrected pool, evaluate; ``done.json``'s content."""
    from egt.curation.relabel import relabel_pool

    out = review_dir(cfg, seed, ranking, k)
    if steps.is_done(out):
        return steps.read_done(out)
    t0 = time.perf_counter()
    records, pool = scored_pool(cfg, seed)  # checked before anything is written
    out.mkdir(parents=True, exist_ok=True)
    truth = {p.id: bool(p.meta["flipped"]) for p in pool}
    reviewed = review_order(records, ranking, seed)[: len(pool) if ranking == "all" else k]
    fixes = [{"id": i, "action": "flip" if truth[i] else "keep", "note": "lab truth"} for i in reviewed]
    (out / "corrections.jsonl").write_text("".join(json.dumps(f) + "\n" for f in fixes))
    files = steps.data_files(cfg, seed, cfg.rl_teacher, NOISE)
    relabelled = relabel_pool(files["pool"], out / "corrections.jsonl", out / "pool", link_images=False)
    data = out / "pool" / relabelled["output"]
    rows, _ = select(FULL, records, seed, "peak")
    manifest = write_manifest(out / "manifest.jsonl", rows)
    learning_rate, n_steps, eval_every = cfg.strength(STRENGTH)
    sft_judge = steps.judge_dir(cfg, seed, cfg.rl_teacher, steps.regime_epoch(cfg, cfg.main_regime))
    rl = train_rl(
        cfg, seed, sft_judge, files, manifest, FULL, "peak", out / "judge", n_steps, "off",
        learning_rate=learning_rate, eval_every=eval_every, data=data,
    )  # fmt: skip
    final = steps.evaluate_on_test(out / "judge", cfg, seed, cfg.rl_teacher)
    result = {
        "seed": seed,
        "ranking": ranking,
        "k": len(reviewed),
        "flips_found": sum(truth[i] for i in reviewed),
        "flipped_before": sum(truth.values()),
        "relabel": relabelled["counts"],
        "final": final,
        "rl": {key: rl.get(key) for key in ("steps", "reward_first", "reward_last")},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write_json(out / steps.DONE, result)
    from egt.rl.recipe import checkpoint_dir

    shutil.rmtree(checkpoint_dir(out / "judge"), ignore_errors=True)
    return result


def full_cell(cfg: ExperimentConfig, seed: int) -> dict | None:
    """Table N's full-pool cell on systematic labels (k = 0), if it has finished."""
    folder = steps.cell_dir(cfg, seed, cfg.main_regime, FULL, NOISE, STRENGTH)
    return steps.read_done(folder) if steps.is_done(folder) else None


def summarise(cfg: ExperimentConfig, results: list[dict]) -> dict:
    """Per (ranking, k): accuracy overall and in the region, and Δ vs k = 0 with seed-level CIs."""
    masks = {s: np.asarray(steps.region_mask(cfg, s), dtype=bool) for s in {r["seed"] for r in results}}
    base = {s: np.asarray(c["final"]["per_item"]) for s in masks if (c := full_cell(cfg, s)) is not None}
    rows = []
    for ranking, k in sorted({(r["ranking"], r["k"]) for r in results}, key=lambda x: (x[0], x[1])):
        cells = {r["seed"]: r for r in results if (r["ranking"], r["k"]) == (ranking, k)}
        per_item = {s: np.asarray(c["final"]["per_item"]) for s, c in cells.items()}
        row = {"ranking": ranking, "k": k, "seeds": sorted(cells)}
        row["flips_found"] = [cells[s]["flips_found"] for s in sorted(cells)]
        row["flipped_before"] = [cells[s]["flipped_before"] for s in sorted(cells)]
        for metric in ("overall", "region"):
            mask = None if metric == "overall" else masks
            values = [per_item[s][masks[s]] if mask else per_item[s] for s in sorted(cells)]
            row[f"accuracy_{metric}"] = hierarchical_bootstrap(values, cfg.bootstrap_resamples)
            row[f"delta_{metric}"] = hierarchical_bootstrap(
                paired_deltas(per_item, base, mask), cfg.bootstrap_resamples
            )
        rows.append(row)
    return {"k0_seeds": sorted(base), "rows": rows}
