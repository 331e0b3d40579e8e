"""The demo's targets (issue 15): the whole EGT loop (lab → SFT → score → curate → RL on the entropy
subset and on a random one) in ≤ 600 s on 2 CPU cores, the SFT judge ≥ 85% on the clean test.
Runs ``egt demo`` for 3 seeds in a row (one process each, nothing else should be running) and
prints each run, the medians, the RQ1 numbers of every signal and both RL judges.

    .venv/bin/python bench/demo_wall.py [--seeds 0 1 2] [--out runs/bench-demo] [-- extra demo flags]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/bench-demo")
    ap.add_argument("extra", nargs="*", help="flags passed to egt demo (after --)")
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        out = Path(args.out) / f"seed{seed}"
        cmd = [sys.executable, "-m", "egt.cli", "demo", "--out", str(out), "--seed", str(seed), *args.extra]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        report = json.loads((out / "report.json").read_text())
        rows.append(report)
        print(
            f"seed {seed}: test accuracy {report['test_accuracy']:.4f}, wall {report['wall_seconds']:.1f} s, "
            f"steps {report['timings_seconds']}",
            flush=True,
        )
    acc = statistics.median(r["test_accuracy"] for r in rows)
    wall = statistics.median(r["wall_seconds"] for r in rows)
    print(
        f"median over {len(rows)} seeds: test accuracy {acc:.4f} (target ≥ 0.85: {'PASS' if acc >= 0.85 else 'FAIL'}), "
        f"wall {wall:.1f} s (target ≤ 600: {'PASS' if wall <= 600 else 'FAIL'})"
    )

    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    if "rq1" in rows[0]:
        for t in ("flipped", "hard"):
            print(f"median ceiling AUROC {t}: {median(r['rq1'].get(f'auroc_{t}_ceiling') for r in rows):.3f}")
        for e in ("answer", "sentence", "mixed", "vote", "peak"):
            print(
                f"median {e:8s}: "
                + ", ".join(
                    f"{m} {median(r['rq1'].get(f'{m}_{e}') for r in rows):.3f}"
                    for m in ("spearman", "auroc_flipped", "auroc_hard")
                )
            )
        print(
            "curation kept / dropped flip rate: "
            + "; ".join(
                f"{r['rq1']['curation'].get('flip_rate_kept')} / {r['rq1']['curation'].get('flip_rate_dropped')}"
                for r in rows
            )
        )
    if "rl" in rows[0]:
        for name in ("entropy", "random"):
            print(
                f"RL on {name} subset: test accuracy "
                + ", ".join(f"{r['rl'][name]['test_accuracy']:.4f}" for r in rows)
                + f" (median {median(r['rl'][name]['test_accuracy'] for r in rows):.4f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
