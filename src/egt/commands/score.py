"""``egt score``: K rollouts per pool item with response entropies (EGT; docs/methods.md §2), resumable.

Writes ``<output_dir>/scores.jsonl`` (one line per item, data order) and ``scores.jsonl.meta.json``
(model fingerprint, data fingerprint, scoring config); progress lives in ``scores.jsonl.partial``
until the end. Killed at any point and rerun with the same command, it continues where it stopped.

Under ``accelerate launch`` (N processes or GPUs) items are sharded across ranks and rank 0 merges
into the same file (:mod:`egt.pipelines.scoring.sharded`). ``--rescore`` re-measures an existing run's
rollouts under ``--model`` without generating (:mod:`egt.pipelines.scoring.rescore`). ``--backend vllm``
samples the rollouts with vLLM on a GPU and measures the entropies by the teacher-forced pass
(:mod:`egt.entropy.backends`; recipe: ``configs/score/qwen2_5_vl_7b_vllm.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from egt.commands import in_folder
from egt.config import parse_config
from egt.models.args import ModelArgs, VllmArgs
from egt.pipelines.scoring.config import ScoringConfig
from egt.report import console, print_table, warn

SCORES_FILE = "scores.jsonl"  # what analyze / curate read from --scores DIR


@dataclass
class ScoreIO:
    output_dir: str = field(metadata={"help": "Output folder: scores.jsonl (+ .meta.json; .parquet with --parquet)."})
    data: str = field(default="", metadata={"help": "The pool to score: .jsonl, .parquet or a datasets folder."})
    images_dir: str = field(default="", metadata={"help": "Images root; default: the dataset's folder."})
    overwrite: bool = field(
        default=False, metadata={"help": "Replace output (or an unfinished run) written for another model/data/config."}
    )
    parquet: bool = field(default=False, metadata={"help": "Also write a .parquet copy of the scores."})
    allow_text_only: bool = field(
        default=False, metadata={"help": "Score items without images from text alone with a VLM judge."}
    )
    limit: int = field(default=0, metadata={"help": "Score only the first N items (0 = all)."})
    skip_bad: bool = field(
        default=False,
        metadata={
            "help": "Leave out (and count) items whose image is missing or does not decode, instead of stopping. "
            "Every image is decoded before the first item is scored."
        },
    )
    rescore: str = field(
        default="",
        metadata={
            "help": (
                "A finished scores file (or the folder holding it): re-measure its rollouts' entropies under --model "
                "by one teacher-forced forward (no generation), same verdicts; --data defaults to the file's dataset."
            )
        },
    )


def main(argv: list[str], prog: str) -> int:
    io, cfg, model, vllm_args = parse_config(
        [ScoreIO, ScoringConfig, ModelArgs, VllmArgs],
        argv,
        prog,
        "Score a preference pool by the judge's response entropy (K rollouts per item).",
    )
    from egt.errors import EgtError
    from egt.pipelines.scoring.run import score_pool  # torch: only after the options parsed

    cfg.check()
    out = Path(io.output_dir) / SCORES_FILE
    if io.rescore:
        from egt.pipelines.scoring.rescore import rescore_pool

        summary = rescore_pool(
            model,
            in_folder(io.rescore, SCORES_FILE),
            out,
            data=io.data or None,
            images_dir=io.images_dir or None,
            batch_size=cfg.batch_size,
            overwrite=io.overwrite,
            parquet=io.parquet,
        )
    else:
        if not io.data:
            raise EgtError("--data is required (or --rescore to re-measure a finished run)")
        summary = score_pool(
            model,
            io.data,
            out,
            cfg,
            images_dir=io.images_dir or None,
            overwrite=io.overwrite,
            parquet=io.parquet,
            limit=io.limit,
            allow_text_only=io.allow_text_only,
            skip_bad=io.skip_bad,
            vllm_args=vllm_args,
        )
    if "mean_accuracy" not in summary and not summary.get("complete_already"):
        return 0  # a data-parallel rank other than 0: rank 0 merged and reports
    if summary.get("complete_already"):
        console.print(f"{out}: already complete for this model, data and config — nothing to do")
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
        ["items skipped for a bad image (--skip_bad)", summary.get("skipped_bad", 0)],
        ["wall time", f"{summary['wall_seconds']:.0f} s"],
    ]
    print_table(f"egt score → {out}", ["", ""], rows)
    from egt.entropy.summary import missing_signal_warning

    message = missing_signal_warning(
        summary["items_without_answer_entropy"],
        summary["n_items"],
        "entropy",
        "no parsable verdict (every rollout failed the judge format)",
    )
    if message:
        warn(message + "; 'egt curate' refuses such scores unless --allow_missing_signal true")
    return 0
