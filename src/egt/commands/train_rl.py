"""``egt train rl``: RL of the judge with TRL's GRPO (EGT stage 2); TRL's GRPOConfig fields are accepted too.

Runs unchanged under ``accelerate launch`` (see docs/rl.md and configs/accelerate/).
"""

from __future__ import annotations

from egt.config import parse_config
from egt.report import console, print_table


def rl(argv: list[str], prog: str) -> int:
    from egt.rl.config import JudgeRLArgs, cpu_rl_defaults

    args, config = parse_config(
        [JudgeRLArgs, "trl:GRPOConfig"],
        argv,
        prog,
        "RL of a judge: GRPO / DAPO / GTPO / GRPO-S with the judge reward and the entropy curriculum.",
        defaults=cpu_rl_defaults(),
    )
    from egt.rl.recipe import train_judge_rl  # torch: only after the options parsed

    summary = train_judge_rl(args, config)
    if config.process_index == 0:
        rows = [[k, v] for k, v in summary.items() if k != "log"]
        rows.append(["log", f"{len(summary['log'])} logged steps in rl_summary.json (egt analyze --run)"])
        print_table(f"judge RL → {config.output_dir}", ["", "value"], rows)
        console.print(
            f"reward {summary['reward_first']} → {summary['reward_last']}, "
            f"accuracy {summary['accuracy_first']} → {summary['accuracy_last']} (first → last logged steps)"
        )
    return 0
