"""``egt analyze``: does entropy track accuracy and label noise? Stats, plots, review page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from egt.commands import in_folder
from egt.config import parse_config
from egt.report import console, print_table


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
    review_by: Literal["answer", "sentence", "mixed", "vote", "peak"] = field(
        default="answer", metadata={"help": "Entropy that ranks the review page."}
    )
    review_top: int = field(default=50, metadata={"help": "Items on the review page (0 = no page)."})
    lam: float = field(
        default=0.5, metadata={"help": "λ of the mixed score when the file lacks it (docs/methods.md §2: 0.5)."}
    )


def main(argv: list[str], prog: str) -> int:
    from egt.analysis.analyze import analyze_scores

    (args,) = parse_config([AnalyzeArgs], argv, prog, "Analyse entropy vs rollout accuracy and label noise.")
    a = analyze_scores(
        in_folder(args.scores, "scores.jsonl"),
        args.output_dir,
        data=args.data or None,
        images_dir=args.images_dir or None,
        n_bins=args.bins,
        review_by=args.review_by,
        review_top=args.review_top,
        lam=args.lam,
    )

    def fmt(x, spec="+.3f"):
        return "–" if x is None else format(x, spec)

    truths = a["ground_truth"]

    def detector(t: str, name: str) -> str:
        """AUROC, and its fraction of the lab's ceiling when there is one."""
        frac = a[f"ceiling_fraction_{t}"].get(name)
        return fmt(a[f"auroc_{t}"][name], ".3f") + ("" if frac is None else f" ({frac:.0%})")

    columns = ["entropy", "Spearman ρ vs accuracy"] + [
        f"AUROC {t}" + (" (share of ceiling)" if a.get(f"auroc_{t}_ceiling") is not None else "") for t in truths
    ]
    rows = [[name, fmt(a["spearman"][name])] + [detector(t, name) for t in truths] for name in a["spearman"]]
    if truths:
        rows.append(["(1 − rollout accuracy)", "–"] + [detector(t, "rollout_error") for t in truths])
    if any(a.get(f"auroc_{t}_ceiling") is not None for t in truths):
        rows.append(["(true ambiguity: ceiling)", "–"] + [fmt(a[f"auroc_{t}_ceiling"], ".3f") for t in truths])
    print_table(f"egt analyze: {a['n_items']} items, mean rollout accuracy {a['mean_accuracy']:.3f}", columns, rows)
    console.print("wrote " + ", ".join(a["files"].values()))
    return 0
