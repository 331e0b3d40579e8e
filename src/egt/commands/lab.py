"""``egt lab make``: write the shapes lab."""

from __future__ import annotations

from egt.config import parse_config
from egt.lab import LabConfig, make_lab
from egt.report import console, print_table


def make(argv: list[str], prog: str) -> int:
    (cfg,) = parse_config([LabConfig], argv, prog, "Generate the shapes lab.")
    summary = make_lab(cfg)
    rows = [
        [name, s["n"], s["n_hard"], f"{s['flip_rate']:.1%}", f"{s['flip_rate_easy']:.1%}", f"{s['flip_rate_hard']:.1%}"]
        for name, s in summary["splits"].items()
    ]
    print_table(
        f"shapes lab → {cfg.output_dir}",
        ["split", "items", "hard", "flipped", "flipped (easy)", "flipped (hard)"],
        rows,
    )
    pool = summary["splits"]["rl_pool"]
    if "region_share" in pool:
        console.print(
            f"systematic noise: biased region {pool['region_share']:.1%} of the pool, flipped there "
            f"{pool['flip_rate_region']:.1%}, elsewhere {pool['flip_rate_rest']:.1%}"
        )
    console.print(f"wrote {cfg.output_dir}/{{sft,rl_pool,test}}.jsonl, images/ and lab.json")
    return 0
