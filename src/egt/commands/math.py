"""``egt math eval | pairs | lab`` and ``egt selfcompare build | train`` (docs/methods.md §7)."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from egt.config import parse_config
from egt.errors import EgtError
from egt.report import console, print_table, progress

# --------------------------------------------------------------------------------------------
# egt math eval


@dataclass
class MathEvalArgs:
    data: str = field(default="", metadata={"help": "Questions with references (GSM8K format: question, answer)."})
    solutions: str = field(default="", metadata={"help": "Score this solutions file instead of generating (no model)."})
    out: str = field(
        default="runs/math_eval", metadata={"help": "Output folder: items.jsonl, report.json (+ journal)."}
    )
    ks: list[int] = field(default_factory=lambda: [1], metadata={"help": "k values of pass@k (each ≤ n_samples)."})
    limit: int = field(default=0, metadata={"help": "Only the first N questions (0 = all)."})
    overwrite: bool = field(default=False, metadata={"help": "Start over instead of resuming a run in --out."})


def evaluate(argv: list[str], prog: str) -> int:
    from egt.math.generate import SamplingArgs
    from egt.models.load import ModelArgs

    args, model_args, sampling = parse_config(
        [MathEvalArgs, ModelArgs, SamplingArgs],
        argv,
        prog,
        "Accuracy and pass@k of a model (or of existing solutions) on GSM8K-format data.",
    )
    from egt.io import atomic_write_json
    from egt.math.data import read_items, read_solutions
    from egt.math.evaluate import evaluate_model, score_solution_sets, summarize
    from egt.math.journal import Journal, write_jsonl_atomic

    out = Path(args.out)
    if args.solutions:
        items = read_items(args.data) if args.data else None
        records = score_solution_sets(read_solutions(args.solutions, items, args.limit))
    else:
        if not args.data:
            raise EgtError("--data is required (or --solutions to score existing solutions)")
        sampling.check()
        items = read_items(args.data, args.limit)
        from egt.models.load import load_from_args

        loaded = load_from_args(model_args)
        settings = {"data": args.data, "model": model_args.model, **asdict(sampling)}
        journal = Journal(out, settings, overwrite=args.overwrite)
        bar = progress(None, total=len(items), desc="solving", unit="q")
        bar.update(sum(it.id in journal for it in items))
        records = evaluate_model(loaded, items, sampling, journal, on_chunk=bar.update)
        bar.close()
    report = summarize(records, args.ks)
    report.update(
        data=args.data or None, solutions=args.solutions or None, model=None if args.solutions else model_args.model
    )
    write_jsonl_atomic(out / "items.jsonl", records)
    atomic_write_json(out / "report.json", report)
    rows = [
        ["questions", report["questions"]],
        ["solutions", report["samples"]],
        ["accuracy", f"{report['accuracy']:.2%}"],
        ["unanswered", f"{report['unanswered']} ({report['unanswered_rate']:.2%})"],
    ]
    rows += [[f"pass@{k}", f"{v:.2%}"] for k, v in report["pass_at_k"].items()]
    print_table(f"math eval → {out}", ["metric", "value"], rows)
    if "by_source" in report:
        print_table(
            "by source",
            ["source", "solutions", "accuracy", "unanswered"],
            [[s, v["n"], f"{v['accuracy']:.2%}", v["unanswered"]] for s, v in report["by_source"].items()],
        )
    if "flag_agreement" in report:
        fa = report["flag_agreement"]
        console.print(
            f"agreement with the file's is_correct flags: {fa['agree']}/{fa['flagged']} = {fa['rate']:.2%} "
            f"({fa['disagreements']} disagreements)"
        )
    console.print(f"wrote {out}/items.jsonl and report.json")
    return 0


# --------------------------------------------------------------------------------------------
# egt math pairs


@dataclass
class MathPairsArgs:
    solutions: str = field(
        default="", metadata={"help": "Solutions file (GSM8K example solutions or {id, question, solution})."}
    )
    data: str = field(default="", metadata={"help": "Questions file with references, for solutions that lack one."})
    out: str = field(
        default="runs/math_pairs/pairs.jsonl", metadata={"help": "Pairs file: .jsonl, .parquet or a folder."}
    )
    labels: str = field(
        default="verifier", metadata={"help": "verifier (our verdicts) | flags (the file's is_correct)."}
    )
    max_per_question: int = field(
        default=0, metadata={"help": "Cap on pairs per question (0 = every right×wrong combination)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the coin that decides which response is shown first."})
    limit: int = field(default=0, metadata={"help": "Only the first N questions (0 = all)."})


def pairs(argv: list[str], prog: str) -> int:
    (args,) = parse_config([MathPairsArgs], argv, prog, "Right-vs-wrong preference pairs from math solutions.")
    from egt.math.data import read_items, read_solutions
    from egt.math.pairs import math_pairs
    from egt.records import write_pairs

    if not args.solutions:
        raise EgtError("--solutions is required")
    items = read_items(args.data) if args.data else None
    made, counts = math_pairs(
        read_solutions(args.solutions, items, args.limit),
        labels=args.labels,
        max_per_question=args.max_per_question,
        seed=args.seed,
    )
    if not made:
        raise EgtError(f"{args.solutions}: no question has both a right and a wrong solution; no pairs written")
    write_pairs(made, args.out)
    print_table(f"math pairs → {args.out}", ["count", "value"], [[k, v] for k, v in counts.items()])
    return 0


# --------------------------------------------------------------------------------------------
# egt math lab


@dataclass
class MathLabMakeArgs:
    out: str = field(default="runs/math_lab", metadata={"help": "Folder for train.jsonl, test.jsonl and model/."})
    seed: int = field(default=0, metadata={"help": "Seed of the problems and the model initialisation."})


def lab(argv: list[str], prog: str) -> int:
    from egt.math.lab import MathLabConfig, TinyTextConfig, make_lab

    args, cfg, model_cfg = parse_config(
        [MathLabMakeArgs, MathLabConfig, TinyTextConfig],
        argv,
        prog,
        "Arithmetic word problems and a tiny text model trained on them by SFT.",
    )
    summary = make_lab(cfg, model_cfg, args.seed, args.out)
    print_table(f"math lab → {args.out}", ["item", "value"], [[k, v] for k, v in summary.items()])
    return 0


# --------------------------------------------------------------------------------------------
# egt selfcompare build


@dataclass
class SelfCompareBuildArgs:
    data: str = field(
        default="", metadata={"help": "Questions with references (GSM8K format); attempts are sampled from --model."}
    )
    solutions: str = field(
        default="", metadata={"help": "Use this solutions file's solutions as the attempts (no sampling)."}
    )
    out: str = field(
        default="runs/selfcompare",
        metadata={"help": "Output folder: sft.jsonl, items.jsonl, prompts.jsonl, summary.json."},
    )
    limit: int = field(default=0, metadata={"help": "Only the first N questions (0 = all)."})
    overwrite: bool = field(default=False, metadata={"help": "Start over instead of resuming a run in --out."})


RESULT_INDEPENDENT = (
    "out",
    "overwrite",
    "limit",
    "comparer_timeout",
    "comparer_retries",
    "comparer_backoff",
    "comparer_api_key_env",
)


def selfcompare_build(argv: list[str], prog: str) -> int:
    from egt.math.generate import SamplingArgs
    from egt.math.selfcompare import ComparerArgs
    from egt.models.load import ModelArgs

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
    journal = Journal(args.out, settings, overwrite=args.overwrite)
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
    summary = write_build_outputs(args.out, records, sampling.prompt_template, comparer_args.compare_unanswered)
    print_table(f"self-compare build → {args.out}", ["outcome", "count"], [[k, v] for k, v in summary.items()])
    if summary["failed"]:
        console.print(
            f"{summary['failed']} comparisons failed (comparer unreachable); rerun the same command to retry them"
        )
    console.print(f"wrote {args.out}/sft.jsonl, items.jsonl, prompts.jsonl, summary.json")
    return 0


# --------------------------------------------------------------------------------------------
# egt selfcompare train


@dataclass
class SelfCompareTrainArgs:
    data: str = field(
        default="runs/selfcompare/sft.jsonl", metadata={"help": "SFT records ({messages}) from selfcompare build."}
    )
    model: str = field(
        default="", metadata={"help": "Checkpoint to fine-tune (any causal LM or VLM load_model takes)."}
    )
    kinds: str = field(default="all", metadata={"help": "Which records: all | comparison | verified."})


def selfcompare_train(argv: list[str], prog: str) -> int:
    import torch
    from trl import SFTConfig

    if not torch.cuda.is_available():  # SFTConfig refuses its bf16 default on a CPU; later flags still override
        argv = ["--use_cpu", "true", "--bf16", "false"] + list(argv)
    args, config = parse_config(
        [SelfCompareTrainArgs, SFTConfig], argv, prog, "SFT on self-compare records (loss on the assistant turn only)."
    )
    from egt.io import atomic_path
    from egt.math.train import read_sft_records, sft_train
    from egt.models.load import load_model
    from egt.records import iter_jsonl

    if not args.model:
        raise EgtError("--model is required")
    if args.kinds not in ("all", "comparison", "verified"):
        raise EgtError(f"field 'kinds': unknown {args.kinds!r} (all, comparison, verified)")
    conversations = read_sft_records(args.data)
    if args.kinds != "all":
        kinds = [obj.get("kind") for _, obj in iter_jsonl(args.data)]
        conversations = [c for c, k in zip(conversations, kinds, strict=True) if k == args.kinds]
        if not conversations:
            raise EgtError(f"{args.data}: no records of kind {args.kinds!r}")
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
