"""``egt analyze``: does entropy track accuracy and label noise? Stats, plots, suspicion rankings, review page;
or an RL run's log (``--run``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from egt.commands import in_folder
from egt.config import parse_config
from egt.errors import EgtError
from egt.report import console, print_table, warn


@dataclass
class AnalyzeArgs:
    scores: str = field(
        default="", metadata={"help": "What 'egt score' wrote: its output folder or the scores.jsonl / .parquet."}
    )
    output_dir: str = field(
        default="", metadata={"help": "Output folder: analysis.json, PNG plots, review.html (with --run: rl_log.png)."}
    )
    run: str = field(
        default="",
        metadata={
            "help": "Instead of --scores: an 'egt train rl' output folder (or its rl_summary.json); plots its per-step "
            "log (zero-std groups, reward, accuracy, format failures, rollout entropy, curriculum) to rl_log.png "
            "there, or in --output_dir."
        },
    )
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

    if args.run:
        return _plot_run(args)
    if not args.scores or not args.output_dir:
        raise EgtError("give --scores and --output_dir (a scored pool), or --run (an RL run)")
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


def _plot_run(args: AnalyzeArgs) -> int:
    import json
    from pathlib import Path

    from egt.analysis.plots import plot_rl_log

    path = Path(in_folder(args.run, "rl_summary.json"))
    if not path.is_file():
        raise EgtError(f"--run {args.run}: no rl_summary.json (an 'egt train rl' output folder)")
    summary = json.loads(path.read_text())
    if not summary.get("log"):
        raise EgtError(f"{path}: no per-step 'log' (written by egt train rl since issue 24)")
    out = Path(args.output_dir) if args.output_dir else path.parent
    out.mkdir(parents=True, exist_ok=True)
    png = plot_rl_log(summary, out / "rl_log.png")
    columns = {  # log key → short column name
        "step": "step",
        "frac_reward_zero_std": "0-std",
        "reward": "reward",
        "accuracy": "acc",
        "format_failure_rate": "fmt fail",
        "rollout_entropy": "entropy",
        "curriculum_epoch": "pass",
        "curriculum_position": "pos",
        "groups_kept": "kept",
        "groups_generated": "gen",
        "groups_dropped": "drop",
        "generation_batches": "batches",
    }
    keys = [k for k in columns if k in summary["log"][0]]
    rows = [["–" if e.get(k) is None else f"{e[k]:.3g}" for k in keys] for e in summary["log"]]
    print_table(f"RL log: {len(rows)} logged steps", [columns[k] for k in keys], rows)
    console.print(f"wrote {png}")
    return 0
