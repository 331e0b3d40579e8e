"""``egt score``: K rollouts per pool item with response entropies (EGT; docs/methods.md §2), resumable.

Writes ``--out FILE.jsonl`` (one line per item, data order) and ``FILE.jsonl.meta.json`` (model
fingerprint, data fingerprint, scoring config); progress lives in ``FILE.jsonl.partial`` until the
end. Killed at any point and rerun with the same command, it continues where it stopped.

Under ``accelerate launch`` (N processes or GPUs) items are sharded across ranks and rank 0 merges
into the same file (:mod:`egt.entropy.sharded`). ``--rescore FILE`` re-measures an existing file's
rollouts under ``--model`` without generating (:mod:`egt.entropy.rescore`). ``--backend vllm``
samples the rollouts with vLLM on a GPU and measures the entropies by the teacher-forced pass
(:mod:`egt.entropy.backends`; recipe: ``configs/score/qwen2_5_vl_7b_vllm.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from egt.config import parse_config
from egt.entropy.backends import VllmArgs
from egt.entropy.scoring import ScoringConfig
from egt.models.load import ModelArgs
from egt.report import console, print_table


@dataclass
class ScoreIO:
    data: str = field(default="", metadata={"help": "The pool to score: .jsonl, .parquet or a datasets folder."})
    out: str = field(default="", metadata={"help": "Scores file to write (.jsonl)."})
    images_dir: str = field(default="", metadata={"help": "Images root; default: the dataset's folder."})
    overwrite: bool = field(
        default=False, metadata={"help": "Replace output (or an unfinished run) written for another model/data/config."}
    )
    parquet: bool = field(default=False, metadata={"help": "Also write a .parquet copy of the scores."})
    allow_text_only: bool = field(
        default=False, metadata={"help": "Score items without images from text alone with a VLM judge."}
    )
    limit: int = field(default=0, metadata={"help": "Score only the first N items (0 = all)."})
    rescore: str = field(
        default="",
        metadata={
            "help": (
                "A finished scores file: re-measure its rollouts' entropies under --model by one teacher-forced forward "
                "(no generation) and write them to --out with the same verdicts; --data defaults to the file's dataset."
            )
        },
    )


def main(argv: list[str], prog: str) -> int:
    from egt.entropy.scoring import score_pool
    from egt.errors import EgtError

    io, cfg, model, vllm_args = parse_config(
        [ScoreIO, ScoringConfig, ModelArgs, VllmArgs],
        argv,
        prog,
        "Score a preference pool by the judge's response entropy (K rollouts per item).",
    )
    if not io.out:
        raise EgtError("--out is required")
    cfg.check()
    if io.rescore:
        from egt.entropy.rescore import rescore_pool

        summary = rescore_pool(
            model,
            io.rescore,
            io.out,
            data=io.data or None,
            images_dir=io.images_dir or None,
            batch_size=cfg.batch_size,
            overwrite=io.overwrite,
            parquet=io.parquet,
        )
    else:
        if not io.data:
            raise EgtError("--data is required")
        summary = score_pool(
            model,
            io.data,
            io.out,
            cfg,
            images_dir=io.images_dir or None,
            overwrite=io.overwrite,
            parquet=io.parquet,
            limit=io.limit,
            allow_text_only=io.allow_text_only,
            vllm_args=vllm_args,
        )
    if "mean_accuracy" not in summary and not summary.get("complete_already"):
        return 0  # a data-parallel rank other than 0: rank 0 merged and reports
    if summary.get("complete_already"):
        console.print(f"{io.out}: already complete for this model, data and config — nothing to do")
        return 0

    def fmt(x):
        return "–" if x is None else f"{x:.4f}"

    rows = [
        ["items (scored now / resumed)", f"{summary['n_items']} ({summary['scored_now']} / {summary['resumed']})"],
        ["mean rollout accuracy", fmt(summary["mean_accuracy"])],
        ["format rate", fmt(summary["mean_format_rate"])],
        [
            "mean answer / sentence / peak entropy",
            f"{fmt(summary['mean_answer_entropy'])} / "
            f"{fmt(summary['mean_sentence_entropy'])} / {fmt(summary['mean_peak_entropy'])}",
        ],
        ["items without answer entropy", summary["items_without_answer_entropy"]],
        ["items with format failures (ranked least certain)", summary["items_with_format_failures"]],
        ["wall time", f"{summary['wall_seconds']:.0f} s"],
    ]
    print_table(f"egt score → {io.out}", ["", ""], rows)
    return 0
