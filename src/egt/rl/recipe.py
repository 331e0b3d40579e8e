"""``train_judge_rl``: one RL run of the judge, from settings to a judge folder (EGT stage 2; docs/rl.md).

The recipe only wires the pieces: the training data and curriculum (:mod:`egt.rl.dataset`), the judge
reward (:mod:`egt.rl.rewards`), the estimator's parameters (:mod:`egt.rl.estimators`), the trainer
(:class:`egt.rl.trainer.JudgeGRPOTrainer`). It never changes the caller's settings: the TRL config it
trains with is its own copy. The trained judge lands atomically in ``config.output_dir``; checkpoints
go to ``<output_dir>.checkpoints``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from egt.errors import EgtError
from egt.models.training import checkpoint_dir, resume_value
from egt.rl.estimators import get_advantage_estimator
from egt.rl.trainer import TRL_ADVANTAGES

logger = logging.getLogger(__name__)


def estimator_kwargs(args) -> dict[str, Any]:
    """The parameters of ``args.advantage_estimator`` that :class:`egt.rl.config.JudgeRLArgs` sets: parameter
    ``p`` of estimator ``e`` from the field ``<e>_<p>`` (``gtpo_alpha2`` → ``alpha2``); the others keep
    the estimator's defaults."""
    name = args.advantage_estimator
    if name == TRL_ADVANTAGES:
        return {}
    fields = {f.name for f in dataclasses.fields(args)}
    params = get_advantage_estimator(name).params
    return {p: getattr(args, f"{name}_{p}") for p in params if f"{name}_{p}" in fields}


def _own_copy(config):
    """A copy of a TRL config that this run (and TRL, which edits its ``args``) may change freely: every
    field deep-copied; the cached device / process state, not a field, shared with the original."""
    run = copy.copy(config)
    for f in dataclasses.fields(config):
        setattr(run, f.name, copy.deepcopy(getattr(config, f.name)))
    return run


def _log_means(history: list[dict], key: str, n: int) -> tuple[float | None, float | None]:
    values = [h[key] for h in history if h.get(key) is not None]
    if not values:
        return None, None
    n = max(1, min(n, len(values) // 2 or 1))
    return round(sum(values[:n]) / n, 4), round(sum(values[-n:]) / n, 4)


LOG_KEYS = (
    "step",
    "frac_reward_zero_std",
    "reward",
    "accuracy",
    "format_failure_rate",
    "rollout_entropy",
    "curriculum_epoch",
    "curriculum_position",
)
DYNAMIC_SAMPLING_LOG = {
    "groups_kept": "dynamic_sampling/groups_kept",
    "groups_generated": "dynamic_sampling/groups_generated",
    "groups_dropped": "dynamic_sampling/groups_dropped",
    "generation_batches": "dynamic_sampling/generation_batches",
}


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def step_log(
    history: list[dict],
    curriculum_log: list[dict],
    correct_reward: str = "judge_accuracy",
    format_reward: str = "judge_format",
) -> list[dict]:
    """The run's per-logging-step record for ``rl_summary.json`` (key ``log``): why a run learns or starves.

    One dict per training log of the trainer (``history`` = ``trainer.state.log_history``), keys
    :data:`LOG_KEYS` (a value the run did not log is None):

    - ``frac_reward_zero_std``: TRL's share of groups whose rewards have std 0 — groups that give GRPO
      nothing (under dynamic sampling: of all groups generated, before the refill dropped them);
    - ``reward``, ``accuracy`` (mean of ``correct_reward``), ``format_failure_rate`` (1 − mean of
      ``format_reward``: the share of rollouts the strict parser rejects);
    - ``rollout_entropy``: mean token entropy of the rollouts — the float32 one GTPO / GRPO-S record
      (``rollout_entropy/mean``) when there is one, else TRL's (``entropy``, of the policy in the loss);
    - ``curriculum_epoch`` (pass over the subset, from 0) and ``curriculum_position`` (prompts of that
      pass consumed) after the last generation of the step, from ``curriculum_log``
      (``{"step", "epoch", "position"}`` per generation, ``step`` = optimiser steps done before it);
    - with dynamic sampling, also ``groups_kept`` (trained), ``groups_generated``, ``groups_dropped``
      (uniform; generated − kept − dropped = signal-carrying groups beyond the full batch, unused, as in
      verl) and ``generation_batches`` (per step, averaged over the logging window).

    Metrics are TRL's averages over the logging window (``logging_steps``).
    """
    log = []
    for entry in history:
        if "reward" not in entry or "step" not in entry:
            continue
        step = entry["step"]
        fmt = entry.get(f"rewards/{format_reward}/mean")
        position = [c for c in curriculum_log if c["step"] < step]
        record = {
            "step": step,
            "frac_reward_zero_std": _rounded(entry.get("frac_reward_zero_std")),
            "reward": _rounded(entry.get("reward")),
            "accuracy": _rounded(entry.get(f"rewards/{correct_reward}/mean")),
            "format_failure_rate": None if fmt is None else _rounded(1.0 - fmt),
            "rollout_entropy": _rounded(entry.get("rollout_entropy/mean", entry.get("entropy"))),
            "curriculum_epoch": position[-1]["epoch"] if position else None,
            "curriculum_position": position[-1]["position"] if position else None,
        }
        for key, metric in DYNAMIC_SAMPLING_LOG.items():
            if metric in entry:
                record[key] = _rounded(entry[metric])
        log.append(record)
    return log


def planned_passes(max_steps: int, n_rows: int, trainer) -> float:
    """Passes over the training rows the step budget covers without dynamic sampling (which takes more):
    prompts per optimiser step = prompts per generation batch · gradient_accumulation_steps /
    (steps_per_generation · num_iterations)."""
    a = trainer.args
    prompts = a.generation_batch_size // trainer.num_generations
    per_step = prompts * a.gradient_accumulation_steps / (a.steps_per_generation * trainer.num_iterations)
    return round(max_steps * per_step / max(n_rows, 1), 2)


def _reward(args, config) -> tuple[list, list[float]]:
    """The judge reward functions and their weights, with DAPO's soft overlong penalty when asked for."""
    from egt.rl.rewards import judge_reward_functions, make_logic_checker

    checker = make_logic_checker(
        args.logic_checker, n_sentences=args.logic_sentences, endpoint=args.logic_endpoint, model=args.logic_model
    )
    reward_funcs, weights = judge_reward_functions(args.format_weight, args.logic_weight, checker)
    if args.overlong_buffer > 0:
        from trl.rewards import get_soft_overlong_punishment

        reward_funcs.append(get_soft_overlong_punishment(config.max_completion_length, args.overlong_buffer))
        weights.append(1.0)
    if config.reward_weights is not None and list(config.reward_weights) != weights:
        raise EgtError("set format_weight / logic_weight instead of reward_weights (the judge reward fixes them)")
    return reward_funcs, weights


def train_judge_rl(args, config) -> dict:
    """Run RL of the judge; the trained judge lands atomically in ``config.output_dir``.

    ``args`` is :class:`egt.rl.config.JudgeRLArgs`, ``config`` a TRL ``GRPOConfig``; neither is
    changed. Checkpoints go to ``<output_dir>.checkpoints`` (resume with ``resume_from_checkpoint:
    true`` or a path). Bad input fails before training: unknown model folder, manifest ids missing
    from the data, a curriculum without a manifest, a group size that does not divide the batch.
    Returns the run's summary (also written to ``rl_summary.json`` in the judge folder).
    """
    from transformers import AutoConfig

    import egt.models.tiny  # noqa: F401  (registers the tiny processor with AutoProcessor)
    from egt.judge.generative import JUDGE_META_FILE, read_judge_meta
    from egt.models.processors import image_resizer, load_processor, set_image_bounds
    from egt.rl.callbacks import TimeLimit
    from egt.rl.dataset import rl_training_data
    from egt.rl.trainer import JudgeGRPOTrainer

    start = time.perf_counter()
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise EgtError(f"{args.model}: not a model folder (no config.json); train one with 'egt train sft'")
    is_vision = getattr(AutoConfig.from_pretrained(args.model), "vision_config", None) is not None
    style = args.prompt_style or read_judge_meta(model_dir).get("prompt_style", "r1_reward")
    processor = load_processor(str(model_dir))  # no torchvision needed for images (egt.models.processors)
    set_image_bounds(processor, args.min_pixels, args.max_pixels)
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.padding_side = "left"  # as TRL sets it when it loads the processor itself
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data = rl_training_data(
        args.data,
        seed=config.seed,
        style=style,
        is_vision=is_vision,
        images_dir=args.images_dir,
        limit=args.limit,
        manifest=args.manifest,
        curriculum=args.curriculum,
        curriculum_by=args.curriculum_by,
        curriculum_stages=args.curriculum_stages,
        curriculum_repeat=args.curriculum_repeat,
        order=args.order,
        fit_image=image_resizer(processor) if is_vision else None,
    )
    reward_funcs, weights = _reward(args, config)

    final_dir = Path(config.output_dir)
    run = _own_copy(config)
    run.reward_weights = weights
    run.model_init_kwargs = run.model_init_kwargs or {"dtype": args.dtype}
    run.output_dir = str(checkpoint_dir(final_dir))
    trainer = JudgeGRPOTrainer(
        model=str(model_dir),
        processing_class=processor,
        reward_funcs=reward_funcs,
        args=run,
        train_dataset=data.dataset,
        advantage_estimator=args.advantage_estimator,
        estimator_kwargs=estimator_kwargs(args),
        correct_reward=args.correct_reward,
        curriculum=data.curriculum,
        dynamic_sampling=args.dynamic_sampling,
        dynamic_sampling_metric=args.dynamic_sampling_metric,
        max_generation_batches=args.max_generation_batches,
        ratio_preclip=args.ratio_preclip,
        advantage_filter_sigma=args.advantage_filter_sigma,
        record_dir=Path(run.output_dir) / "curriculum" if args.save_curriculum_order else None,
        callbacks=[TimeLimit(args.time_limit_seconds)] if args.time_limit_seconds > 0 else None,
    )
    passes = planned_passes(run.max_steps, len(data.dataset), trainer) if run.max_steps > 0 else None
    if passes is not None and passes > 1 and args.curriculum != "off":
        logger.warning(
            "%d steps cover the %d training rows %.2f times: passes after the first follow curriculum_repeat=%s",
            run.max_steps,
            len(data.dataset),
            passes,
            args.curriculum_repeat,
        )
    result = trainer.train(resume_from_checkpoint=resume_value(run.resume_from_checkpoint))

    history = trainer.state.log_history
    reward_first, reward_last = _log_means(history, "reward", 5)
    accuracy_first, accuracy_last = _log_means(history, "rewards/judge_accuracy/mean", 5)
    summary = {
        "n_pairs": len(data.pairs),
        "n_rows": len(data.dataset),
        "estimator": args.advantage_estimator,
        "curriculum": args.curriculum,
        "loss_type": run.loss_type,
        "steps": trainer.state.global_step,
        "reward_first": reward_first,
        "reward_last": reward_last,
        "accuracy_first": accuracy_first,
        "accuracy_last": accuracy_last,
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "processes": trainer.accelerator.num_processes,
        "curriculum_repeat": args.curriculum_repeat,
        "curriculum_passes_planned": passes,
        "curriculum_passes": 1 + max((c["epoch"] for c in trainer.curriculum_log), default=0),
        "dynamic_sampling": args.dynamic_sampling,
        "log": step_log(history, trainer.curriculum_log, args.correct_reward),
    }
    if args.dynamic_sampling:
        ds = trainer.dynamic_sampling_log
        summary["dynamic_sampling_totals"] = {
            "metric": args.dynamic_sampling_metric,
            "groups_kept": sum(e["groups_kept"] for e in ds),
            "groups_generated": sum(e["groups_generated"] for e in ds),
            "generation_batches": sum(e["generation_batches"] for e in ds),
            "batches_not_filled": sum(not e["filled"] for e in ds),
        }
    partial = final_dir.with_name(final_dir.name + ".partial")  # one name all ranks agree on
    trainer.save_model(str(partial))  # every rank: gathers ZeRO-3 / FSDP shards; rank 0 writes
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(partial)
        meta = {
            "prompt_style": style,
            "max_new_tokens": args.max_new_tokens or run.max_completion_length,
            "trained_by": "egt train rl",
        }
        (partial / JUDGE_META_FILE).write_text(json.dumps(meta))
        (partial / "rl_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if final_dir.is_dir():
            shutil.rmtree(final_dir)
        os.replace(partial, final_dir)
        if not args.keep_checkpoints:
            shutil.rmtree(checkpoint_dir(final_dir), ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return summary
