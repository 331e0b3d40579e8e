"""CPU proof of learning for RL of the judge: does a short RL run improve a weak SFT judge?

On the shapes lab: (1) make a lab; (2) SFT a tiny judge briefly (weak on purpose); (3) evaluate it
on the clean test split, both presentation orders, greedy; (4) for each of grpo, gtpo and grpo_s,
run RL from that same judge on the noisy rl_pool for at most ``--rl_seconds`` (judge reward,
DAPO loss, clip-higher) and evaluate again. Prints a before/after table; the lab and the judges
go under ``<output_dir>/rl_lab/``.

Clean-test "mean reward" is the judge reward R = 0.5·format + accuracy·(1 + 0.5·logic) of the
greedy outputs against the clean labels, averaged over both orders.

    .venv/bin/python bench/rl_lab.py                       # everything from scratch
    .venv/bin/python bench/rl_lab.py --judge runs/sft/judge --lab runs/lab   # reuse a judge
    .venv/bin/python bench/rl_lab.py --quick               # a few steps of grpo: a smoke check

Issue 4 target: test accuracy and mean reward rise for each estimator within ≤ 5 minutes of RL on
2 cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import harness

QUICK = dict(
    n_sft=256,
    n_rl_pool=32,
    n_test=32,
    sft_steps=20,
    sft_batch=8,
    estimators="grpo",
    rl_steps=2,
    batch=8,
    generations=4,
    max_completion_length=24,
)


def parse():
    p = harness.make_parser(__doc__, repeats=1)
    p.add_argument("--lab", default="", help="Reuse a shapes-lab folder (default: make one in the work folder).")
    p.add_argument("--judge", default="", help="Reuse an SFT judge (default: SFT one in the work folder).")
    p.add_argument("--n_sft", type=int, default=5000)
    p.add_argument("--n_rl_pool", type=int, default=1000)
    p.add_argument("--n_test", type=int, default=200)
    p.add_argument(
        "--sft_steps",
        type=int,
        default=400,
        help="SFT steps of the weak judge (it starts reading the image after ~300; 540 reach ~95%%).",
    )
    p.add_argument("--sft_lr", type=float, default=1.0e-3)
    p.add_argument("--sft_batch", type=int, default=32)
    p.add_argument("--estimators", default="grpo,gtpo,grpo_s")
    p.add_argument("--rl_seconds", type=float, default=300.0, help="Wall-clock budget of each RL run.")
    p.add_argument("--rl_steps", type=int, default=250, help="Step cap of each RL run.")
    p.add_argument("--rl_lr", type=float, default=1.0e-5)
    p.add_argument("--batch", type=int, default=64, help="Completions per RL step (8 prompts × G = 8).")
    p.add_argument("--generations", type=int, default=8, help="G, completions per prompt.")
    p.add_argument("--max_completion_length", type=int, default=48)
    return harness.parse(p, quick=QUICK)


def evaluate_judge(judge_dir: Path, lab: Path, seed: int) -> dict:
    """Greedy, both orders, clean test labels: accuracy, format failures, mean judge reward."""
    from egt.evaluation.runner import evaluate
    from egt.judge.args import JudgeArgs
    from egt.pipelines.judges import make_judge
    from egt.records import read_pairs
    from egt.rl.rewards import RuleLogicChecker, judge_reward_terms

    judge = make_judge(JudgeArgs(model=str(judge_dir), device="cpu", batch_size=100))
    report, predictions = evaluate(
        judge, read_pairs(lab / "test.jsonl"), order="both", seed=seed, images_root=lab, batch_size=100
    )
    checker = RuleLogicChecker()
    rewards = [judge_reward_terms(p.text or "", p.preferred, p.swapped, checker).total() for p in predictions]
    metrics = report["metrics"]
    return {
        "accuracy": metrics["accuracy"],
        "format_failure_rate": metrics["format_failure_rate"],
        "order_consistency": metrics.get("order_consistency"),
        "mean_reward": sum(rewards) / len(rewards),
    }


def lab_and_judge(args, out: Path) -> tuple[Path, Path, float]:
    """``--lab`` or a fresh lab, ``--judge`` or a judge SFT'd for ``--sft_steps``; and the SFT seconds."""
    from trl import SFTConfig

    from egt.lab import LabConfig, make_lab
    from egt.models.training import cpu_sft_defaults
    from egt.train.sft import JudgeSFTArgs, train_judge_sft

    lab = Path(args.lab) if args.lab else out / "lab"
    if not args.lab:
        make_lab(
            LabConfig(
                output_dir=str(lab), seed=args.seed, n_sft=args.n_sft, n_rl_pool=args.n_rl_pool, n_test=args.n_test
            )
        )
    judge = Path(args.judge) if args.judge else out / "sft_judge"
    sft_seconds = 0.0
    if not args.judge:
        t0 = time.perf_counter()
        sft = SFTConfig(
            **{
                **cpu_sft_defaults(),
                "output_dir": str(judge),
                "max_steps": args.sft_steps,
                "learning_rate": args.sft_lr,
                "per_device_train_batch_size": args.sft_batch,
                "seed": args.seed,
                "disable_tqdm": True,
                "logging_steps": 20,
            }
        )
        train_judge_sft(JudgeSFTArgs(data=str(lab / "sft.jsonl"), max_new_tokens=args.max_completion_length), sft)
        sft_seconds = time.perf_counter() - t0
    return lab, judge, sft_seconds


def main() -> int:
    args = parse()
    from trl import GRPOConfig

    from egt.rl.config import JudgeRLArgs, cpu_rl_defaults
    from egt.rl.recipe import train_judge_rl

    out = harness.work_dir(args, __file__)
    start = time.perf_counter()

    lab, judge, sft_seconds = lab_and_judge(args, out)

    rows = {
        "sft": {
            **evaluate_judge(judge, lab, args.seed),
            "steps": args.sft_steps if not args.judge else None,
            "train_seconds": round(sft_seconds, 1),
        }
    }
    print(f"SFT judge: {rows['sft']}", file=sys.stderr, flush=True)
    for estimator in args.estimators.split(","):
        config = GRPOConfig(
            **{
                **cpu_rl_defaults(),
                "output_dir": str(out / f"rl_{estimator}"),
                "seed": args.seed,
                "max_steps": args.rl_steps,
                "learning_rate": args.rl_lr,
                "per_device_train_batch_size": args.batch,
                "num_generations": args.generations,
                "max_completion_length": args.max_completion_length,
                "logging_steps": 5,
            }
        )
        rl_args = JudgeRLArgs(
            model=str(judge),
            data=str(lab / "rl_pool.jsonl"),
            curriculum="off",
            advantage_estimator=estimator,
            time_limit_seconds=args.rl_seconds,
            keep_checkpoints=False,
            save_curriculum_order=False,
        )
        summary = train_judge_rl(rl_args, config)
        rows[estimator] = {
            **evaluate_judge(out / f"rl_{estimator}", lab, args.seed),
            "steps": summary["steps"],
            "train_seconds": summary["train_seconds"],
            "train_reward": [summary["reward_first"], summary["reward_last"]],
            "train_accuracy": [summary["accuracy_first"], summary["accuracy_last"]],
        }
        print(f"{estimator}: {rows[estimator]}", file=sys.stderr, flush=True)

    base = rows["sft"]
    table, checks = [], []
    for name, r in rows.items():
        d_acc, d_r = r["accuracy"] - base["accuracy"], r["mean_reward"] - base["mean_reward"]
        rl = name != "sft"
        table.append(
            [
                name,
                r["steps"],
                f"{r['train_seconds']:.0f}",
                f"{100 * r['accuracy']:.1f}%",
                f"{100 * d_acc:+.1f}" if rl else "",
                f"{r['mean_reward']:.3f}",
                f"{d_r:+.3f}" if rl else "",
                f"{100 * r['format_failure_rate']:.1f}%",
                f"{r['train_reward'][0]} → {r['train_reward'][1]}" if rl else "",
            ]
        )
        if rl:
            checks += [
                harness.Check(f"{name}: Δ test accuracy", d_acc, 0.0, ">"),
                harness.Check(f"{name}: Δ mean reward", d_r, 0.0, ">"),
            ]
    harness.print_table(
        f"RL of a weak SFT judge on the shapes lab — clean test ({args.n_test} items × 2 orders, greedy)",
        ["judge", "steps", "train s", "accuracy", "Δ acc", "mean R", "Δ R", "fmt fail", "train R first→last"],
        table,
        caption=f"wall {time.perf_counter() - start:.0f} s",
    )
    return harness.finish(__file__, args, {"rows": rows}, checks)


if __name__ == "__main__":
    sys.exit(main())
