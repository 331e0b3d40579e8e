"""CPU lab: one round of self-compare vs a plain-SFT control, mean of 3 seeds (issue 7, docs/methods.md §7).

Per seed (see ``egt.math.lab``): a tiny Qwen2 text model is trained from scratch by SFT on
generated arithmetic word problems; then one self-compare round (K sampled attempts per training
question, verified; wrong ones compared with the reference and corrected; kept only if the
correction verifies); then two arms continue from the same base weights for the same number of
optimizer steps and sequences per step: self-compare records mixed into the original data, or
the original data alone. Greedy accuracy on held-out problems before and after.

The comparer is a scripted stand-in for a stronger comparer model (``ReferenceComparer``): it
aligns the attempt's steps with the reference's by value. A model this small cannot write a
verifying correction itself.

    .venv/bin/python bench/selfcompare_lab.py                 # 3 seeds, ≈10 min on 2 free cores
    .venv/bin/python bench/selfcompare_lab.py --quick         # seed 0, a smaller lab: a smoke check
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings

import harness

warnings.filterwarnings("ignore")


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = harness.parse(parser, quick={"seeds": [0]})

    import transformers

    from egt.math.lab import MathLabConfig, TinyTextConfig, run_lab

    transformers.logging.set_verbosity_error()
    cfg = MathLabConfig()
    if args.quick:
        cfg = MathLabConfig(n_train=300, n_test=60, n_pool=60, base_steps=150, extra_steps=40)
    model_cfg = TinyTextConfig()

    started = time.time()
    results = [
        run_lab(cfg, model_cfg, seed, log=lambda m: print(m, file=sys.stderr, flush=True)) for seed in args.seeds
    ]

    arms = list(results[0]["after"])  # plain SFT, self-compare[, verified only]
    rows = []
    for r in results:
        acc = {arm: r["after"][arm]["accuracy"] for arm in arms}
        rows.append(
            [
                r["seed"],
                f"{r['before']['accuracy']:.1%}",
                *[f"{acc[a]:.1%}" for a in arms],
                f"{(acc['self-compare'] - acc['plain SFT']) * 100:+.1f}",
                r["build"]["kept"],
                r["build"]["sft_comparison_records"],
                r["build"]["sft_verified_records"],
            ]
        )

    def mean(key):
        return statistics.mean(key(r) for r in results)

    means = {arm: mean(lambda r, a=arm: r["after"][a]["accuracy"]) for arm in arms}
    m_before = mean(lambda r: r["before"]["accuracy"])
    deltas = [r["after"]["self-compare"]["accuracy"] - r["after"]["plain SFT"]["accuracy"] for r in results]
    sd = statistics.stdev(deltas) if len(deltas) > 1 else 0.0
    rows.append(
        [
            "mean",
            f"{m_before:.1%}",
            *[f"{means[a]:.1%}" for a in arms],
            f"{statistics.mean(deltas) * 100:+.1f} (sd {sd * 100:.1f})",
            "",
            "",
            "",
        ]
    )
    harness.print_table(
        f"Self-compare lab: held-out greedy accuracy ({cfg.n_test} problems), {cfg.base_steps} base steps, "
        f"+{cfg.extra_steps} steps × {cfg.batch_size} sequences per arm, K={cfg.k_samples} attempts "
        f"(T={cfg.temperature}) on {cfg.n_pool} training questions",
        [
            "seed",
            "before",
            *[f"after {a}" for a in arms],
            "Δ self-compare − plain (pts)",
            "kept comparisons",
            "SFT comparison recs",
            "SFT verified recs",
        ],
        rows,
    )
    b = results[0]["build"]
    print(f"seed {results[0]['seed']} build outcomes: {b}")
    tokens = {arm: round(mean(lambda r, a=arm: r["approx_tokens"][a])) for arm in arms}
    print(f"approximate tokens per arm (steps × batch × mean length): {tokens}")
    print(f"total {time.time() - started:.0f}s for {len(results)} seed(s)")
    return harness.finish(__file__, args, {"results": results, "mean": {"before": m_before, **means}})


if __name__ == "__main__":
    sys.exit(main())
