"""DAPO dynamic sampling against plain GRPO on the shapes lab: what a trained group costs in generation.

Two runs of the same SFT judge on the same pool, seed and steps: plain GRPO, and GRPO with dynamic
sampling (``--metric``, ``--max_generation_batches``). Per run: groups generated and trained, trained
groups with zero reward variance (under dynamic sampling there must be none: the refill drops them;
under plain GRPO they are the share TRL logs as ``frac_reward_zero_std``), the wall seconds spent in
generation + scoring, and that time per trained group and per trained group *with signal* (non-zero
variance), printed side by side with dynamic sampling / plain ratios. Under dynamic sampling the per-step
log (groups kept / generated, generation batches) is printed too.

A judge that never writes a verdict makes every group uniform, so the judge must be SFT'd: ``--judge``
(e.g. runs/sft/judge from configs/sft/tiny_lab.yaml), else one is SFT'd here for ``--sft_steps``.

    .venv/bin/python bench/rl_dynamic_sampling.py --judge runs/sft/judge --lab runs/lab
    .venv/bin/python bench/rl_dynamic_sampling.py --quick    # tiny SFT, few steps: a smoke check

Targets (issue 24): no trained group with zero reward variance under dynamic sampling; the cost ratio
is printed, not targeted (it is the price of the signal: 1 / the share of groups kept).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import harness
from rl_lab import lab_and_judge

QUICK = dict(n_sft=128, n_rl_pool=48, sft_steps=10, steps=2, batch=16, generations=4, max_completion_length=24)


def parse():
    p = harness.make_parser(__doc__, repeats=1)
    p.add_argument("--lab", default="", help="A shapes-lab folder (default: make one in the work folder).")
    p.add_argument("--judge", default="", help="An SFT judge (default: SFT one in the work folder).")
    p.add_argument("--n_sft", type=int, default=2000)
    p.add_argument("--n_rl_pool", type=int, default=400)
    p.add_argument("--n_test", type=int, default=8)
    p.add_argument("--sft_steps", type=int, default=300)
    p.add_argument("--sft_lr", type=float, default=1.0e-3)
    p.add_argument("--sft_batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=8, help="RL steps of each run.")
    p.add_argument("--batch", type=int, default=32, help="Completions per step (prompts × G).")
    p.add_argument("--generations", type=int, default=8, help="G, completions per prompt.")
    p.add_argument("--max_completion_length", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature of the rollouts.")
    p.add_argument("--metric", default="accuracy", choices=["reward", "accuracy"])
    p.add_argument("--max_generation_batches", type=int, default=4)
    return harness.parse(p, quick=QUICK)


def run(args, lab: Path, judge: Path, style: str, work: Path, dynamic: bool) -> dict:
    import torch
    from trl import GRPOConfig

    from egt.records import read_pairs
    from egt.rl.config import cpu_rl_defaults
    from egt.rl.dataset import build_rl_dataset, presentation_rows
    from egt.rl.dynamic_sampling import uniform_groups
    from egt.rl.rewards import RuleLogicChecker, judge_reward_functions
    from egt.rl.trainer import JudgeGRPOTrainer

    stats = {"generation_seconds": 0.0, "groups_generated": 0, "groups_trained": 0, "zero_variance_trained": 0}

    class Timed(JudgeGRPOTrainer):
        def _score_generation(self, inputs, mode):
            output = super()._score_generation(inputs, mode)
            if not self.dynamic_sampling:  # plain GRPO trains every group it generates
                uniform = uniform_groups(self._dynamic_sampling_values(), self.num_generations)
                stats["groups_trained"] += uniform.numel()
                stats["zero_variance_trained"] += int(uniform.sum())
            stats["groups_generated"] += self._prompts_per_generation()
            return output

        def _generate_and_score_completions(self, inputs):
            start = time.perf_counter()
            output = super()._generate_and_score_completions(inputs)
            stats["generation_seconds"] += time.perf_counter() - start
            if self.dynamic_sampling:  # trained rows: mask > 0; a group without signal has all-zero advantages
                trained = output["completion_mask"].sum(dim=1) > 0  # [B]
                grouped = output["advantages"].reshape(-1, self.num_generations, output["advantages"].size(-1))
                rows = trained.reshape(-1, self.num_generations).all(dim=1)  # [n] trained groups
                stats["groups_trained"] += int(rows.sum())
                stats["zero_variance_trained"] += int((rows & (grouped.abs().amax(dim=(1, 2)) == 0)).sum())
            return output

    torch.manual_seed(args.seed)
    pairs = read_pairs(lab / "rl_pool.jsonl")
    dataset = build_rl_dataset(pairs, presentation_rows(pairs, "random", args.seed), lab, style, True)
    funcs, weights = judge_reward_functions(logic_checker=RuleLogicChecker())
    config = GRPOConfig(
        **{
            **cpu_rl_defaults(),
            "output_dir": str(work / ("dynamic" if dynamic else "plain")),
            "seed": args.seed,
            "learning_rate": 1e-5,
            "max_steps": args.steps,
            "per_device_train_batch_size": args.batch,
            "num_generations": args.generations,
            "max_completion_length": args.max_completion_length,
            "temperature": args.temperature,
            "reward_weights": weights,
        }
    )
    trainer = Timed(
        model=str(judge),
        reward_funcs=funcs,
        args=config,
        train_dataset=dataset,
        advantage_estimator="grpo",
        dynamic_sampling=dynamic,
        dynamic_sampling_metric=args.metric,
        max_generation_batches=args.max_generation_batches,
    )
    trainer.train()
    stats["log"] = [
        {k: e[k] for k in ("step", "generation_batches", "groups_generated", "groups_kept", "filled")}
        for e in trainer.dynamic_sampling_log
    ]
    stats["frac_reward_zero_std"] = [h["frac_reward_zero_std"] for h in trainer.state.log_history if "reward" in h]
    return stats


def main() -> int:
    args = parse()
    from egt.judge.generative import read_judge_meta

    out = harness.work_dir(args, __file__)
    start = time.perf_counter()
    lab, judge, _ = lab_and_judge(args, out)
    style = read_judge_meta(judge).get("prompt_style", "compact")
    arms = {
        "plain GRPO": run(args, lab, judge, style, out, False),
        "dynamic sampling": run(args, lab, judge, style, out, True),
    }

    def per(stats: dict, trained_key: str) -> float | None:
        n = stats["groups_trained"] - (stats["zero_variance_trained"] if trained_key == "signal" else 0)
        return stats["generation_seconds"] / n if n else None

    base = arms["plain GRPO"]
    rows = []
    for name, s in arms.items():
        cost, signal = per(s, "all"), per(s, "signal")
        ratio = [
            "–" if x is None or y is None else f"{x / y:.2f}"
            for x, y in ((cost, per(base, "all")), (signal, per(base, "signal")))
        ]
        rows.append(
            [
                name,
                s["groups_generated"],
                s["groups_trained"],
                s["zero_variance_trained"],
                f"{s['generation_seconds']:.1f}",
                "–" if cost is None else f"{cost:.2f}",
                ratio[0],
                "–" if signal is None else f"{signal:.2f}",
                ratio[1],
            ]
        )
    harness.print_table(
        f"dynamic sampling ({args.metric}, ≤ {args.max_generation_batches} generation batches) vs plain GRPO: "
        f"{args.steps} steps of {args.batch // args.generations} groups × G = {args.generations}",
        [
            "run",
            "groups generated",
            "groups trained",
            "trained with zero variance",
            "generation s",
            "s / trained group",
            "ratio",
            "s / trained group with signal",
            "ratio",
        ],
        rows,
        caption=f"ratio = this run / plain GRPO; wall {time.perf_counter() - start:.0f} s",
    )
    ds = arms["dynamic sampling"]
    harness.print_table(
        "dynamic sampling per step",
        ["step", "generation batches", "groups generated", "groups kept", "filled"],
        [
            [e["step"] + 1, e["generation_batches"], e["groups_generated"], e["groups_kept"], e["filled"]]
            for e in ds["log"]
        ],
    )
    checks = [
        harness.Check("trained groups with zero reward variance, dynamic sampling", ds["zero_variance_trained"], 0)
    ]
    return harness.finish(__file__, args, {"arms": arms}, checks)


if __name__ == "__main__":
    sys.exit(main())
