"""``egt curate``: keep the lowest-entropy items (EGT) or a baseline selection; write the manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from egt.commands import in_folder
from egt.config import parse_config
from egt.report import console, print_table, warn


@dataclass
class CurateArgs:
    scores: str = field(metadata={"help": "What 'egt score' wrote: its output folder or the scores.jsonl."})
    data: str = field(metadata={"help": "The scored pool (the records to select from)."})
    output_dir: str = field(metadata={"help": "Output folder: manifest.jsonl, selected.jsonl, selection.json."})
    selector: Literal["entropy", "random", "accuracy"] = field(
        default="entropy",
        metadata={
            "help": "entropy (EGT: lowest first) | random | accuracy (highest rollout accuracy) — the last two are "
            "the paper's baselines."
        },
    )
    by: Literal["answer", "sentence", "mixed", "vote", "peak"] = field(
        default="peak",
        metadata={
            "help": "Entropy to select (entropy selector) and to order the curriculum by: peak, the entropy our lab "
            "results support (docs/results/lab_full); answer is EGT's choice. Items with format failures always "
            "rank after those without."
        },
    )
    n: int = field(default=0, metadata={"help": "Keep this many items (EGT kept 2,500)."})
    fraction: float = field(default=0.0, metadata={"help": "Or keep this fraction of the pool, in (0, 1]."})
    seed: int = field(
        default=0, metadata={"help": "Seed of the random selector and of the accuracy selector's tie-break."}
    )
    lam: float = field(default=0.5, metadata={"help": "λ of the mixed score (docs/methods.md §2: 0.5)."})
    images_dir: str = field(default="", metadata={"help": "Images root of --data; default: the dataset's folder."})
    link_images: bool = field(
        default=True,
        metadata={
            "help": "Hard-link (or copy) the kept items' images into --output_dir so selected.jsonl is self-contained."
        },
    )
    allow_missing_signal: bool = field(
        default=False,
        metadata={
            "help": "Select by entropy even when most items have none (e.g. an untrained judge): refused otherwise."
        },
    )


def main(argv: list[str], prog: str) -> int:
    (args,) = parse_config([CurateArgs], argv, prog, "Select a training subset from a scored pool.")
    from egt.curation.manifest import curate_pool

    s = curate_pool(
        in_folder(args.scores, "scores.jsonl"),
        args.data,
        args.output_dir,
        selector=args.selector,
        by=args.by,
        n=args.n,
        fraction=args.fraction,
        seed=args.seed,
        lam=args.lam,
        images_dir=args.images_dir or None,
        link_images=args.link_images,
        allow_missing_signal=args.allow_missing_signal,
    )
    c = s["counts"]
    rows = [
        ["selector", s["selector"]],
        ["kept / pool", f"{c['kept']} / {c['pool']}"],
        [
            "mean rollout accuracy kept / dropped",
            f"{s['mean_rollout_accuracy']['kept']} / {s['mean_rollout_accuracy']['dropped']}",
        ],
    ]
    if "lab" in s:
        rows.append(["flip rate kept / dropped", f"{s['lab']['flip_rate_kept']} / {s['lab']['flip_rate_dropped']}"])
        rows.append(["hard rate kept / dropped", f"{s['lab']['hard_rate_kept']} / {s['lab']['hard_rate_dropped']}"])
    print_table(f"egt curate → {args.output_dir}", ["", ""], rows)
    console.print(f"wrote {args.output_dir}/manifest.jsonl, {s['files']['selected']}, selection.json")
    for message in s.get("warnings", []):
        warn(message)
    return 0
