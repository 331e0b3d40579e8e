"""``egt math selfcompare build | train``: SkyMath's self-compare SFT data and the SFT on it (docs/methods.md §7)."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from egt.commands import in_folder
from egt.config import parse_config
from egt.errors import EgtError
from egt.report import console, print_table, progress

# --------------------------------------------------------------------------------------------
# egt math selfcompare build


@dataclass
class SelfCompareBuildArgs:
    data: str = field(
        default="", metadata={"help": "Questions with references (GSM8K format); attempts are sampled from --model."}
    )
    solutions: str = field(
        default="", metadata={"help": "Use this solutions file's solutions as the attempts (no sampling)."}
    )
    output_dir: str = field(
        default="runs/selfcompare",
        metadata={"help": "Output folder: sft.jsonl, items.jsonl, prompts.jsonl, summary.json."},
    )
    limit: int = field(default=0, metadata={"help": "Only the first N questions (0 = all)."})
    overwrite: bool = field(default=False, metadata={"help": "Start over instead of resuming a run in --output_dir."})


RESULT_INDEPENDENT = (
    "output_dir",
    "overwrite",
    "limit",
    "comparer_timeout",
    "comparer_retries",
    "comparer_backoff",
    "comparer_api_key_env",
)


def build(argv: list[str], prog: str) -> int:
    from egt.math.generate import SamplingArgs
    from egt.math.selfcompare import ComparerArgs
    from egt.models.args import ModelArgs

    args, model_args, sampling, comparer_args = parse_config(
        [SelfCompareBuildArgs, ModelArgs, SamplingArgs, ComparerArgs],
        argv,
        prog,
        "Self-compare SFT data: attempts, verification, comparison with the reference, verified corrections.",
    )
    from egt.math.data import read_items, read_solutions
    from egt.math.generate import sample_solutions
    from egt.math.journal import Journal, chunk_seed
    from egt.math.selfcompare import make_comparer, run_build, write_build_outputs
    from egt.models.load import load_from_args, load_model

    def load_other(path: str):
        return load_model(
            path, dtype=model_args.dtype, device=model_args.device, trust_remote_code=model_args.trust_remote_code
        )

    if args.solutions:
        sets = read_solutions(args.solutions, read_items(args.data) if args.data else None, args.limit)
        by_id = {s.item.id: s for s in sets}
        items = [s.item for s in sets]
        policy = None

        def attempts_for(c, chunk):
            return [(by_id[it.id].solutions, by_id[it.id].sources) for it in chunk]
    else:
        if not args.data:
            raise EgtError("--data is required (or --solutions to use existing solutions as the attempts)")
        sampling.check()
        items = read_items(args.data, args.limit)
        policy = load_from_args(model_args)

        def attempts_for(c, chunk):
            samples = sample_solutions(policy, [it.question for it in chunk], sampling, chunk_seed(sampling.seed, c))
            return [(s, None) for s in samples]

    comparer = make_comparer(comparer_args, policy, load_other, seed=sampling.seed)
    settings = {
        k: v
        for k, v in {
            **asdict(args),
            **asdict(sampling),
            **asdict(comparer_args),
            "model": None if args.solutions else model_args.model,
        }.items()
        if k not in RESULT_INDEPENDENT
    }
    journal = Journal(args.output_dir, settings, overwrite=args.overwrite)
    bar = progress(None, total=len(items), desc="self-compare", unit="q")
    bar.update(sum(it.id in journal for it in items))
    chunk = sampling.batch_size if not args.solutions else 16
    records = run_build(
        items,
        attempts_for,
        comparer,
        journal,
        chunk_size=chunk,
        compare_unanswered=comparer_args.compare_unanswered,
        on_chunk=bar.update,
    )
    bar.close()
    summary = write_build_outputs(args.output_dir, records, sampling.prompt_template, comparer_args.compare_unanswered)
    print_table(f"self-compare build → {args.output_dir}", ["outcome", "count"], [[k, v] for k, v in summary.items()])
    if summary["failed"]:
        console.print(
            f"{summary['failed']} comparisons failed (comparer unreachable); rerun the same command to retry them"
        )
    console.print(f"wrote {args.output_dir}/sft.jsonl, items.jsonl, prompts.jsonl, summary.json")
    return 0


# --------------------------------------------------------------------------------------------
# egt math selfcompare train


@dataclass
class SelfCompareTrainArgs:
    model: str = field(metadata={"help": "Checkpoint to fine-tune (any causal LM or VLM load_model takes)."})
    data: str = field(
        default="runs/selfcompare",
        metadata={"help": "SFT records ({messages}): the folder 'egt math selfcompare build' wrote, or its sft.jsonl."},
    )
    kinds: Literal["all", "comparison", "verified"] = field(
        default="all", metadata={"help": "Which records: all | comparison | verified."}
    )


def train(argv: list[str], prog: str) -> int:
    import torch  # for the CUDA check only (≈ 1.5 s); TRL's config is named, read from the help cache

    from egt.models.training import cpu_device_defaults

    args, config = parse_config(
        [SelfCompareTrainArgs, "trl:SFTConfig"],
        argv,
        prog,
        "SFT on self-compare records (loss on the assistant turn only).",
        # SFTConfig refuses its bf16 default on a CPU; a recipe or flags still override
        # activation_checkpointing: TRL's default (on), under its current name, so transformers does not
        # warn about the deprecated gradient_checkpointing before every run
        defaults={
            "output_dir": "runs/selfcompare/model",
            "activation_checkpointing": True,
            **({} if torch.cuda.is_available() else cpu_device_defaults()),
        },
    )
    from egt.data.atomic import atomic_path
    from egt.data.readers import iter_jsonl
    from egt.math.train import read_sft_records, sft_train
    from egt.models.load import load_model

    data = in_folder(args.data, "sft.jsonl")
    conversations = read_sft_records(data)
    if args.kinds != "all":
        kinds = [obj.get("kind") for _, obj in iter_jsonl(data)]
        conversations = [c for c, k in zip(conversations, kinds, strict=True) if k == args.kinds]
        if not conversations:
            raise EgtError(f"{data}: no records of kind {args.kinds!r}")
    loaded = load_model(
        args.model,
        device="cpu" if config.use_cpu else "auto",
        for_training=True,
        trust_remote_code=config.trust_remote_code,
    )
    final = Path(config.output_dir)
    work = final.with_name(final.name + ".checkpoints")
    config.output_dir = str(work)
    history = sft_train(loaded.model, loaded.processor, conversations, config)
    with atomic_path(final) as tmp:
        loaded.model.save_pretrained(tmp)
        loaded.processor.save_pretrained(tmp)
    if config.save_strategy == "no":
        shutil.rmtree(work, ignore_errors=True)
    losses = [h["loss"] for h in history if "loss" in h]
    rows = [["records", len(conversations)], ["steps", history[-1].get("step", "?") if history else 0]]
    if losses:
        rows += [["first logged loss", f"{losses[0]:.4f}"], ["last logged loss", f"{losses[-1]:.4f}"]]
    print_table(f"self-compare SFT → {final}", ["item", "value"], rows)
    return 0
