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

Table N (issue 26) adds: cells on a relabelled pool (the systematic noise model: the scores' rollout
accuracy, ``flipped`` and ``region`` are recomputed against its labels, the entropies are the
judge's and shared), an RL strength per block, the ``pass_rate`` arm (``egt curate --selector
pass_rate --pass_band``), dynamic sampling with refill, the egt arm's one low → high pass, and the
training log (zero-variance group fraction, format failures) kept in ``done.json``.
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
    return rows, selection_stats(kept, len(order))


def selection_stats(kept: list[dict], n_pool: int) -> dict:
    """Size, flipped / hard / biased-region shares and mean rollout accuracy of a kept selection (score records)."""

    def share(key: str) -> float | None:
        values = [bool(k[key]) for k in kept if key in k]
        return round(sum(values) / len(values), 4) if values else None

    accuracies = [k["accuracy"] for k in kept if k.get("accuracy") is not None]
    stats = {
        "n_kept": len(kept),
        "n_pool": n_pool,
        "flip_rate": share("flipped"),
        "hard_share": share("hard"),
        "mean_rollout_accuracy": round(sum(accuracies) / len(accuracies), 4) if accuracies else None,
    }
    if any("region" in k for k in kept):
        stats["region_share"] = share("region")
    return stats


def relabel_scores(records: list[dict], pool: list, region=None) -> list[dict]:
    """Score records against another noise model's labels of the same pool (``pool``: its pairs).

    The rollouts and entropies are the judge's and stay; ``preferred``, ``flipped`` and ``region``
    come from the relabelled pool, and ``accuracy`` (the rollout pass rate) is recounted from the
    stored ``verdicts`` (stored-order indices, None = a format failure, counted wrong). ``region``
    (``meta → bool``) marks the biased region where the pool's meta does not (the random model's pool).
    """
    by_id = {p.id: p for p in pool}
    out = []
    for r in records:
        pair = by_id[r["id"]]
        verdicts = r.get("verdicts") or []
        accuracy = sum(v == pair.preferred for v in verdicts) / len(verdicts) if verdicts else r.get("accuracy")
        extra = {k: pair.meta[k] for k in ("flipped", "region") if k in pair.meta}
        if "region" not in extra and region is not None:
            extra["region"] = bool(region(pair.meta))
        out.append({**r, "preferred": pair.preferred, "accuracy": accuracy, **extra})
    return out


def pass_rate_rows(
    cfg: ExperimentConfig, seed: int, records: list[dict], files: dict, by: str, out: Path
) -> list[dict]:
    """The pass-rate band arm's manifest, as ``egt curate --selector pass_rate --pass_band LOW,HIGH`` writes it.

    Run as a command (the contract with ``egt curate``), on the cell's own copy of the scores (relabelled
    for the cell's noise model). When no item's pass rate is inside the band (a judge whose rollouts
    all fail, or all agree), every row is dropped and the cell reports the SFT judge (``empty_selection``).
    """
    import subprocess
    import sys

    from egt.curation.manifest import MANIFEST

    scores = out / "scores.jsonl"
    atomic_write_text(scores, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    curated = out / "curate"
    argv = [
        sys.executable, "-m", "egt.cli", "curate",
        "--scores", str(scores), "--data", str(files["pool"]), "--output_dir", str(curated),
        "--selector", "pass_rate", "--pass_band", cfg.pass_band, "--by", by, "--seed", str(seed),
        "--images_dir", str(images_root(files, "pool")), "--link_images", "false",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode == 2 and "no item's pass rate is strictly inside" in done.stderr:
        return [{"id": r["id"], "kept": False} for r in records]  # an empty band: nothing to train on
    if done.returncode != 0:
        raise EgtError(f"egt curate --selector pass_rate failed ({done.returncode}): {done.stderr.strip()[-600:]}")
    return [json.loads(line) for line in (curated / MANIFEST).read_text().splitlines() if line.strip()]


def one_pass_data(rows: list[dict], pairs: dict, budget: int, stages: int, by: str) -> tuple[list, list[dict]]:
    """Training pairs and manifest for one low → high sweep of the kept items over ``budget`` prompts.

    The kept items (in the selection's order: low → high entropy, format failures last) are cut into
    ``stages`` quantile stages; each stage is repeated ``k = ⌈budget / n_kept⌉`` rounds before the
    next, so a fixed budget larger than the subset sweeps it once, low to high — where the
    ``sorted`` curriculum restarts from the lowest entropy after every pass. Copies are new rows
    (``<id>~<round>``) with the same item and image; the manifest's ``scores[by]`` is each copy's
    position in the sweep, so RL's ``sorted`` curriculum replays exactly this order.
    """
    from dataclasses import replace

    from egt.rl.curriculum import stage_bounds

    kept = [r for r in rows if r["kept"]]
    rounds = max(1, math.ceil(budget / len(kept)))
    out_pairs, out_rows = [], []
    for start, end in stage_bounds(len(kept), stages):
        for k in range(rounds):
            for r in kept[start:end]:
                copy = f"{r['id']}~{k}"
                position = len(out_rows)
                out_pairs.append(replace(pairs[r["id"]], id=copy))
                scores = {**r["scores"], by: float(position), "format_failures": 0}
                out_rows.append(
                    {**r, "id": copy, "scores": scores, "rank": position, "by": by, "reason": f"sweep #{position}"}
                )
    return out_pairs, out_rows


def training_log(judge: Path, summary: dict) -> list[dict]:
    """Per logged step: zero-variance group fraction, reward, accuracy, format failures of the RL run.

    ``rl_summary.json``'s ``"log"`` when the trainer writes it; else the last checkpoint's
    ``trainer_state.json`` (TRL's ``frac_reward_zero_std`` is over the total reward).
    """
    from egt.rl.recipe import checkpoint_dir

    if summary.get("log"):
        return list(summary["log"])
    states = sorted(
        checkpoint_dir(judge).glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name[11:])
    )
    if not states:
        return []
    log = []
    for h in read_json(states[-1]).get("log_history", []):
        if "frac_reward_zero_std" not in h:
            continue
        fmt = h.get("rewards/judge_format/mean")
        log.append(
            {
                "step": h.get("step"),
                "frac_reward_zero_std": h["frac_reward_zero_std"],
                "reward": h.get("reward"),
                "accuracy": h.get("rewards/judge_accuracy/mean"),
                "format_failure_rate": None if fmt is None else 1.0 - fmt,
            }
        )
    return log


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
    *,
    learning_rate: float | None = None,
    eval_every: int | None = None,
    data: Path | None = None,
) -> dict:
    """One ``egt train rl`` run (resumes from its last checkpoint); checkpoints every ``eval_every`` steps.

    ``learning_rate`` / ``eval_every`` default to the preset's gentle setting; ``data`` replaces the
    pool file (the egt arm's sweep copies; images stay the pool's).
    """
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
            "learning_rate": learning_rate if learning_rate is not None else cfg.rl_learning_rate,
            "num_generations": cfg.rl_generations,
            "per_device_train_batch_size": cfg.rl_prompts_per_step * cfg.rl_generations,
            "max_completion_length": cfg.rl_max_completion_length,
            "logging_steps": min(5, eval_every or cfg.rl_eval_every),  # the training log reaches every checkpoint
            "save_strategy": "steps",
            "save_steps": eval_every or cfg.rl_eval_every,
            "resume_from_checkpoint": "true" if resume else None,
            **({"use_cpu": False, "bf16": True} if cfg.gpu else {}),
        }
    )
    args = JudgeRLArgs(
        model=str(model),
        data=str(data or files["pool"]),
        images_dir=str(images_root(files, "pool")),
        manifest=str(manifest),
        curriculum=curriculum,
        curriculum_by=by,
        advantage_estimator=arm.estimator,
        dtype=cfg.dtype,
        keep_checkpoints=True,
        save_curriculum_order=False,
        **(dynamic_sampling_args(cfg) if arm.dynamic else {}),
    )
    return train_judge_rl(args, config)


def dynamic_sampling_args(cfg: ExperimentConfig) -> dict:
    """``egt train rl --dynamic_sampling true --dynamic_sampling_metric accuracy --max_generation_batches N``."""
    return {
        "dynamic_sampling": True,
        "dynamic_sampling_metric": "accuracy",
        "max_generation_batches": cfg.max_generation_batches,
    }


def missing_feature(arm: Arm) -> str | None:
    """Why this installation cannot run ``arm`` (a feature not merged yet), or None when it can."""
    if arm.selector == "pass_rate":
        from egt.curation.selectors import SELECTORS

        if "pass_rate" not in SELECTORS:
            return "egt curate has no selector 'pass_rate' (--pass_band) in this installation"
    if arm.dynamic:
        from dataclasses import fields

        from egt.rl.config import JudgeRLArgs

        names = {f.name for f in fields(JudgeRLArgs)}
        if not {"dynamic_sampling_metric", "max_generation_batches"} <= names:
            return (
                "egt train rl has no dynamic sampling with refill (--dynamic_sampling_metric, "
                "--max_generation_batches) in this installation"
            )
    return None


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


def run_cell(
    cfg: ExperimentConfig, seed: int, regime: str, arm: Arm, noise: str | None = None, strength: str | None = None
) -> dict:
    """Select, train, evaluate; ``done.json`` holds the curve, the final eval, the selection stats, the training log.

    ``noise`` / ``strength`` (table N): the pool's noise model and the RL setting; None = a T-table cell.
    """
    from egt.entropy.score_store import read_scores
    from egt.judge.generative import read_judge_meta
    from egt.pipelines.experiment.steps import judge_dir, region_of
    from egt.records import read_pairs

    t0 = time.perf_counter()
    out = cell_dir(cfg, seed, regime, arm, noise, strength)
    out.mkdir(parents=True, exist_ok=True)
    stats = read_done(regime_stats_dir(cfg, seed, regime))
    main = main_signal_of(cfg, stats)
    by = arm.signal or main
    teacher = cfg.rl_teacher
    learning_rate, steps, eval_every = cfg.strength(strength or "gentle")
    files = data_files(cfg, seed, teacher, noise or "random")
    sft_judge = judge_dir(cfg, seed, cfg.rl_teacher, regime_epoch(cfg, regime))
    meta = read_judge_meta(sft_judge)
    _, records = read_scores(regime_stats_dir(cfg, seed, regime) / "rq1" / "scores.jsonl")
    if noise is not None:  # table N: the cell's noise model's labels, and the biased region either way
        records = relabel_scores(records, read_pairs(files["pool"]), region_of(cfg))
    if arm.selector == "pass_rate":
        rows = pass_rate_rows(cfg, seed, records, files, by, out)
        truth = {r["id"]: r for r in records}
        selection = selection_stats([truth[r["id"]] for r in rows if r["kept"]], len(rows))
    else:
        rows, selection = select(arm, records, seed, by)
    manifest = write_manifest(out / "manifest.jsonl", rows)
    data = None
    if arm.curriculum == "onepass":
        pairs = {p.id: p for p in read_pairs(files["pool"])}
        sweep_pairs, sweep_rows = one_pass_data(rows, pairs, steps * cfg.rl_prompts_per_step, cfg.egt_stages, by)
        from egt.records import write_pairs

        data = out / "sweep.jsonl"
        write_pairs(sweep_pairs, data)
        manifest = write_manifest(out / "sweep_manifest.jsonl", sweep_rows)
    atomic_write_json(
        out / "config.json",
        {
            "arm": arm.to_json(),
            "seed": seed,
            "regime": regime,
            "noise": noise,
            "strength": strength,
            "learning_rate": learning_rate,
            "steps": steps,
            "main_signal": main,
            "by": by,
            "sft_judge": str(sft_judge),
        },
    )

    curve = [{"step": 0, "accuracy": stats["test"]["accuracy"]}]
    log: list[dict] = []
    if not any(r["kept"] for r in rows):  # nothing selected (an empty pass-rate band): no RL, the SFT judge
        selection["empty_selection"] = True
        rl, final_judge = {"steps": 0, "empty_selection": True}, sft_judge
    elif arm.online:
        rl, final_judge = _run_online(cfg, seed, arm, by, sft_judge, files, rows, out, curve)
    else:
        curriculum = "sorted" if arm.curriculum == "onepass" else arm.curriculum
        rl = train_rl(
            cfg, seed, sft_judge, files, manifest, arm, by, out / "judge", steps, curriculum,
            learning_rate=learning_rate, eval_every=eval_every, data=data,
        )  # fmt: skip
        curve += [c for c in checkpoint_curve(cfg, seed, out / "judge", teacher, meta) if c["step"] < steps]
        log = training_log(out / "judge", rl)
        final_judge = out / "judge"
    final = evaluate_on_test(final_judge, cfg, seed, teacher)
    curve.append({"step": steps, "accuracy": final["accuracy"]})
    result = {
        "arm": arm.to_json(),
        "seed": seed,
        "regime": regime,
        "noise": noise,
        "strength": strength,
        "main_signal": main,
        "by": by,
        "selection": selection,
        "curve": curve,
        "final": final,
        "rl": rl,
        "train_log": log,
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
