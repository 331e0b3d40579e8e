"""``egt demo``: the whole EGT loop on a laptop CPU, on the shapes lab (the ``lab_quick`` preset).

1. make the lab (synthetic images, questions, responses, teacher traces, label noise);
2. build a tiny Qwen2.5-VL judge from scratch and SFT it on the traces (fidelity filter on);
3. evaluate it on the clean test split in both presentation orders, beside the baselines;
4. score the noisy ``rl_pool`` by the judge's response entropy (K rollouts, every signal), check
   that entropy tracks rollout accuracy, label noise and difficulty (EGT's RQ1);
5. RL on the lowest-entropy subset (by the preset's signal) with the low → high curriculum, and the
   same RL on a random subset of the same size, both evaluated on the clean test.

It runs the experiment's own units (:mod:`egt.pipelines.experiment.steps` / ``cells``) with one
seed, one regime and two arms, so its numbers mean what the experiment's mean. Everything lands
under ``runs/demo/``; ``report.json`` summarises it. A rerun reuses every finished step.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from egt.data.atomic import atomic_write_json


@dataclass
class DemoArgs:
    """The demo's settings; the defaults are ``configs/experiment/lab_quick.yaml`` (a test holds them equal)."""

    output_dir: str = field(default="runs/demo", metadata={"help": "Output folder."})
    seed: int = field(default=0, metadata={"help": "Seed for the lab, the model and training."})
    n_sft: int = field(default=5000, metadata={"help": "Lab items with teacher traces."})
    n_rl_pool: int = field(default=2000, metadata={"help": "Lab items in the noisy RL pool."})
    n_test: int = field(default=500, metadata={"help": "Clean test items."})
    teacher: str = field(
        default="annotator", metadata={"help": "Trace teacher: annotator (the annotators' confusion model) | scripted."}
    )
    epochs: float = field(default=6.0, metadata={"help": "SFT epochs over the filtered traces."})
    learning_rate: float = field(default=1e-3, metadata={"help": "SFT learning rate (tiny model from scratch)."})
    batch_size: int = field(default=32, metadata={"help": "SFT batch size."})
    eval_batch_size: int = field(default=100, metadata={"help": "Judgements per generate call."})
    rollouts: int = field(default=4, metadata={"help": "Rollouts per pool item for entropy scoring (EGT: K = 4)."})
    peak_k: int = field(
        default=3, metadata={"help": "k of the peak signal (mean of the k highest reasoning-token entropies)."}
    )
    signal: str = field(
        default="peak",
        metadata={
            "help": (
                "Entropy signal the curation and curriculum use: answer | sentence | mixed | vote | peak, or auto = "
                "the one whose "
                "entropy correlates most negatively with rollout accuracy on the pool's own labels (no hidden truth "
                "needed)."
            )
        },
    )
    fraction: float = field(default=0.25, metadata={"help": "Size of the curated (and of the random) subset."})
    rl_steps: int = field(default=40, metadata={"help": "RL steps of each of the two RL runs."})
    rl_learning_rate: float = field(default=1e-5, metadata={"help": "RL learning rate."})
    score: bool = field(default=True, metadata={"help": "Run step 4 (entropy scoring and RQ1)."})
    rl: bool = field(
        default=True, metadata={"help": "Run step 5 (RL on the curated and on a random subset); needs score."}
    )


def experiment_config(args: DemoArgs):
    """The demo as an experiment preset: one seed, one regime (the SFT judge), two arms."""
    from egt.pipelines.experiment.config import ExperimentConfig

    return ExperimentConfig(
        output_dir=args.output_dir,
        preset="demo",
        seeds=[args.seed],
        workers=1,
        tables=["T1"],
        n_sft=args.n_sft,
        n_rl_pool=args.n_rl_pool,
        n_test=args.n_test,
        teachers=[args.teacher],
        rl_teacher=args.teacher,
        sft_epochs=args.epochs,
        sft_checkpoint_epochs=[args.epochs],
        sft_learning_rate=args.learning_rate,
        sft_batch_size=args.batch_size,
        regimes=["converged"],
        converged_epoch=args.epochs,
        weak_epoch=args.epochs,
        main_regime="converged",
        rollouts=args.rollouts,
        peak_k=args.peak_k,
        fraction=args.fraction,
        signals=["answer", "sentence", "mixed", "vote", "peak"],
        main_signal=args.signal,
        rl_steps=args.rl_steps,
        rl_eval_every=args.rl_steps,
        rl_learning_rate=args.rl_learning_rate,
        eval_batch_size=args.eval_batch_size,
    )


def run_demo(args: DemoArgs) -> dict:
    from egt.evaluation.runner import evaluate
    from egt.judge.base import make_baseline
    from egt.pipelines.experiment import steps
    from egt.pipelines.experiment.cells import run_cell
    from egt.pipelines.experiment.grid import Arm
    from egt.records import read_pairs
    from egt.report import console

    start = time.perf_counter()
    cfg = experiment_config(args)
    cfg.check()
    seed, teacher, epoch = args.seed, args.teacher, args.epochs
    timings: dict[str, float] = {}
    total = 3 + args.score + (args.score and args.rl)

    def stage(number: int, name: str, key: str, folder: Path, fn, *fn_args):
        console.rule(f"[bold]{number}/{total}  {name}")
        t0 = time.perf_counter()
        result = steps.read_done(folder) if steps.is_done(folder) else fn(*fn_args)
        timings[key] = round(time.perf_counter() - t0, 1)
        return result

    lab = steps.lab_dir(cfg, seed, teacher)
    lab_summary = stage(1, "shapes lab", "lab", lab, steps.run_lab, cfg, seed, teacher)
    sft = stage(
        2,
        "SFT of the tiny judge on teacher traces",
        "sft",
        steps.sft_dir(cfg, seed, teacher),
        steps.run_sft,
        cfg,
        seed,
        teacher,
    )
    judge = steps.judge_dir(cfg, seed, teacher, epoch)

    console.rule(f"[bold]3/{total}  evaluation on the clean test split (both orders)")
    t0 = time.perf_counter()
    test_pairs = read_pairs(lab / "test.jsonl")
    evaluation = steps.evaluate_on_test(judge, cfg, seed, teacher)
    baselines = {
        name: evaluate(make_baseline(name, seed), test_pairs, order="both", seed=seed)[0]["metrics"]["accuracy"]
        for name in ("random", "first", "longer")
    }
    timings["eval"] = round(time.perf_counter() - t0, 1)

    rq1 = rl = None
    if args.score:
        stats = stage(
            4,
            "entropy scoring of the noisy pool, RQ1",
            "score",
            steps.stats_dir(cfg, seed, teacher, epoch),
            steps.run_judge_stats,
            cfg,
            seed,
            teacher,
            epoch,
        )
        rq1 = stats["rq1"]
        if args.rl:
            console.rule(f"[bold]5/{total}  RL on the entropy-curated subset (curriculum) and on a random one")
            t0 = time.perf_counter()
            signal = steps.main_signal_of(cfg, stats)  # the preset's signal, or the rule's pick for this judge
            arms = {
                "entropy": Arm("entropy", signal, args.fraction, "sorted", cfg.rl_estimator),
                "random": Arm("random", "", args.fraction, "off", cfg.rl_estimator),
            }
            rl = {"signal": signal, "signal_rule": args.signal, "fraction": args.fraction, "steps": args.rl_steps}
            for name, arm in arms.items():
                folder = steps.cell_dir(cfg, seed, "converged", arm)
                cell = steps.read_done(folder) if steps.is_done(folder) else run_cell(cfg, seed, "converged", arm)
                rl[name] = {
                    "test_accuracy": cell["final"]["accuracy"],
                    "arm": arm.name,
                    "selection": cell["selection"],
                    "format_failure_rate": cell["final"]["format_failure_rate"],
                }
            timings["rl"] = round(time.perf_counter() - t0, 1)

    summary = {
        "test_accuracy": evaluation["accuracy"],
        "test_accuracy_by_category": evaluation["by_category"],
        "format_failure_rate": evaluation["format_failure_rate"],
        "order_consistency": evaluation["order_consistency"],
        "baselines": baselines,
        **({"rq1": rq1} if rq1 is not None else {}),
        **({"rl": rl} if rl is not None else {}),
        "sft": sft,
        "lab": lab_summary["splits"],
        "paths": {"lab": str(lab), "judge": str(judge)},
        "timings_seconds": timings,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "config": asdict(args),
    }
    atomic_write_json(Path(args.output_dir) / "report.json", summary)
    return summary


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def summary_rows(summary: dict) -> list[list[str]]:
    def pct(x):
        return "–" if x is None else f"{100 * x:.1f}%"

    lab = summary["lab"]
    rows = [
        ["lab items (sft / rl_pool / test)", " / ".join(str(s["n"]) for s in lab.values())],
        [
            "label noise in rl_pool (easy / hard)",
            f"{pct(lab['rl_pool']['flip_rate_easy'])} / {pct(lab['rl_pool']['flip_rate_hard'])}",
        ],
        [
            "SFT traces kept / dropped by fidelity filter",
            f"{summary['sft']['n_examples']} / {summary['sft']['dropped_fidelity']}",
        ],
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
    if "rl" in summary:
        rl = summary["rl"]
        for name in ("entropy", "random"):
            sel = rl[name]["selection"]
            rows.append(
                [
                    f"RL on {name} {round(100 * rl['fraction'])}% ({rl['steps']} steps): test accuracy",
                    f"{pct(rl[name]['test_accuracy'])} (kept flip rate {pct(sel['flip_rate'])}, hard "
                    f"{pct(sel['hard_share'])})",
                ]
            )
    rows.append(
        [
            "wall time",
            f"{summary['wall_seconds']:.0f} s  "
            f"({', '.join(f'{k} {v:.0f}s' for k, v in summary['timings_seconds'].items())})",
        ]
    )
    return rows
