"""``egt demo``: the whole EGT loop on a laptop CPU, on the shapes lab.

1. make the lab (synthetic images, questions, responses, teacher traces, label noise);
2. build a tiny Qwen2.5-VL judge from scratch and SFT it on the traces (fidelity filter on);
3. evaluate it on the clean test split in both presentation orders, beside the baselines;
4. score the noisy ``rl_pool`` by the judge's response entropy (K rollouts), check that entropy
   tracks rollout accuracy, label noise and difficulty (EGT's RQ1), and curate the low-entropy half.

Everything lands under ``runs/demo/`` with ``report.json`` summarising the run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from egt.io import atomic_write_json


@dataclass
class DemoArgs:
    out: str = field(default="runs/demo", metadata={"help": "Output folder."})
    seed: int = field(default=0, metadata={"help": "Seed for the lab, the model and training."})
    n_sft: int = field(default=5000, metadata={"help": "Lab items with teacher traces."})
    n_rl_pool: int = field(default=2000, metadata={"help": "Lab items in the noisy RL pool."})
    n_test: int = field(default=500, metadata={"help": "Clean test items."})
    epochs: float = field(default=4.0, metadata={"help": "SFT epochs over the filtered traces (the judge starts reading the image after ~300 steps)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "SFT learning rate (tiny model from scratch)."})
    batch_size: int = field(default=32, metadata={"help": "SFT batch size."})
    eval_batch_size: int = field(default=100, metadata={"help": "Judgements per generate call."})
    rollouts: int = field(default=4, metadata={"help": "Rollouts per pool item for entropy scoring (EGT: K = 4)."})
    score: bool = field(default=True, metadata={"help": "Run step 4 (entropy scoring, analysis, curation)."})


def run_demo(args: DemoArgs) -> dict:
    from trl import SFTConfig

    from egt.evaluation.report import write_eval_outputs
    from egt.evaluation.runner import evaluate
    from egt.judge.base import make_baseline
    from egt.judge.factory import JudgeArgs, make_judge
    from egt.lab import LabConfig, make_lab
    from egt.records import read_pairs
    from egt.report import console
    from egt.train.sft import JudgeSFTArgs, cpu_sft_defaults, train_judge_sft

    start = time.perf_counter()
    out = Path(args.out)
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)

    steps = 4 if args.score else 3
    t0 = time.perf_counter()
    console.rule(f"[bold]1/{steps}  shapes lab")
    lab_dir = out / "lab"
    lab = make_lab(LabConfig(out=str(lab_dir), seed=args.seed, n_sft=args.n_sft, n_rl_pool=args.n_rl_pool, n_test=args.n_test))
    lap("lab", t0)

    t0 = time.perf_counter()
    console.rule(f"[bold]2/{steps}  SFT of the tiny judge on teacher traces")
    sft_cfg = SFTConfig(**{**cpu_sft_defaults(), "output_dir": str(out / "judge"), "seed": args.seed,
                           "num_train_epochs": args.epochs, "learning_rate": args.learning_rate,
                           "per_device_train_batch_size": args.batch_size, "logging_steps": 25})
    sft = train_judge_sft(JudgeSFTArgs(data=str(lab_dir / "sft.jsonl")), sft_cfg)
    lap("sft", t0)

    t0 = time.perf_counter()
    console.rule(f"[bold]3/{steps}  evaluation on the clean test split (both orders)")
    test = read_pairs(lab_dir / "test.jsonl")
    judge = make_judge(JudgeArgs(judge=str(out / "judge"), batch_size=args.eval_batch_size, device="cpu"))
    report, predictions = evaluate(judge, test, order="both", seed=args.seed, images_root=lab_dir,
                                   batch_size=args.eval_batch_size)
    report["data"] = str(lab_dir / "test.jsonl")
    write_eval_outputs(out / "eval", report, predictions)
    baselines = {}
    for name in ("random", "first", "longer"):
        b_report, _ = evaluate(make_baseline(name, args.seed), test, order="both", seed=args.seed)
        baselines[name] = b_report["metrics"]["accuracy"]
    lap("eval", t0)

    rq1 = None
    if args.score:
        from egt.analysis.rq1 import run_rq1

        t0 = time.perf_counter()
        console.rule("[bold]4/4  entropy scoring of the noisy pool, analysis, curation")
        rq1 = run_rq1(out / "judge", lab_dir / "rl_pool.jsonl", lab_dir, out / "rq1", rollouts=args.rollouts,
                      seed=args.seed, batch_size=args.eval_batch_size)
        lap("score", t0)

    summary = {
        "test_accuracy": report["metrics"]["accuracy"],
        "test_accuracy_by_category": {c: v["accuracy"] for c, v in report["categories"].items()},
        "format_failure_rate": report["metrics"]["format_failure_rate"],
        "order_consistency": report["metrics"].get("order_consistency"),
        "baselines": baselines,
        **({"rq1": rq1} if rq1 is not None else {}),
        "sft": sft,
        "lab": lab["splits"],
        "timings_seconds": timings,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "config": asdict(args),
    }
    atomic_write_json(out / "report.json", summary)
    return summary


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def summary_rows(summary: dict) -> list[list[str]]:
    def pct(x):
        return "–" if x is None else f"{100 * x:.1f}%"

    rows = [
        ["lab items (sft / rl_pool / test)", " / ".join(str(s["n"]) for s in summary["lab"].values())],
        ["label noise in rl_pool (easy / hard)", f"{pct(summary['lab']['rl_pool']['flip_rate_easy'])} / {pct(summary['lab']['rl_pool']['flip_rate_hard'])}"],
        ["SFT traces kept / dropped by fidelity filter", f"{summary['sft']['n_examples']} / {summary['sft']['dropped_fidelity']}"],
        ["SFT loss first → last logged", f"{_num(summary['sft']['first_loss'])} → {_num(summary['sft']['last_loss'])}"],
        ["test accuracy (clean labels, both orders)", pct(summary["test_accuracy"])],
    ]
    rows += [[f"  on {c} items", pct(a)] for c, a in summary["test_accuracy_by_category"].items()]
    rows += [
        ["format failures", pct(summary["format_failure_rate"])],
        ["order consistency", pct(summary["order_consistency"])],
        ["baselines random / first / longer", " / ".join(pct(v) for v in summary["baselines"].values())],
    ]
    if "rq1" in summary:
        from egt.analysis.rq1 import rq1_summary_rows

        rows += rq1_summary_rows(summary["rq1"])
    rows += [
        ["wall time", f"{summary['wall_seconds']:.0f} s  ({', '.join(f'{k} {v:.0f}s' for k, v in summary['timings_seconds'].items())})"],
    ]
    return rows
