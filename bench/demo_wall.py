"""Issue 2's target: the demo's tiny judge reaches ≥ 85% clean-test accuracy in ≤ 5 minutes of
wall time on 2 CPU cores. Runs ``egt demo`` for 3 seeds in a row (one process each, nothing
else should be running) and prints each run and the medians.

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
        print(f"seed {seed}: test accuracy {report['test_accuracy']:.4f}, wall {report['wall_seconds']:.1f} s, "
              f"steps {report['timings_seconds']}", flush=True)
    acc = statistics.median(r["test_accuracy"] for r in rows)
    wall = statistics.median(r["wall_seconds"] for r in rows)
    print(f"median over {len(rows)} seeds: test accuracy {acc:.4f} (target ≥ 0.85: {'PASS' if acc >= 0.85 else 'FAIL'}), "
          f"wall {wall:.1f} s (target ≤ 300: {'PASS' if wall <= 300 else 'FAIL'})")
    if "rq1" in rows[0]:
        for key in (f"{m}_{e}" for e in ("answer", "sentence", "mixed", "vote")
                    for m in ("spearman", "auroc_flipped", "auroc_hard")):
            print(f"median {key}: {statistics.median(r['rq1'][key] for r in rows):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
