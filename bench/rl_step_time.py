"""Step time of GTPO and GRPO-S against GRPO: same model, same batch, same completions.

What a step costs beyond GRPO: GTPO / GRPO-S need the rollout policy's token entropies, i.e. one
no-grad forward over prompt + completion (TRL's chunked fused head), plus the estimator itself.
To compare like with like, one trainer runs all three: the estimator rotates every step
(grpo, gtpo, grpo_s, grpo, …), the learning rate is 0 so the model never changes, and
``min_new_tokens = max_completion_length``, so every step generates the same number of tokens
from the same model on the same batch shape and only the advantage path differs. Neighbouring steps share the
load of a shared machine, so the ratios are taken per round of three steps, then the median over
the ``--repeats`` rounds (plus a first, warm-up round). Two clocks per step (generation + scoring + loss + backward
+ optimiser): the wall clock (TRL's own ``step_time``) and this process's CPU time, which on a
shared machine measures the work done rather than the waiting (with one torch thread they agree
on an idle machine).

    .venv/bin/python bench/rl_step_time.py            # fresh tiny judge on a small lab
    .venv/bin/python bench/rl_step_time.py --model runs/sft/judge --lab runs/lab
    .venv/bin/python bench/rl_step_time.py --quick    # one timed round of small steps: a smoke check

Target (issue 4): gtpo / grpo ≤ 1.15 and grpo_s / grpo ≤ 1.15, on both clocks.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness

ESTIMATORS = ("grpo", "gtpo", "grpo_s")
TARGET = 1.15


def setup(args, work: Path) -> tuple[Path, Path, str]:
    from egt.judge.generative import read_judge_meta
    from egt.lab import LabConfig, make_lab
    from egt.models.tiny import build_tiny_judge
    from egt.records import read_pairs
    from egt.train.sft import lab_corpus

    lab = Path(args.lab) if args.lab else work / "lab"
    if not args.lab:
        make_lab(LabConfig(output_dir=str(lab), n_sft=64, n_rl_pool=64, n_test=8, seed=args.seed + 1))
    model = Path(args.model) if args.model else work / "judge"
    if not args.model:
        build_tiny_judge(lab_corpus(read_pairs(lab / "sft.jsonl"), "compact"), model)
    style = read_judge_meta(model).get("prompt_style", "compact")
    return lab, model, style


def add_judge_flags(parser) -> None:
    """The flags of a fixed-weights timing run: the judge, the lab, the batch shape."""
    parser.add_argument("--model", default="", help="A judge folder; default: a fresh tiny judge.")
    parser.add_argument("--lab", default="", help="A shapes-lab folder; default: a small fresh one.")
    parser.add_argument("--batch", type=int, default=16, help="Completions per step (per_device_train_batch_size).")
    parser.add_argument("--generations", type=int, default=8, help="G, completions per prompt.")
    parser.add_argument("--max_completion_length", type=int, default=64)


def timed_run(args, lab: Path, model: Path, style: str, work: Path, steps: int, switch, **config):
    """One run whose weights never change (learning rate 0) and whose completions all have the full
    length, so every step does the same work; ``switch(trainer, step)`` runs before each step (0-based).
    Returns the trainer and this process's CPU seconds per step (1-based, as TRL's ``step_time``)."""
    from transformers import TrainerCallback
    from trl import GRPOConfig

    from egt.records import read_pairs
    from egt.rl.config import cpu_rl_defaults
    from egt.rl.dataset import build_rl_dataset, presentation_rows
    from egt.rl.rewards import RuleLogicChecker, judge_reward_functions
    from egt.rl.trainer import JudgeGRPOTrainer

    pairs = read_pairs(lab / "rl_pool.jsonl")
    dataset = build_rl_dataset(pairs, presentation_rows(pairs, "random", 0), lab, style, True)
    funcs, weights = judge_reward_functions(logic_checker=RuleLogicChecker())
    settings = {
        **cpu_rl_defaults(),
        "output_dir": str(work / "run"),
        "seed": args.seed,
        "learning_rate": 0.0,
        "max_steps": steps,
        "per_device_train_batch_size": args.batch,
        "num_generations": args.generations,
        "max_completion_length": args.max_completion_length,
        "reward_weights": weights,
        "generation_kwargs": {"min_new_tokens": args.max_completion_length},
        **config,
    }
    cpu: dict[int, float] = {}

    class Switch(TrainerCallback):
        def on_step_begin(self, _args, state, control, **kwargs):
            switch(trainer, state.global_step)
            cpu[state.global_step + 1] = -time.process_time()

        def on_step_end(self, _args, state, control, **kwargs):
            cpu[state.global_step] += time.process_time()

    trainer = JudgeGRPOTrainer(
        model=str(model),
        reward_funcs=funcs,
        args=GRPOConfig(**settings),
        train_dataset=dataset,
        advantage_estimator="grpo",
        callbacks=[Switch()],
    )
    trainer.train()
    return trainer, cpu


def run_rotating(args, lab: Path, model: Path, style: str, work: Path) -> dict[str, list[float]]:
    """Per-step times of one run whose estimator rotates every step; ``{estimator: [s, …]}`` in rounds."""

    def rotate(trainer, step: int) -> None:
        trainer.advantage_estimator = ESTIMATORS[step % len(ESTIMATORS)]

    trainer, cpu = timed_run(args, lab, model, style, work, (args.repeats + 1) * len(ESTIMATORS), rotate)
    wall: dict[str, list[float]] = {e: [] for e in ESTIMATORS}
    cpu_by: dict[str, list[float]] = {e: [] for e in ESTIMATORS}
    for entry in trainer.state.log_history:
        if "step_time" in entry and entry["step"] > len(ESTIMATORS):  # first round: warm-up
            estimator = ESTIMATORS[(entry["step"] - 1) % len(ESTIMATORS)]
            wall[estimator].append(entry["step_time"])
            cpu_by[estimator].append(cpu[entry["step"]])
    lengths = {h.get("completions/mean_length") for h in trainer.state.log_history if "completions/mean_length" in h}
    print(f"completion lengths seen: {sorted(lengths)}", file=sys.stderr)
    return {"wall": wall, "cpu": cpu_by}


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=20)
    add_judge_flags(parser)
    args = harness.parse(
        parser, quick={"repeats": 1, "batch": 8, "generations": 4, "max_completion_length": 16}
    )  # --repeats: timed rounds of one step per estimator (plus one warm-up round)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="egt-rl-step-") as tmp:
        work = Path(tmp)
        lab, model, style = setup(args, work)
        samples = run_rotating(args, lab, model, style, work)
    rounds = min(len(v) for v in samples["wall"].values())
    clocks = ("wall", "cpu")
    ratios = {
        clock: {
            e: harness.paired_ratio(samples[clock][e][:rounds], samples[clock]["grpo"][:rounds]) for e in ESTIMATORS
        }
        for clock in clocks
    }
    medians = {clock: {e: statistics.median(v) for e, v in samples[clock].items()} for clock in clocks}
    harness.print_table(
        f"RL step time, tiny judge, {args.batch} completions/step (G = {args.generations}), "
        f"{args.max_completion_length} new tokens each, {args.threads} thread(s), {rounds} rounds of "
        "(grpo, gtpo, grpo_s) steps",
        ["estimator", "wall s/step", "wall ratio", "CPU s/step", "CPU ratio"],
        [
            [
                e,
                f"{medians['wall'][e]:.3f}",
                f"{ratios['wall'][e]:.3f}",
                f"{medians['cpu'][e]:.3f}",
                f"{ratios['cpu'][e]:.3f}",
            ]
            for e in ESTIMATORS
        ],
        caption=f"ratio = median over rounds of step / grpo step; wall {time.perf_counter() - start:.0f} s",
    )
    checks = [
        harness.Check(f"{e} / grpo step, {clock}", ratios[clock][e], TARGET) for e in ESTIMATORS[1:] for clock in clocks
    ]
    return harness.finish(__file__, args, {"medians": medians, "ratios": ratios, "samples": samples}, checks)


if __name__ == "__main__":
    sys.exit(main())
