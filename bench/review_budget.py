"""What a review budget buys (issue 25 item 4, first half): label noise left after a simulated reviewer
corrects the top k items of each suspicion ranking, against the same budget spent on random items.

The reviewer is the lab's truth: for each of the first k items of a ranking it flips the label when
the lab says it is flipped, else keeps it. Its decisions are written as a ``corrections.jsonl``
exactly as the review page exports them and applied with ``egt relabel``
(:func:`egt.curation.relabel.relabel_pool`), so each corrected pool is the one a training run would
read; the flip rate left in it is read back from the relabelled records (relabel recomputes the
lab's ``flipped`` against the new label). Random: the mean over ``--seeds`` seeded orders.

Not measured here (the second half of item 4): accuracy of an SFT or RL judge trained on each
corrected pool. ``--keep_pools DIR`` keeps the pools for that.

    .venv/bin/python bench/review_budget.py --scores runs/demo/seed0/stats/rq1/scores.jsonl \\
        --data runs/demo/seed0/lab/rl_pool.jsonl [--budgets 25 50 100 200] [--seeds 5]

Prints one row per ranking (flip rate left, in %, per budget) and writes ``review_budget.json`` and
``review_budget.png`` beside the scores (or into ``--output_dir``).
"""

from __future__ import annotations

import argparse
import json
import random
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


def main() -> None:
    from egt.analysis.suspicion import SIGNALS, ranked_ids, suspicion_scores
    from egt.entropy.score_store import read_scores
    from egt.records import read_pairs

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scores", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100, 200])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--output_dir", default="")
    ap.add_argument("--keep_pools", default="", help="keep every corrected pool under this folder")
    args = ap.parse_args()

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
