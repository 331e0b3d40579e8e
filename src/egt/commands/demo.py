"""``egt demo``: the whole EGT loop on the CPU (lab → SFT → score → curate → RL); writes runs/demo/report.json."""

from __future__ import annotations

from egt.config import parse_config
from egt.pipelines.demo import DemoArgs, run_demo, summary_rows
from egt.report import console, print_table


def demo(argv: list[str], prog: str) -> int:
    (args,) = parse_config([DemoArgs], argv, prog, "Run the EGT loop end to end on the shapes lab.")
    summary = run_demo(args)
    print_table("EGT demo", ["", ""], summary_rows(summary))
    console.print(f"report: {args.output_dir}/report.json")
    return 0
