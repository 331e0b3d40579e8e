"""One RL cell of the experiment: select → RL at the preset's fixed budget → clean-test curve.

Selection reuses the curation orderings (:mod:`egt.curation.selectors`) and writes a manifest the
RL curriculum reads, so a cell trains exactly as ``egt curate`` + ``egt train rl`` would. Two arms
have orderings of their own: ``highest`` (the lowest-entropy ordering reversed: RQ4) and
``oracle`` (items whose label is not flipped, in seeded random order: it reads the lab's hidden
truth and is an upper bound, never a method).

The online arm (T5) [our design; EGT scores once]: the kept subset is trained in S stages of
``rl_steps / S`` steps; stage 1 takes the lowest-entropy 1/S by the static scores, and before each
later stage the judge as it is now re-scores the items not yet trained on, and the next 1/S lowest
are taken. Each stage is its own ``egt train rl`` run from the previous stage's judge, so the
optimiser state restarts between stages (the static arm runs once): with Adam at a constant
learning rate this is a small difference, and it is stated in the results.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

from egt.data.atomic import atomic_write_json, atomic_write_text, read_json
from egt.errors import EgtError
from egt.pipelines.experiment.config import ExperimentConfig
from egt.pipelines.experiment.grid import Arm
from egt.pipelines.experiment.steps import (
    DONE,
    cell_dir,
    data_files,
    evaluate_on_test,
    images_root,
    main_signal_of,
    read_done,
    regime_epoch,
    regime_stats_dir,
)

# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------


def ordering(arm: Arm, scores: dict[str, dict], truth: dict[str, dict], seed: int) -> list[str]:
    """All pool ids in the arm's selection order (the first ``keep`` are kept)."""
    from egt.curation.selectors import order_by_accuracy, order_by_entropy, order_random
    from egt.data.presentation import stable_unit

    if arm.selector == "full":
        return list(scores)
    if arm.selector == "random":
        return order_random(scores, seed)
    if arm.selector == "accuracy":
        return order_by_accuracy(scores, seed)
    if arm.selector == "entropy":
        return order_by_entropy(scores, arm.signal)
    if arm.selector == "highest":
        return order_by_entropy(scores, arm.signal)[::-1]
    if arm.selector == "oracle":
        return sorted(scores, key=lambda i: (bool(truth[i].get("flipped")), stable_unit(i, seed), i))
    raise EgtError(f"unknown selector {arm.selector!r}")


def select(arm: Arm, records: list[dict], seed: int, by: str) -> tuple[list[dict], dict]:
    """Manifest rows (curation format) and the selection's statistics on the lab's hidden truth."""
    from egt.curation.selectors import item_scores, keep_count

    scores = item_scores(records)
    truth = {r["id"]: r for r in records}
    order = ordering(arm, scores, truth, seed)
    keep = keep_count(len(order), fraction=arm.fraction)
    rows = [
        {
            "id": i,
            "scores": scores[i],
            "kept": rank < keep,
            "rank": rank,
            "selector": arm.name,
            "by": by,
            "reason": f"{'kept' if rank < keep else 'dropped'}: #{rank + 1} of {len(order)} by {arm.name}",
        }
        for rank, i in enumerate(order)
    ]
    kept = [truth[r["id"]] for r in rows if r["kept"]]

    def share(key: str) -> float | None:
        values = [bool(k[key]) for k in kept if key in k]
        return round(sum(values) / len(values), 4) if values else None

    stats = {
        "n_kept": keep,
        "n_pool": len(order),
        "flip_rate": share("flipped"),
        "hard_share": share("hard"),
        "mean_rollout_accuracy": round(sum(k["accuracy"] for k in kept) / keep, 4),
    }
    return rows, stats


def write_manifest(path: Path, rows: list[dict]) -> Path:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


# --------------------------------------------------------------------------------------------
# RL and its curve
# --------------------------------------------------------------------------------------------


def train_rl(
    cfg: ExperimentConfig,
    seed: int,
    model: Path,
    files: dict,
    manifest: Path,
    arm: Arm,
    by: str,
    out: Path,
    steps: int,
    curriculum: str,
) -> dict:
    """One ``egt train rl`` run (resumes from its last checkpoint); checkpoints every ``rl_eval_every`` steps."""
    from trl import GRPOConfig

    from egt.rl.config import JudgeRLArgs, cpu_rl_defaults
    from egt.rl.recipe import checkpoint_dir, train_judge_rl

    if (out / "rl_summary.json").is_file():
        return read_json(out / "rl_summary.json")
    resume = any(checkpoint_dir(out).glob("checkpoint-*"))
    config = GRPOConfig(
        **{
            **cpu_rl_defaults(),
            "output_dir": str(out),
            "seed": seed,
            "max_steps": steps,
            "learning_rate": cfg.rl_learning_rate,
            "num_generations": cfg.rl_generations,
            "per_device_train_batch_size": cfg.rl_prompts_per_step * cfg.rl_generations,
            "max_completion_length": cfg.rl_max_completion_length,
            "logging_steps": 5,
            "save_strategy": "steps",
            "save_steps": cfg.rl_eval_every,
            "resume_from_checkpoint": "true" if resume else None,
            **({"use_cpu": False, "bf16": True} if cfg.gpu else {}),
        }
    )
    args = JudgeRLArgs(
        model=str(model),
        data=str(files["pool"]),
        images_dir=str(images_root(files, "pool")),
        manifest=str(manifest),
        curriculum=curriculum,
        curriculum_by=by,
        advantage_estimator=arm.estimator,
        dtype=cfg.dtype,
        keep_checkpoints=True,
        save_curriculum_order=False,
    )
    return train_judge_rl(args, config)


def checkpoint_curve(
    cfg: ExperimentConfig, seed: int, run: Path, teacher: str, meta: dict, offset: int = 0
) -> list[dict]:
    """Clean-test accuracy of each kept checkpoint of ``run`` (steps offset by ``offset``)."""
    from egt.judge.generative import JUDGE_META_FILE
    from egt.rl.recipe import checkpoint_dir

    curve = []
    for ckpt in sorted(checkpoint_dir(run).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        step = int(ckpt.name.split("-")[1])
        (ckpt / JUDGE_META_FILE).write_text(json.dumps(meta))
        result = evaluate_on_test(ckpt, cfg, seed, teacher)
        curve.append({"step": offset + step, "accuracy": result["accuracy"]})
    return curve


def run_cell(cfg: ExperimentConfig, seed: int, regime: str, arm: Arm) -> dict:
    """Select, train, evaluate; ``done.json`` holds the curve, the final eval and the selection stats."""
    from egt.entropy.score_store import read_scores
    from egt.judge.generative import read_judge_meta
    from egt.pipelines.experiment.steps import judge_dir

    t0 = time.perf_counter()
    out = cell_dir(cfg, seed, regime, arm)
    out.mkdir(parents=True, exist_ok=True)
    stats = read_done(regime_stats_dir(cfg, seed, regime))
    main = main_signal_of(cfg, stats)
    by = arm.signal or main
    teacher = cfg.rl_teacher
    files = data_files(cfg, seed, teacher)
    sft_judge = judge_dir(cfg, seed, cfg.rl_teacher, regime_epoch(cfg, regime))
    meta = read_judge_meta(sft_judge)
    _, records = read_scores(regime_stats_dir(cfg, seed, regime) / "rq1" / "scores.jsonl")
    rows, selection = select(arm, records, seed, by)
    manifest = write_manifest(out / "manifest.jsonl", rows)
    atomic_write_json(
        out / "config.json",
        {
            "arm": arm.to_json(),
            "seed": seed,
            "regime": regime,
            "main_signal": main,
            "by": by,
            "sft_judge": str(sft_judge),
        },
    )

    curve = [{"step": 0, "accuracy": stats["test"]["accuracy"]}]
    if arm.online:
        rl, final_judge = _run_online(cfg, seed, arm, by, sft_judge, files, rows, out, curve)
    else:
        rl = train_rl(cfg, seed, sft_judge, files, manifest, arm, by, out / "judge", cfg.rl_steps, arm.curriculum)
        curve += [c for c in checkpoint_curve(cfg, seed, out / "judge", teacher, meta) if c["step"] < cfg.rl_steps]
        final_judge = out / "judge"
    final = evaluate_on_test(final_judge, cfg, seed, teacher)
    curve.append({"step": cfg.rl_steps, "accuracy": final["accuracy"]})
    result = {
        "arm": arm.to_json(),
        "seed": seed,
        "regime": regime,
        "main_signal": main,
        "by": by,
        "selection": selection,
        "curve": curve,
        "final": final,
        "rl": rl,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write_json(out / DONE, result)
    from egt.rl.recipe import checkpoint_dir

    for run in [out / "judge", *sorted(out.glob("stage*/judge"))]:
        shutil.rmtree(checkpoint_dir(run), ignore_errors=True)
    return result


def _run_online(
    cfg: ExperimentConfig,
    seed: int,
    arm: Arm,
    by: str,
    sft_judge: Path,
    files: dict,
    rows: list[dict],
    out: Path,
    curve: list[dict],
) -> tuple[list[dict], Path]:
    """T5: S stages; between stages the current judge re-scores the kept items not yet trained on."""
    from egt.models.args import ModelArgs
    from egt.pipelines.scoring.config import ScoringConfig
    from egt.pipelines.scoring.run import score_pool
    from egt.records import read_pairs, write_pairs

    kept = [r for r in rows if r["kept"]]
    per_stage = math.ceil(len(kept) / cfg.online_stages)
    steps = cfg.rl_steps // cfg.online_stages
    remaining = {r["id"]: r for r in kept}
    pairs = {p.id: p for p in read_pairs(files["pool"])}
    judge, summaries = sft_judge, []
    for stage in range(cfg.online_stages):
        here = out / f"stage{stage + 1}"
        here.mkdir(exist_ok=True)
        if stage == 0:
            current = {i: r["scores"].get(by) for i, r in remaining.items()}
        else:  # re-score what is left with the judge as it is now
            subset = here / "remaining.jsonl"
            write_pairs([pairs[i] for i in sorted(remaining)], subset)
            scores_path = here / "scores.jsonl"
            score_pool(
                ModelArgs(model=str(judge), device=cfg.device, dtype=cfg.dtype),
                subset,
                scores_path,
                ScoringConfig(
                    rollouts=cfg.rollouts,
                    temperature=cfg.temperature,
                    seed=seed + 1000 * stage,
                    batch_size=cfg.score_batch_size,
                    peak_k=cfg.peak_k,
                    keep_texts=False,
                    backend=cfg.backend,
                ),
                images_dir=images_root(files, "pool"),
            )
            from egt.curation.selectors import item_scores
            from egt.entropy.score_store import read_scores

            current = {i: s.get(by) for i, s in item_scores(read_scores(scores_path)[1]).items()}
        order = sorted(current, key=lambda i: (current[i] is None, current[i] if current[i] is not None else 0.0, i))
        chosen = set(order[:per_stage])
        stage_rows = [
            {**r, "kept": r["id"] in chosen, "scores": {**r["scores"], by: current.get(r["id"], r["scores"].get(by))}}
            for r in rows
        ]
        manifest = write_manifest(here / "manifest.jsonl", stage_rows)
        summaries.append(train_rl(cfg, seed, judge, files, manifest, arm, by, here / "judge", steps, "sorted"))
        judge = here / "judge"
        if stage + 1 < cfg.online_stages:
            result = evaluate_on_test(judge, cfg, seed, cfg.rl_teacher)
            curve.append({"step": (stage + 1) * steps, "accuracy": result["accuracy"]})
        for i in chosen:
            remaining.pop(i, None)
        if not remaining and stage + 1 < cfg.online_stages:
            raise EgtError(f"online arm: nothing left to train on after stage {stage + 1}")
    return summaries, judge
