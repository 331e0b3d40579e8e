"""What a review budget buys (issue 25 item 4): label noise left after a simulated reviewer corrects the
top k items of each suspicion ranking, against the same budget spent on random items — and, with
``--experiment``, the accuracy of a judge trained with RL on each corrected pool.

The reviewer is the lab's truth: for each of the first k items of a ranking it flips the label when
the lab says it is flipped, else keeps it. Its decisions are written as a ``corrections.jsonl``
exactly as the review page exports them and applied with ``egt relabel``
(:func:`egt.curation.relabel.relabel_pool`), so each corrected pool is the one a training run would
read; the flip rate left in it is read back from the relabelled records (relabel recomputes the
lab's ``flipped`` against the new label). Random: the mean over ``--seeds`` seeded orders.

Flip rate only (seconds; ``--keep_pools DIR`` keeps the corrected pools):

    .venv/bin/python bench/review_budget.py --scores runs/demo/seed0/stats/rq1/scores.jsonl \\
        --data runs/demo/seed0/lab/rl_pool.jsonl [--budgets 25 50 100 200] [--seeds 5]

prints one row per ranking (flip rate left, in %, per budget) and writes ``review_budget.json`` and
``review_budget.png`` beside the scores (or into ``--output_dir``).

Accuracy after training (``egt.pipelines.experiment.review``; ≈ 5 CPU-min per RL run, resumable):

    .venv/bin/python bench/review_budget.py --experiment runs/experiment/lab_noise --seeds 0 1 2 \\
        --rankings disagreement peak random all --budgets 100 250

reads a finished ``egt experiment`` folder (configs/experiment/lab_noise.yaml: its systematic-noise
pool, weak SFT judge and that judge's scores), trains the strong RL setting on each corrected pool
and prints the clean-test accuracy overall and in the biased region, each with its Δ vs the
uncorrected pool (table N's ``full`` cell, k = 0) and a seed-level 95% CI (seeds, then items).
Writes ``review/review_budget.json`` and ``review/review_budget.png`` in the experiment folder.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path


def corrections(ids, truth: dict[str, bool], labels: dict[str, int]) -> list[dict]:
    """The simulated reviewer's export for ``ids``: flip what the lab says is flipped, keep the rest."""
    return [{"id": i, "action": "flip" if truth[i] else "keep", "note": "lab truth", "label": labels[i]} for i in ids]


def flip_rate_after(data: Path, fixes: list[dict], work: Path) -> float:
    """Share of flipped labels in the pool once ``egt relabel`` applied ``fixes``."""
    from egt.curation.relabel import relabel_pool
    from egt.records import read_pairs

    work.mkdir(parents=True, exist_ok=True)
    path = work / "corrections.jsonl"
    path.write_text("".join(json.dumps(f) + "\n" for f in fixes))
    relabel_pool(data, path, work / "pool", link_images=False)
    pairs = read_pairs(work / "pool" / "relabelled.jsonl")
    return sum(bool(p.meta["flipped"]) for p in pairs) / len(pairs)


def _pct(x: dict | None) -> str:
    if x is None:
        return "—"
    ci = x.get("ci95")
    return f"{100 * x['mean']:+.1f}" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")


def trained(args) -> None:
    """``--experiment``: RL on each corrected pool (module doc)."""
    import dataclasses

    from egt.data.atomic import atomic_write_json, read_json
    from egt.errors import EgtError
    from egt.pipelines.experiment.config import ExperimentConfig
    from egt.pipelines.experiment.review import full_cell, review_dir, run_review_cell, summarise
    from egt.pipelines.experiment.steps import is_done, read_done

    root = Path(args.experiment)
    if not (root / "experiment.json").is_file():
        raise EgtError(f"--experiment {root}: no experiment.json here (an 'egt experiment' output folder)")
    saved = read_json(root / "experiment.json")
    names = {f.name for f in dataclasses.fields(ExperimentConfig)}
    cfg = ExperimentConfig(**{k: v for k, v in saved.items() if k in names and k != "output_dir"}, output_dir=str(root))
    results = []
    for seed in args.seeds:
        if full_cell(cfg, seed) is None:
            print(f"seed {seed}: table N's full cell (k = 0) has not finished; its Δ column stays empty")
        for ranking in args.rankings:
            for k in [0] if ranking == "all" else args.budgets:
                if args.report_only:
                    folder = review_dir(cfg, seed, ranking, k)
                    if not is_done(folder):
                        continue
                    results.append(read_done(folder))
                else:
                    results.append(run_review_cell(cfg, seed, ranking, k))
                r = results[-1]
                print(
                    f"seed {seed} {ranking:<13} k={r['k']:<5} flips found {r['flips_found']}/{r['flipped_before']}"
                    f"  accuracy {100 * r['final']['accuracy']:.1f}%  ({r['seconds']:.0f} s)",
                    flush=True,
                )
    summary = summarise(cfg, results)
    print(
        f"\nRL on the corrected pool (strong setting), Δ vs the uncorrected pool (k = 0, seeds {summary['k0_seeds']})"
    )
    print(
        f"{'ranking':<13}{'k':>6}  {'flips found':>12}  {'Δ overall (pts)':>24}  {'Δ region (pts)':>24}"
        "  per-seed Δ region"
    )
    for row in summary["rows"]:
        found = f"{sum(row['flips_found'])}/{sum(row['flipped_before'])}"
        per_seed = " ".join(f"{100 * d:+.1f}" for d in (row["delta_region"] or {}).get("per_seed", []))
        print(
            f"{row['ranking']:<13}{row['k']:>6}  {found:>12}  {_pct(row['delta_overall']):>24}  "
            f"{_pct(row['delta_region']):>24}  {per_seed}"
        )
    out = root / "review"
    atomic_write_json(out / "review_budget.json", {"seeds": args.seeds, **summary})
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("overall", "region")):
        for ranking in sorted({r["ranking"] for r in summary["rows"]} - {"all"}):
            rows = [r for r in summary["rows"] if r["ranking"] == ranking and r[f"delta_{metric}"]]
            if rows:
                ks = [0] + [r["k"] for r in rows]
                deltas = [r[f"delta_{metric}"] for r in rows]
                means = [0.0] + [100 * d["mean"] for d in deltas]
                cis = [(0.0, 0.0)] + [tuple(100 * c for c in (d["ci95"] or (d["mean"], d["mean"]))) for d in deltas]
                yerr = [[m - lo for m, (lo, _) in zip(means, cis)], [hi - m for m, (_, hi) in zip(means, cis)]]
                ax.errorbar(ks, means, yerr=yerr, fmt="k--" if ranking == "random" else "o-", capsize=3, label=ranking)
        for r in summary["rows"]:
            if r["ranking"] == "all" and r[f"delta_{metric}"]:
                ax.axhline(100 * r[f"delta_{metric}"]["mean"], color="grey", lw=0.8, label="every flip corrected")
        ax.set_xlabel("items reviewed (k)")
        ax.set_ylabel(f"Δ {metric} accuracy vs uncorrected (pts)")
        ax.legend(frameon=False, fontsize=8)
    fig.suptitle(
        "RL on a reviewed pool (simulated reviewer = lab truth): mean over seeds, seed-level 95% CI", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(out / "review_budget.png", dpi=110)
    print(f"wrote {out / 'review_budget.json'}, {out / 'review_budget.png'}")


def main() -> None:
    from egt.analysis.suspicion import SIGNALS, ranked_ids, suspicion_scores
    from egt.entropy.score_store import read_scores
    from egt.records import read_pairs

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scores", help="flip-rate mode: a scores file of the pool")
    ap.add_argument("--data", help="flip-rate mode: the pool the scores are of")
    ap.add_argument("--experiment", default="", help="training mode: a finished egt experiment folder (lab_noise)")
    ap.add_argument(
        "--rankings", nargs="+", default=["disagreement", "peak", "random", "all"], choices=["random", "all", *SIGNALS]
    )
    ap.add_argument(
        "--budgets", type=int, nargs="+", default=None, help="default 25 50 100 200; 100 250 with --experiment"
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="random orders (default 5) or experiment seeds")
    ap.add_argument("--output_dir", default="")
    ap.add_argument("--keep_pools", default="", help="keep every corrected pool under this folder")
    ap.add_argument("--report_only", action="store_true", help="--experiment: summarise the finished cells, train none")
    args = ap.parse_args()
    if args.experiment:
        args.budgets = args.budgets or [100, 250]
        args.seeds = args.seeds or [0, 1, 2]
        from egt.errors import EgtError

        try:
            return trained(args)
        except EgtError as e:  # one line, exit 2, as the egt commands do; nothing is written before the checks
            print(f"review_budget.py: error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    if not (args.scores and args.data):
        ap.error("give --scores and --data (flip rate), or --experiment (accuracy after RL)")
    args.budgets = args.budgets or [25, 50, 100, 200]
    args.seeds = args.seeds[0] if args.seeds else 5

    _, records = read_scores(args.scores)
    pairs = read_pairs(args.data)
    truth = {p.id: bool(p.meta["flipped"]) for p in pairs}
    labels = {p.id: p.preferred for p in pairs}
    scores = suspicion_scores(records)
    orders = {name: ranked_ids(records, scores[name]) for name in SIGNALS}
    ids = [r["id"] for r in records]
    budgets = [k for k in args.budgets if k <= len(ids)]
    base = sum(truth.values()) / len(truth)
    root = Path(args.keep_pools) if args.keep_pools else Path(tempfile.mkdtemp(prefix="review_budget_"))
    result: dict = {"n_items": len(ids), "n_flipped": sum(truth.values()), "flip_rate_before": base, "budgets": budgets}
    curves = {}
    for name, order in orders.items():
        curves[name] = [
            flip_rate_after(Path(args.data), corrections(order[:k], truth, labels), root / name / str(k))
            for k in budgets
        ]
    randoms = []
    for seed in range(args.seeds):
        order = ids[:]
        random.Random(seed).shuffle(order)
        randoms.append(
            [
                flip_rate_after(Path(args.data), corrections(order[:k], truth, labels), root / f"random{seed}" / str(k))
                for k in budgets
            ]
        )
    curves["random"] = [sum(run[j] for run in randoms) / len(randoms) for j in range(len(budgets))]
    result["flip_rate_after"] = curves

    print(f"{len(ids)} items, {result['n_flipped']} flipped ({100 * base:.1f}%); flip rate left (%) after reviewing k:")
    print(f"{'ranking':<14}" + "".join(f"{'k=' + str(k):>9}" for k in budgets))
    for name, curve in curves.items():
        print(f"{name:<14}" + "".join(f"{100 * v:>9.1f}" for v in curve))

    out = Path(args.output_dir) if args.output_dir else Path(args.scores).parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "review_budget.json").write_text(json.dumps(result, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, curve in curves.items():
        ax.plot(budgets, [100 * v for v in curve], "o-" if name != "random" else "k--", label=name)
    ax.set_xlabel("items reviewed (k)")
    ax.set_ylabel("flipped labels left in the pool (%)")
    ax.set_title("What a review budget buys (simulated reviewer = lab truth)", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "review_budget.png", dpi=110)
    print(f"wrote {out / 'review_budget.json'}, {out / 'review_budget.png'}")


if __name__ == "__main__":
    main()
