"""``egt analyze``: does entropy track accuracy and label noise? Stats, plots, suspicion rankings, review page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from egt.commands import in_folder
from egt.config import parse_config
from egt.report import console, print_table, warn


@dataclass
class AnalyzeArgs:
    scores: str = field(metadata={"help": "What 'egt score' wrote: its output folder or the scores.jsonl / .parquet."})
    output_dir: str = field(metadata={"help": "Output folder: analysis.json, PNG plots, review.html."})
    data: str = field(
        default="", metadata={"help": "The scored dataset (for the review page); default: the one the scores name."}
    )
    images_dir: str = field(
        default="", metadata={"help": "Images root; default: the one used for scoring / the dataset's folder."}
    )
    bins: int = field(default=5, metadata={"help": "Equal-count entropy quantile bins."})
    review_by: Literal["disagreement", "combined", "answer", "sentence", "mixed", "vote", "peak"] = field(
        default="disagreement",
        metadata={
            "help": "Signal that ranks the review page, most suspect first: disagreement (rollouts against the stored "
            "label, ties by the judge's confidence: the best measured for flipped labels), combined (with peak "
            "entropy), or an entropy (answer is EGT's choice)."
        },
    )
    review_top: int = field(
        default=250, metadata={"help": "Items embedded in the review page, 50 a page (0 = no page)."}
    )
    lam: float = field(
        default=0.5, metadata={"help": "λ of the mixed score when the file lacks it (docs/methods.md §2: 0.5)."}
    )
    skip_bad: bool = field(
        default=False,
        metadata={
            "help": "Show items whose image is missing or does not decode without it (counted) instead of stopping."
        },
    )


def _fmt(x, spec="+.3f"):
    return "–" if x is None else format(x, spec)


def print_suspicion(s: dict) -> None:
    """The ranking table: AUROC and precision@k for flipped labels per signal (lab only)."""
    if "auroc_flipped" not in s:
        return
    ks = s["k"]
    columns = ["ranking (review first)", "AUROC flipped"] + [
        f"P@{k}" + (" (= n flipped)" if k == s["n_flipped"] else "") for k in ks
    ]
    rows = [
        [name + (" (best)" if name == s["best"] else ""), _fmt(s["auroc_flipped"][name], ".3f")]
        + [_fmt(s["precision_at_k_flipped"][name][str(k)], ".2f") for k in ks]
        for name in s["signals"]
    ]
    print_table(f"suspected labels: {s['n_flipped']} of {s['n_items']} flipped", columns, rows)


def main(argv: list[str], prog: str) -> int:
    (args,) = parse_config([AnalyzeArgs], argv, prog, "Analyse entropy vs rollout accuracy and label noise.")
    from egt.analysis.analyze import analyze_scores

    a = analyze_scores(
        in_folder(args.scores, "scores.jsonl"),
        args.output_dir,
        data=args.data or None,
        images_dir=args.images_dir or None,
        n_bins=args.bins,
        review_by=args.review_by,
        review_top=args.review_top,
        lam=args.lam,
        skip_bad=args.skip_bad,
    )
    truths = a["ground_truth"]

    def detector(t: str, name: str) -> str:
        """AUROC, and its fraction of the lab's ceiling when there is one."""
        frac = a[f"ceiling_fraction_{t}"].get(name)
        return _fmt(a[f"auroc_{t}"][name], ".3f") + ("" if frac is None else f" ({frac:.0%})")

    columns = ["entropy", "Spearman ρ vs accuracy"] + [
        f"AUROC {t}" + (" (share of ceiling)" if a.get(f"auroc_{t}_ceiling") is not None else "") for t in truths
    ]
    rows = [[name, _fmt(a["spearman"][name])] + [detector(t, name) for t in truths] for name in a["spearman"]]
    if truths:
        rows.append(["(1 − rollout accuracy)", "–"] + [detector(t, "rollout_error") for t in truths])
    if any(a.get(f"auroc_{t}_ceiling") is not None for t in truths):
        rows.append(["(true ambiguity: ceiling)", "–"] + [_fmt(a[f"auroc_{t}_ceiling"], ".3f") for t in truths])
    print_table(f"egt analyze: {a['n_items']} items, mean rollout accuracy {a['mean_accuracy']:.3f}", columns, rows)
    print_suspicion(a["suspicion"])
    console.print("wrote " + ", ".join(a["files"].values()))
    for message in a["warnings"]:
        warn(message)
    return 0
