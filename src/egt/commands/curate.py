"""``egt curate``: keep the lowest-entropy items (EGT) or a baseline selection; write the manifest."""

from __future__ import annotations

from dataclasses import dataclass, field

from egt.config import parse_config
from egt.report import console, print_table


@dataclass
class CurateArgs:
    scores: str = field(default="", metadata={"help": "Scores file written by 'egt score'."})
    data: str = field(default="", metadata={"help": "The scored pool (the records to select from)."})
    out: str = field(default="", metadata={"help": "Output folder: manifest.jsonl, selected.jsonl, selection.json."})
    selector: str = field(
        default="entropy",
        metadata={
            "help": "entropy (EGT: lowest first) | random | accuracy (highest rollout accuracy) — the last two are the paper's baselines."
        },
    )
    by: str = field(
        default="answer",
        metadata={
            "help": "Entropy to select (entropy selector) and to order the curriculum by: answer | sentence | mixed | vote | peak (EGT: answer was best). Items with format failures always rank after those without."
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
        metadata={"help": "Hard-link (or copy) the kept items' images into --out so selected.jsonl is self-contained."},
    )


def main(argv: list[str], prog: str) -> int:
    from egt.curation.manifest import curate_pool
    from egt.errors import EgtError

    (args,) = parse_config([CurateArgs], argv, prog, "Select a training subset from a scored pool.")
    for name in ("scores", "data", "out"):
        if not getattr(args, name):
            raise EgtError(f"--{name} is required")
    s = curate_pool(
        args.scores,
        args.data,
        args.out,
        selector=args.selector,
        by=args.by,
        n=args.n,
        fraction=args.fraction,
        seed=args.seed,
        lam=args.lam,
        images_dir=args.images_dir or None,
        link_images=args.link_images,
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
    print_table(f"egt curate → {args.out}", ["", ""], rows)
    console.print(f"wrote {args.out}/manifest.jsonl, {s['files']['selected']}, selection.json")
    return 0
