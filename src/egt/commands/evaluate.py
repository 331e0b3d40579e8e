"""``egt eval``: evaluate a judge on a pairs dataset or a reward benchmark.

Writes ``report.json``, ``report.md`` (for a benchmark: the papers' table layout) and
``predictions.jsonl`` (one line per item and order, re-aggregatable with ``--predictions``).
Everything that can be wrong with the input — an unknown benchmark, a malformed record, missing
images, a stored-order-only run on a benchmark — is refused before the judge runs, so a failed
run leaves no outputs. Before judging, a benchmark run prints what it read: items per category
against the full release's counts, the ids that repeat and the benchmark's rule for them, the
rows skipped (e.g. tie labels). Benchmark names are read as people type them
(``--benchmark VL-RewardBench``); docs/benchmarks.md describes each release and the generic mapping.
Under ``accelerate launch`` the requests' batches are dealt to the ranks and rank 0 writes the
single-process outputs (:mod:`egt.evaluation.sharded`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from egt.benchmarks import benchmark_names
from egt.commands import in_folder
from egt.config import parse_config
from egt.judge.args import JudgeArgs
from egt.models.args import VllmArgs
from egt.report import console


@dataclass
class EvalArgs:
    # ---- what to evaluate on
    data: str = field(metadata={"help": "Dataset or benchmark release: .jsonl, .json, .parquet, a folder."})
    benchmark: str = field(
        default="",
        metadata={
            "help": (
                f"One of: {benchmark_names()}. Names are read in any case, with '-' or '_' "
                "(VL-RewardBench, vl-rewardbench); empty = EGT's own pairs format."
            )
        },
    )
    fields: str = field(
        default="",
        metadata={
            "help": (
                "generic benchmark: OURS=THEIRS field mapping, e.g. 'question=instruction, "
                "responses=output_1+output_2, "
                "label=preference:1/2' or 'chosen=good, rejected=bad, images=img' (label encodings 0/1, 1/2, A/B, "
                "model_a/model_b, /tie...; docs/benchmarks.md)."
            )
        },
    )
    images_dir: str = field(default="", metadata={"help": "Images root; default: the dataset's folder."})
    skip_missing_images: bool = field(
        default=False,
        metadata={
            "help": (
                "Skip items whose images are missing (the report counts them, per category) instead of failing; "
                "missing images stop a judge that reads images, and any judge on EGT's own pairs format."
            )
        },
    )
    skip_bad: bool = field(
        default=False,
        metadata={
            "help": "Skip (and count) items whose image is missing or does not decode, instead of stopping; every "
            "image a judge reads is decoded before the first item is judged."
        },
    )
    limit: int = field(default=0, metadata={"help": "Evaluate only the first N items (0 = all)."})
    # ---- how to judge
    order: Literal["both", "random", "stored"] = field(
        default="both",
        metadata={
            "help": (
                "both (default: accuracy per order, mean, consistency) | random (seeded, one order per item) | stored."
            )
        },
    )
    allow_stored_order: bool = field(
        default=False,
        metadata={
            "help": (
                "Allow --order stored on a benchmark (its stored order puts the winner first: docs/methods.md §8)."
            )
        },
    )
    votes: int = field(
        default=1,
        metadata={
            "help": ("Voting@k for a generative judge: majority over k samples (R1-Reward); temperature 0 becomes 1.0.")
        },
    )
    # ---- how to score and where to write
    tie_policy: Literal["", "wrong", "half"] = field(
        default="",
        metadata={
            "help": ("How ties and parse failures score: wrong (0) | half (0.5); empty = the benchmark's own rule.")
        },
    )
    predictions: str = field(
        default="",
        metadata={
            "help": "Re-aggregate a saved predictions.jsonl (or the eval folder holding it) against --data, no judge."
        },
    )
    output_dir: str = field(
        default="runs/eval", metadata={"help": "Output folder for report.json, report.md, predictions.jsonl."}
    )


def main(argv: list[str], prog: str) -> int:
    args, judge_args, vllm_args = parse_config(
        [EvalArgs, JudgeArgs, VllmArgs], argv, prog, "Evaluate a judge on a pairs dataset or a reward benchmark."
    )
    from egt.benchmarks import PAIRS, get_benchmark
    from egt.benchmarks.common import release_lines, release_summary
    from egt.benchmarks.images import check_decodable, check_images, missing_images
    from egt.benchmarks.report import benchmark_markdown, notes
    from egt.benchmarks.run import evaluate_benchmark, read_predictions, reaggregate
    from egt.errors import EgtError
    from egt.evaluation.report import eval_markdown, write_eval_outputs
    from egt.judge.voting import with_votes
    from egt.records import default_images_root

    # ---- options, checked before anything is loaded
    bench = get_benchmark(args.benchmark, args.fields)
    if args.order == "stored" and bench is not PAIRS and not args.allow_stored_order:
        raise EgtError(
            f"--order stored: {bench.title} is never judged in the stored order alone (a judge that "
            "always picks one position would score the share of winners stored there); use --order "
            "both or random, or pass --allow_stored_order"
        )
    if args.votes < 1:
        raise EgtError(f"--votes: must be ≥ 1, got {args.votes}")
    if args.votes > 1 and judge_args.backend != "transformers":
        raise EgtError(f"--votes: voting@k runs on the transformers backend only, not --backend {judge_args.backend}")
    if args.images_dir and not Path(args.images_dir).is_dir():
        raise EgtError(f"--images_dir: {args.images_dir}: no such folder")
    tie_policy = args.tie_policy or bench.tie_policy
    images_root = Path(args.images_dir) if args.images_dir else default_images_root(args.data)

    # ---- data (what was read is printed before anything is judged)
    pairs = bench.load(args.data, images_root)
    release = None
    if bench is not PAIRS:
        release = release_summary(pairs, bench)
        for line in release_lines(release, bench.title):
            console.print(line, markup=False, soft_wrap=True)
    if args.limit:
        pairs = pairs[: args.limit]

    # ---- judge (or saved predictions), images checked first
    if args.predictions:
        saved = in_folder(args.predictions, "predictions.jsonl")
        predictions = read_predictions(saved)
        report = reaggregate(bench, pairs, predictions, tie_policy, source=saved)
    else:
        missing = missing_images(pairs, images_root)  # a path escaping its root fails here, before any model loads
        if bench is PAIRS:  # EGT's own data names only images it has: a missing one is a broken dataset
            pairs, images = check_images(
                pairs,
                images_root,
                reads_images=True,
                skip_missing=args.skip_missing_images or args.skip_bad,
                missing=missing,
                reason="EGT's pairs format needs every image it names",
            )
            pairs = check_decodable(pairs, images_root, images, skip_bad=args.skip_bad)
        from egt.evaluation.distributed import distributed_state
        from egt.pipelines.judges import make_judge  # torch: only once there is work to do

        dist = distributed_state()  # several processes under accelerate launch: egt.evaluation.sharded
        if dist is not None and judge_args.backend == "vllm":
            raise EgtError(
                "--backend vllm runs as one process (one engine; several GPUs through "
                "--vllm_tensor_parallel_size), not under accelerate launch"
            )
        if dist is not None and judge_args.device in ("auto", "cuda"):
            judge_args = dataclasses.replace(judge_args, device=str(dist.state.device))  # each rank its own GPU
        judge = with_votes(make_judge(judge_args, vllm_args), args.votes, seed=judge_args.seed)
        if bench is not PAIRS:  # a benchmark release often ships without its images: it depends on the judge
            pairs, images = check_images(
                pairs,
                images_root,
                reads_images=judge.reads_images,
                skip_missing=args.skip_missing_images or args.skip_bad,
                missing=missing,
            )
            if judge.reads_images:
                pairs = check_decodable(pairs, images_root, images, skip_bad=args.skip_bad)
        report, predictions = evaluate_benchmark(
            judge,
            bench,
            pairs,
            order=args.order,
            seed=judge_args.seed,
            images_root=images_root,
            batch_size=judge_args.batch_size,
            tie_policy=tie_policy,
        )
        report["images"] = images
        sampling = getattr(getattr(judge, "inner", judge), "sampling", None)  # a voting judge wraps one
        if sampling is not None:
            report["sampling"] = {**sampling, "temperature": judge.settings.temperature}
        if args.votes > 1:
            report.update(votes=args.votes, vote_temperature=judge.temperature)
    report["data"] = str(args.data)
    if release is not None:
        report["release"] = release

    # ---- outputs (under accelerate launch every rank holds the merged predictions; rank 0 writes)
    if int(os.environ.get("RANK", "0")) != 0 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 0
    if bench is PAIRS:
        markdown = eval_markdown(report) + "".join(f"\n- {line}" for line in notes(report))
    else:
        markdown = benchmark_markdown(report, bench)
    write_eval_outputs(Path(args.output_dir), report, predictions, markdown=markdown)
    console.print(markdown, markup=False, soft_wrap=True)
    console.print(f"wrote {args.output_dir}/report.json, report.md, predictions.jsonl")
    return 0
