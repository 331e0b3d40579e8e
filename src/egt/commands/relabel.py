"""``egt relabel``: apply the review page's corrections (flip / drop / keep / unsure) to a pool."""

from __future__ import annotations

from dataclasses import dataclass, field

from egt.config import parse_config
from egt.report import console, print_table


@dataclass
class RelabelArgs:
    data: str = field(metadata={"help": "The pool the corrections are for: .jsonl, .parquet or a datasets folder."})
    corrections: str = field(
        metadata={"help": "corrections.jsonl as the review page exports it: {id, action, note, time, label} a line."}
    )
    output_dir: str = field(metadata={"help": "Output folder: relabelled.jsonl (+ images/), relabel.json."})
    images_dir: str = field(default="", metadata={"help": "Images root of --data; default: the dataset's folder."})
    link_images: bool = field(
        default=True,
        metadata={"help": "Hard-link (or copy) the images into --output_dir so relabelled.jsonl is self-contained."},
    )


def main(argv: list[str], prog: str) -> int:
    (args,) = parse_config([RelabelArgs], argv, prog, "Apply a reviewer's corrections to a pool.")
    from egt.curation.relabel import relabel_pool

    s = relabel_pool(
        args.data, args.corrections, args.output_dir, images_dir=args.images_dir or None, link_images=args.link_images
    )
    c = s["counts"]
    rows = [
        ["items in / written", f"{c['pool']} / {c['written']}"],
        ["flipped / dropped", f"{c['flip']} / {c['drop']}"],
        ["kept as labelled / unsure (recorded in meta.review)", f"{c['keep']} / {c['unsure']}"],
    ]
    print_table(f"egt relabel → {args.output_dir}", ["", ""], rows)
    console.print(f"wrote {args.output_dir}/{s['output']}, relabel.json")
    return 0
