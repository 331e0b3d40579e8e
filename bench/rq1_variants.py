"""RQ1 under variants of the judge's training: does answer-token entropy track accuracy then?

In the lab's teacher traces the verdict follows from the reasoning ("left: image red, response 1
red correct, response 2 blue wrong. so response 1 is better."), so the trained judge's verdict
token copies its reasoning and its entropy is ~0.002 nats on every item (README, issue 3). This
script retrains the demo's judge with the traces rewritten in another style, or for fewer epochs,
and reruns the demo's RQ1 step (score the noisy pool, analyse, curate) on it:

- ``marks``   the lab's traces (default);
- ``seen``    perception and claims only — "left: image red. response 1 red, response 2 blue." —
              the verdict is decided at the answer token;
- ``claims``  no perception at all — "left: response 1 says red, response 2 says blue." — the
              answer token must read the image itself.

``--warmup_style marks --style claims`` trains on the lab's traces first (the judge learns to read
the image where a token names the colour) and then on claims from that checkpoint, so the verdict
token has image features to decide from.

Prints the test accuracy (clean split, both orders) and the RQ1 numbers. Work files go under
``<output_dir>/rq1_variants/<variant>/``; give each variant its own ``--output_dir`` to keep every
variant's ``rq1_variants.json``.

    .venv/bin/python bench/rq1_variants.py --style seen [--epochs 4] --output_dir runs/bench/rq1-seen
    .venv/bin/python bench/rq1_variants.py --warmup_style marks --style claims --epochs 2
    .venv/bin/python bench/rq1_variants.py --quick            # a small lab, one epoch: a smoke check
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import harness

TRACE = re.compile(
    r"<think>(?P<pos>[^:]+): image (?P<seen>\w+), response 1 (?P<c1>\w+) (?P<m1>\w+), "
    r"response 2 (?P<c2>\w+) (?P<m2>\w+)\. so response (?P<v>\d) is better\.</think>"
    r"<answer>(?P<a>\d)</answer>"
)


def restyle(trace: str, style: str) -> str:
    if style == "marks":
        return trace
    g = TRACE.fullmatch(trace)
    if g is None:
        raise ValueError(f"not a lab trace: {trace!r}")
    think = {
        "seen": f"{g['pos']}: image {g['seen']}. response 1 {g['c1']}, response 2 {g['c2']}.",
        "claims": f"{g['pos']}: response 1 says {g['c1']}, response 2 says {g['c2']}.",
    }[style]
    return f"<think>{think}</think><answer>{g['a']}</answer>"


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=1)
    parser.add_argument("--style", choices=("marks", "seen", "claims"), default="marks")
    parser.add_argument("--epochs", type=float, default=4.0, help="SFT epochs (the demo: 4)")
    parser.add_argument(
        "--warmup_style",
        choices=("marks", "seen", "claims"),
        default=None,
        help="train on this style first, then on --style from that checkpoint",
    )
    parser.add_argument("--warmup_epochs", type=float, default=4.0)
    parser.add_argument("--n_sft", type=int, default=5000)
    parser.add_argument("--n_rl_pool", type=int, default=2000)
    parser.add_argument("--n_test", type=int, default=500)
    args = harness.parse(
        parser, quick={"epochs": 1.0, "warmup_epochs": 1.0, "n_sft": 200, "n_rl_pool": 40, "n_test": 20}
    )

    from trl import SFTConfig

    from egt.evaluation.runner import evaluate
    from egt.judge.args import JudgeArgs
    from egt.lab import LabConfig, make_lab
    from egt.models.training import cpu_sft_defaults
    from egt.pipelines.judges import make_judge
    from egt.pipelines.rq1 import run_rq1
    from egt.records import read_pairs
    from egt.train.sft import JudgeSFTArgs, train_judge_sft

    variant = f"{args.warmup_style}-then-{args.style}" if args.warmup_style else args.style
    start, out = time.perf_counter(), harness.work_dir(args, __file__) / variant
    lab = out / "lab"
    make_lab(
        LabConfig(output_dir=str(lab), seed=args.seed, n_sft=args.n_sft, n_rl_pool=args.n_rl_pool, n_test=args.n_test)
    )
    lab_traces = [json.loads(line) for line in (lab / "sft.jsonl").read_text().splitlines()]

    def write_style(style: str, name: str) -> Path:
        records = json.loads(json.dumps(lab_traces))
        for rec in records:
            rec["meta"]["traces"] = [restyle(t, style) for t in rec["meta"]["traces"]]
        (lab / name).write_text("".join(json.dumps(rec) + "\n" for rec in records))
        print(f"trace ({name}):", records[0]["meta"]["traces"][0])
        return lab / name

    def sft(data: Path, model: str, epochs: float, judge_dir: Path) -> None:
        cfg = SFTConfig(
            **{
                **cpu_sft_defaults(),
                "output_dir": str(judge_dir),
                "seed": args.seed,
                "num_train_epochs": epochs,
                "learning_rate": 1e-3,
                "per_device_train_batch_size": 32,
                "logging_steps": 50,
            }
        )
        train_judge_sft(JudgeSFTArgs(data=str(data), model=model), cfg)

    model = "tiny"
    if args.warmup_style:  # stage 0: another trace style first, then the judge continues from it
        sft(write_style(args.warmup_style, "sft_warmup.jsonl"), "tiny", args.warmup_epochs, out / "warmup")
        model = str(out / "warmup")
    sft(write_style(args.style, "sft_styled.jsonl"), model, args.epochs, out / "judge")
    judge = make_judge(JudgeArgs(model=str(out / "judge"), batch_size=100, device="cpu"))
    report, _ = evaluate(
        judge, read_pairs(lab / "test.jsonl"), order="both", seed=args.seed, images_root=lab, batch_size=100
    )
    rq1 = run_rq1(out / "judge", lab / "rl_pool.jsonl", lab, out / "rq1", rollouts=4, seed=args.seed, batch_size=100)
    warm = f"{args.warmup_style} {args.warmup_epochs:g} epochs, then " if args.warmup_style else ""
    signals = ("answer", "sentence", "mixed", "vote")
    harness.print_table(
        f"style {warm}{args.style}, {args.epochs:g} epochs: test accuracy {report['metrics']['accuracy']:.3f}, "
        f"rollout accuracy on the pool {rq1['mean_rollout_accuracy']:.3f}",
        ["entropy", "Spearman", "AUROC flipped", "AUROC hard"],
        [
            [
                name,
                f"{rq1[f'spearman_{name}']:+.3f}",
                f"{rq1[f'auroc_flipped_{name}']:.3f}",
                f"{rq1[f'auroc_hard_{name}']:.3f}",
            ]
            for name in signals
        ],
        caption=f"answer-entropy curation: flip rate kept {rq1['curation']['flip_rate_kept']:.3f}, "
        f"dropped {rq1['curation']['flip_rate_dropped']:.3f}; {time.perf_counter() - start:.0f} s",
    )
    results = {"variant": variant, "test_accuracy": report["metrics"]["accuracy"], "rq1": rq1}
    return harness.finish(__file__, args, results)


if __name__ == "__main__":
    sys.exit(main())
