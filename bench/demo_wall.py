"""The demo's targets (issue 15): the whole EGT loop (lab → SFT → score → curate → RL on the entropy
subset and on a random one) in ≤ 600 s on 2 CPU cores, the SFT judge ≥ 85% on the clean test.

Runs ``egt demo`` for 3 seeds in a row (one process each, nothing else should be running; each gets
``--threads`` through ``OMP_NUM_THREADS``) under ``<output_dir>/demo_wall/seed<N>`` and prints each
run, the medians, the RQ1 numbers of every signal and both RL judges. A rerun reuses every finished
demo step, so delete the folder for a fresh wall time. ``--quick`` runs one seed.

    .venv/bin/python bench/demo_wall.py [--seeds 0 1 2] [-- extra demo flags]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import harness

ACCURACY_TARGET, WALL_TARGET = 0.85, 600.0


def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def rq1_rows(reports: list[dict]) -> list[list]:
    """Median over seeds of each entropy signal's Spearman and AUROCs, and the ceilings."""
    rows = []
    for signal in ("answer", "sentence", "mixed", "vote", "peak"):
        rows.append(
            [signal]
            + [
                f"{median(r['rq1'].get(f'{m}_{signal}') for r in reports):.3f}"
                for m in ("spearman", "auroc_flipped", "auroc_hard")
            ]
        )
    rows.append(
        ["ceiling", "-"]
        + [f"{median(r['rq1'].get(f'auroc_{t}_ceiling') for r in reports):.3f}" for t in ("flipped", "hard")]
    )
    return rows


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("extra", nargs="*", help="flags passed to egt demo (after --)")
    args = harness.parse(parser, quick={"seeds": [0]})
    work = harness.work_dir(args, __file__)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    reports = []
    for seed in args.seeds:
        out = work / f"seed{seed}"
        cmd = [sys.executable, "-m", "egt.cli", "demo", "--output_dir", str(out), "--seed", str(seed), *args.extra]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        reports.append(json.loads((out / "report.json").read_text()))
    harness.print_table(
        f"egt demo, {len(reports)} seed(s), {args.threads} threads",
        ["seed", "test accuracy", "wall s", "step seconds"],
        [
            [seed, f"{r['test_accuracy']:.4f}", f"{r['wall_seconds']:.1f}", r["timings_seconds"]]
            for seed, r in zip(args.seeds, reports)
        ],
    )
    if "rq1" in reports[0]:
        harness.print_table(
            "RQ1, median over seeds", ["entropy signal", "Spearman", "AUROC flipped", "AUROC hard"], rq1_rows(reports)
        )
        print(
            "curation kept / dropped flip rate: "
            + "; ".join(
                f"{r['rq1']['curation'].get('flip_rate_kept')} / {r['rq1']['curation'].get('flip_rate_dropped')}"
                for r in reports
            )
        )
    if "rl" in reports[0]:
        harness.print_table(
            "RL judges: clean test accuracy",
            ["subset", *(f"seed {s}" for s in args.seeds), "median"],
            [
                [name, *(f"{r['rl'][name]['test_accuracy']:.4f}" for r in reports)]
                + [f"{median(r['rl'][name]['test_accuracy'] for r in reports):.4f}"]
                for name in ("entropy", "random")
            ],
        )
    accuracy = median(r["test_accuracy"] for r in reports)
    wall = median(r["wall_seconds"] for r in reports)
    checks = [
        harness.Check("median SFT judge test accuracy", accuracy, ACCURACY_TARGET, ">="),
        harness.Check("median demo wall seconds", wall, WALL_TARGET),
    ]
    return harness.finish(__file__, args, {"reports": dict(zip(map(str, args.seeds), reports))}, checks)


if __name__ == "__main__":
    sys.exit(main())
