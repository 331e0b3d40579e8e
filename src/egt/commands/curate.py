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
    selector: Literal["entropy", "random", "accuracy", "pass_rate"] = field(
        default="entropy",
        metadata={
            "help": "entropy (EGT: lowest first) | random | accuracy (highest rollout accuracy) — the paper's two "
            "baselines | pass_rate (items whose rollouts agree with the label in a share strictly inside "
            "--pass_band, the offline form of DAPO's dynamic sampling), ordered by entropy."
        },
    )
    pass_band: str = field(
        default="0,1",
        metadata={
            "help": "LOW,HIGH of the pass_rate selector: keep items whose pass rate is strictly inside (LOW, HIGH); "
            "0,1 = the learnable items (not every rollout right, not every one wrong; EasyR1 uses 0.01,0.99)."
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
    n: int = field(
        default=0, metadata={"help": "Keep this many items (EGT kept 2,500); pass_rate: all in the band when 0."}
    )
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
    from egt.curation.selectors import parse_pass_band

    band = parse_pass_band(args.pass_band)
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
        pass_band=band,
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
    if "pass_band" in s:
        rows.append(
            [
                f"pass rate inside / below / above ({band[0]:g}, {band[1]:g})",
                f"{c['inside_band']} / {c['below_band']} / {c['above_band']}",
            ]
        )
    if "lab" in s:
        rows.append(["flip rate kept / dropped", f"{s['lab']['flip_rate_kept']} / {s['lab']['flip_rate_dropped']}"])
        rows.append(["hard rate kept / dropped", f"{s['lab']['hard_rate_kept']} / {s['lab']['hard_rate_dropped']}"])
    print_table(f"egt curate → {args.output_dir}", ["", ""], rows)
    console.print(f"wrote {args.output_dir}/manifest.jsonl, {s['files']['selected']}, selection.json")
    for message in s.get("warnings", []):
        warn(message)
    return 0
