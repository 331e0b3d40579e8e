"""The experiment's units of work. Each writes one folder and, last, its ``done.json``.

Layout under ``cfg.output_dir`` (``{s}`` seed, ``{t}`` teacher, ``{e}`` SFT epoch, ``{r}`` regime)::

    seed{s}/lab-{t}/                 the shapes lab (the teachers differ only in sft.jsonl's traces)
    seed{s}/sft-{t}/judge/           the SFT run's final judge; epoch{e}/ a judge per checkpoint epoch
    seed{s}/sft-{t}/epoch{e}/stats/  scores of the pool (every signal), RQ1 analysis, clean-test eval
    seed{s}/{r}/{arm}/               one RL cell: manifest.jsonl, judge/, curve and final eval
    seed{s}/noise-{n}/               table N: the RL pool relabelled by noise model n (images: the lab's)
    seed{s}/{n}/{g}/{r}/{arm}/       table N: one RL cell on noise n at RL strength g

A unit whose ``done.json`` exists is finished; anything else in its folder is scratch that a rerun
replaces or resumes (RL cells resume from their last checkpoint, scoring from its partial file).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from egt.data.atomic import atomic_write_json, read_json
from egt.errors import EgtError
from egt.pipelines.experiment.config import ExperimentConfig
from egt.pipelines.experiment.grid import Arm

DONE = "done.json"


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def epoch_name(epoch: float) -> str:
    return f"epoch{epoch:g}"


def seed_dir(cfg: ExperimentConfig, seed: int) -> Path:
    return Path(cfg.output_dir) / f"seed{seed}"


def lab_dir(cfg: ExperimentConfig, seed: int, teacher: str) -> Path:
    return seed_dir(cfg, seed) / f"lab-{teacher}"


def sft_dir(cfg: ExperimentConfig, seed: int, teacher: str) -> Path:
    return seed_dir(cfg, seed) / f"sft-{teacher}"


def judge_dir(cfg: ExperimentConfig, seed: int, teacher: str, epoch: float) -> Path:
    return sft_dir(cfg, seed, teacher) / epoch_name(epoch)


def stats_dir(cfg: ExperimentConfig, seed: int, teacher: str, epoch: float) -> Path:
    return judge_dir(cfg, seed, teacher, epoch) / "stats"


def regime_epoch(cfg: ExperimentConfig, regime: str) -> float:
    return cfg.converged_epoch if regime == "converged" else cfg.weak_epoch


def regime_stats_dir(cfg: ExperimentConfig, seed: int, regime: str) -> Path:
    return stats_dir(cfg, seed, cfg.rl_teacher, regime_epoch(cfg, regime))


def cell_dir(
    cfg: ExperimentConfig, seed: int, regime: str, arm: Arm, noise: str | None = None, strength: str | None = None
) -> Path:
    """A T-table cell (``noise`` None) or a table-N cell of a noise model and RL strength."""
    if noise is None:
        return seed_dir(cfg, seed) / regime / arm.name
    return seed_dir(cfg, seed) / noise / (strength or "gentle") / regime / arm.name


def noise_dir(cfg: ExperimentConfig, seed: int, noise: str) -> Path:
    return seed_dir(cfg, seed) / f"noise-{noise}"


def data_files(cfg: ExperimentConfig, seed: int, teacher: str, noise: str = "random") -> dict[str, Path | None]:
    """``sft``, ``pool``, ``test`` files and their ``images`` root (None = each file's own folder).

    ``noise`` other than random: the pool relabelled by that noise model (the same items and images).
    """
    if cfg.uses_lab:
        lab = lab_dir(cfg, seed, teacher)
        pool = lab / "rl_pool.jsonl" if noise == "random" else noise_dir(cfg, seed, noise) / "rl_pool.jsonl"
        return {"sft": lab / "sft.jsonl", "pool": pool, "test": lab / "test.jsonl", "images": lab}
    return {
        "sft": Path(cfg.sft_data),
        "pool": Path(cfg.pool),
        "test": Path(cfg.test),
        "images": Path(cfg.images_dir) if cfg.images_dir else None,
    }


def images_root(files: dict, split: str) -> Path:
    from egt.records import default_images_root

    return files["images"] if files["images"] is not None else default_images_root(files[split])


def check_user_data(cfg: ExperimentConfig) -> None:
    """Your own data (not the lab): every file reads and every image exists, before anything is written."""
    from egt.data.readers import missing_images
    from egt.records import read_pairs

    if cfg.uses_lab:
        return
    files = data_files(cfg, cfg.seeds[0], cfg.rl_teacher)
    for split in ("sft", "pool", "test"):
        path = files[split]
        if not path.exists():
            raise EgtError(f"field {split if split != 'sft' else 'sft_data'!r}: {path}: no such file")
        missing = missing_images(read_pairs(path), images_root(files, split))
        if missing:
            raise EgtError(
                f"{path}: {len(missing)} image file(s) missing (first: id={missing[0][0].id!r}, "
                f"{missing[0][1]}); pass images_dir where they are"
            )


def is_done(folder: Path) -> bool:
    return (folder / DONE).is_file()


def read_done(folder: Path) -> dict:
    return read_json(folder / DONE)


# --------------------------------------------------------------------------------------------
# Lab and SFT
# --------------------------------------------------------------------------------------------


def run_lab(cfg: ExperimentConfig, seed: int, teacher: str) -> dict:
    """Make the lab, or (your own data) check that the three files read and record their sizes."""
    from egt.lab import make_lab

    out = lab_dir(cfg, seed, teacher)
    if not cfg.uses_lab:
        from egt.records import read_pairs

        files = data_files(cfg, seed, teacher)
        splits = {name: {"n": len(read_pairs(files[name]))} for name in ("sft", "pool", "test")}
        atomic_write_json(out / DONE, {"splits": splits, "files": {k: str(v) for k, v in files.items()}})
        return {"splits": splits}
    summary = make_lab(lab_config(cfg, seed, teacher, out))
    atomic_write_json(out / DONE, {"splits": summary["splits"]})
    return summary


def lab_config(cfg: ExperimentConfig, seed: int, teacher: str, out: Path, noise: str = "random"):
    from egt.lab import LabConfig

    return LabConfig(
        output_dir=str(out),
        seed=seed,
        n_sft=cfg.n_sft,
        n_rl_pool=cfg.n_rl_pool,
        n_test=cfg.n_test,
        teacher=teacher,
        noise=noise,
        region_colours=cfg.region_colours,
        region_min_ambiguity=cfg.region_min_ambiguity,
        region_flip=cfg.region_flip,
        base_flip=cfg.base_flip,
    )


def run_noise(cfg: ExperimentConfig, seed: int, noise: str) -> dict:
    """Relabel the lab's RL pool with ``noise`` (``egt.lab.noise``): the paired pool of table N."""
    from egt.lab import relabel_systematic, split_stats
    from egt.records import read_pairs, write_pairs

    lab = data_files(cfg, seed, cfg.rl_teacher)
    out = noise_dir(cfg, seed, noise)
    out.mkdir(parents=True, exist_ok=True)
    pairs = relabel_systematic(lab_config(cfg, seed, cfg.rl_teacher, out, noise), read_pairs(lab["pool"]))
    write_pairs(pairs, out / "rl_pool.jsonl")
    result = {"noise": noise, "rl_pool": split_stats(pairs)}
    atomic_write_json(out / DONE, result)
    return result


def region_of(cfg: ExperimentConfig) -> Callable[[dict], bool]:
    """``meta → bool``: whether a lab item lies in the systematic model's biased region."""
    from egt.lab.noise import in_region, parse_colours

    colours = parse_colours(cfg.region_colours)
    return lambda meta: in_region(meta, colours, cfg.region_min_ambiguity)


def region_mask(cfg: ExperimentConfig, seed: int) -> list[bool]:
    """Per clean-test item (file order), whether it lies in the systematic model's biased region."""
    from egt.records import read_pairs

    region = region_of(cfg)
    return [region(p.meta) for p in read_pairs(data_files(cfg, seed, cfg.rl_teacher)["test"])]


def sft_schedule(n_examples: int, cfg: ExperimentConfig) -> tuple[int, dict[float, int], int]:
    """``(steps per epoch, {checkpoint epoch: step}, save_steps)`` of one SFT run (one process)."""
    per_epoch = math.ceil(n_examples / cfg.sft_batch_size)
    at = {e: round(e * per_epoch) for e in cfg.sft_checkpoint_epochs}
    save_steps = 0
    for step in at.values():
        save_steps = math.gcd(save_steps, step)
    return per_epoch, at, max(save_steps, 1)


def run_sft(cfg: ExperimentConfig, seed: int, teacher: str) -> dict:
    """One SFT run of ``cfg.sft_epochs``; each checkpoint epoch becomes a judge folder ``epoch{e}/``."""
    from trl import SFTConfig

    from egt.judge.generative import JUDGE_META_FILE
    from egt.models.training import cpu_sft_defaults
    from egt.records import read_pairs
    from egt.train.sft import JudgeSFTArgs, select_traces, train_judge_sft

    files = data_files(cfg, seed, teacher)
    data = files["sft"]
    out = sft_dir(cfg, seed, teacher)
    args = JudgeSFTArgs(
        data=str(data),
        images_dir=str(images_root(files, "sft")),
        model=cfg.model,
        prompt_style=cfg.prompt_style,
        keep_checkpoints=True,
        max_new_tokens=cfg.rl_max_completion_length,
    )
    examples, _ = select_traces(read_pairs(data), args.order, seed, args.fidelity_filter)
    per_epoch, at, save_steps = sft_schedule(len(examples), cfg)
    final = out / "judge"
    checkpoints = final.with_name(final.name + ".checkpoints")
    resume = checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))
    config = SFTConfig(
        **{
            **cpu_sft_defaults(),
            "output_dir": str(final),
            "seed": seed,
            "num_train_epochs": cfg.sft_epochs,
            "learning_rate": cfg.sft_learning_rate,
            "per_device_train_batch_size": cfg.sft_batch_size,
            "logging_steps": 25,
            "disable_tqdm": True,
            "save_strategy": "steps",
            "save_steps": save_steps,
            "resume_from_checkpoint": str(True) if resume else None,
            **({"use_cpu": False, "bf16": True} if cfg.gpu else {}),
        }
    )
    if not final.is_dir() or not (final / "config.json").is_file():
        summary = train_judge_sft(args, config)
    else:  # the run finished, the epoch folders did not
        summary = read_json(final / "sft_summary.json")
    meta = json.loads((final / JUDGE_META_FILE).read_text())
    for epoch, step in at.items():
        target = judge_dir(cfg, seed, teacher, epoch)
        source = final if step == summary["steps"] else checkpoints / f"checkpoint-{step}"
        if not (source / "config.json").is_file():
            raise EgtError(f"{source}: SFT checkpoint of epoch {epoch:g} (step {step}) is missing")
        _copy_judge(source, target, {**meta, "sft_epoch": epoch, "sft_step": step})
    shutil.rmtree(checkpoints, ignore_errors=True)
    result = {**summary, "steps_per_epoch": per_epoch, "checkpoint_steps": {f"{e:g}": s for e, s in at.items()}}
    atomic_write_json(out / DONE, result)
    return result


def _copy_judge(source: Path, target: Path, meta: dict) -> None:
    """A judge folder from a checkpoint: weights, config, processor files and the judge meta (no optimiser)."""
    from egt.data.atomic import atomic_path
    from egt.judge.generative import JUDGE_META_FILE

    skip = {"optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin"}  # and rng_state*
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        for f in source.iterdir():
            if f.is_file() and f.name not in skip and not f.name.startswith("rng_state"):
                shutil.copyfile(f, tmp / f.name)
        (tmp / JUDGE_META_FILE).write_text(json.dumps(meta))


# --------------------------------------------------------------------------------------------
# Evaluation and the judge's statistics (T0)
# --------------------------------------------------------------------------------------------


def evaluate_on_test(judge: Path, cfg: ExperimentConfig, seed: int, teacher: str) -> dict:
    """Greedy, both orders, clean labels: metrics and per-item correctness (mean over the two orders)."""
    from egt.evaluation.runner import evaluate
    from egt.judge.args import JudgeArgs
    from egt.pipelines.judges import make_judge
    from egt.records import read_pairs

    files = data_files(cfg, seed, teacher)
    pairs = read_pairs(files["test"])
    made = make_judge(JudgeArgs(model=str(judge), device=cfg.device, dtype=cfg.dtype, batch_size=cfg.eval_batch_size))
    report, predictions = evaluate(
        made, pairs, order="both", seed=seed, images_root=images_root(files, "test"), batch_size=cfg.eval_batch_size
    )
    correct: dict[str, list[bool]] = {}
    for p in predictions:
        correct.setdefault(p.id, []).append(p.correct)
    per_item = [sum(correct[p.id]) / len(correct[p.id]) for p in pairs]
    metrics = report["metrics"]
    return {
        "accuracy": metrics["accuracy"],
        "format_failure_rate": metrics["format_failure_rate"],
        "order_consistency": metrics.get("order_consistency"),
        "by_category": {c: v["accuracy"] for c, v in report["categories"].items()},
        "per_item": per_item,
    }


def resolve_main_signal(cfg: ExperimentConfig, rq1: dict) -> str:
    """The preset's main signal, or (``auto``) the most negative Spearman ρ(entropy, rollout accuracy).

    ``auto`` leaves ``vote`` out: vote entropy is computed from the very verdicts rollout accuracy
    counts, so its correlation with it is partly by construction (on the lab it wins the rule while
    flagging flipped labels no better than chance).
    """
    if cfg.main_signal != "auto":
        return cfg.main_signal
    candidates = [s for s in cfg.signals if s != "vote"] or list(cfg.signals)
    rhos = {s: rq1.get(f"spearman_{s}") for s in candidates}
    usable = {s: r for s, r in rhos.items() if r is not None and not math.isnan(r)}
    if not usable:
        return candidates[0]
    return min(usable, key=lambda s: (usable[s], candidates.index(s)))


def main_signal_of(cfg: ExperimentConfig, stats: dict) -> str:
    """The main signal of a regime: the preset's, or what its ``auto`` rule picked when the judge was scored."""
    return cfg.main_signal if cfg.main_signal != "auto" else stats["main_signal"]


def run_judge_stats(cfg: ExperimentConfig, seed: int, teacher: str, epoch: float) -> dict:
    """Score the pool with one SFT judge (every signal), RQ1 against the hidden truth, clean-test eval."""
    from egt.pipelines.rq1 import run_rq1

    judge = judge_dir(cfg, seed, teacher, epoch)
    files = data_files(cfg, seed, teacher)
    out = stats_dir(cfg, seed, teacher, epoch)
    t0 = time.perf_counter()
    test = evaluate_on_test(judge, cfg, seed, teacher)
    signal = cfg.main_signal if cfg.main_signal != "auto" else cfg.signals[0]
    rq1 = run_rq1(
        judge,
        files["pool"],
        images_root(files, "pool"),
        out / "rq1",
        rollouts=cfg.rollouts,
        seed=seed,
        batch_size=cfg.score_batch_size,
        fraction=cfg.fraction,
        signal=signal,
        device=cfg.device,
        peak_k=cfg.peak_k,
        temperature=cfg.temperature,
        backend=cfg.backend,
    )
    result = {
        "teacher": teacher,
        "epoch": epoch,
        "test": test,
        "rq1": rq1,
        "main_signal": resolve_main_signal(cfg, rq1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write_json(out / DONE, result)
    return result
