"""``egt math eval | pairs | lab`` (docs/methods.md §7); ``egt math selfcompare`` is :mod:`egt.commands.selfcompare`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from egt.config import parse_config
from egt.errors import EgtError
from egt.report import console, print_table, progress

# --------------------------------------------------------------------------------------------
# egt math eval


@dataclass
class MathEvalArgs:
    data: str = field(default="", metadata={"help": "Questions with references (GSM8K format: question, answer)."})
    solutions: str = field(default="", metadata={"help": "Score this solutions file instead of generating (no model)."})
    output_dir: str = field(
        default="runs/math_eval", metadata={"help": "Output folder: items.jsonl, report.json (+ journal)."}
    )
    ks: list[int] = field(default_factory=lambda: [1], metadata={"help": "k values of pass@k (each ≤ n_samples)."})
    limit: int = field(default=0, metadata={"help": "Only the first N questions (0 = all)."})
    overwrite: bool = field(default=False, metadata={"help": "Start over instead of resuming a run in --output_dir."})


def evaluate(argv: list[str], prog: str) -> int:
    from egt.math.generate import SamplingArgs
    from egt.models.args import ModelArgs

    args, model_args, sampling = parse_config(
        [MathEvalArgs, ModelArgs, SamplingArgs],
        argv,
        prog,
        "Accuracy and pass@k of a model (or of existing solutions) on GSM8K-format data.",
    )
    from egt.data.atomic import atomic_write_json, atomic_write_jsonl
    from egt.math.data import read_items, read_solutions
    from egt.math.evaluate import evaluate_model, score_solution_sets, summarize
    from egt.math.journal import Journal

    out = Path(args.output_dir)
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
    atomic_write_jsonl(out / "items.jsonl", records)
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
    solutions: str = field(metadata={"help": "Solutions file (GSM8K example solutions or {id, question, solution})."})
    data: str = field(default="", metadata={"help": "Questions file with references, for solutions that lack one."})
    output_dir: str = field(default="runs/math_pairs", metadata={"help": "Output folder: pairs.jsonl."})
    labels: Literal["verifier", "flags"] = field(
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

    items = read_items(args.data) if args.data else None
    made, counts = math_pairs(
        read_solutions(args.solutions, items, args.limit),
        labels=args.labels,
        max_per_question=args.max_per_question,
        seed=args.seed,
    )
    if not made:
        raise EgtError(f"{args.solutions}: no question has both a right and a wrong solution; no pairs written")
    out = Path(args.output_dir) / "pairs.jsonl"
    write_pairs(made, out)
    print_table(f"math pairs → {out}", ["count", "value"], [[k, v] for k, v in counts.items()])
    return 0


# --------------------------------------------------------------------------------------------
# egt math lab


@dataclass
class MathLabMakeArgs:
    output_dir: str = field(
        default="runs/math_lab", metadata={"help": "Folder for train.jsonl, test.jsonl and model/."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the problems and the model initialisation."})


def lab(argv: list[str], prog: str) -> int:
    args, cfg, model_cfg = parse_config(  # named: --help reads them from the help cache (no torch import)
        [MathLabMakeArgs, "egt.math.lab:MathLabConfig", "egt.math.lab:TinyTextConfig"],
        argv,
        prog,
        "Arithmetic word problems and a tiny text model trained on them by SFT.",
    )
    from egt.math.lab import make_lab

    summary = make_lab(cfg, model_cfg, args.seed, args.output_dir)
    print_table(f"math lab → {args.output_dir}", ["item", "value"], [[k, v] for k, v in summary.items()])
    return 0
