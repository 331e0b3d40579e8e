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

Prints the test accuracy (clean split, both orders) and the RQ1 numbers.

    .venv/bin/python bench/rq1_variants.py --style seen [--epochs 4] [--threads 1] --out /tmp/rq1-seen
    .venv/bin/python bench/rq1_variants.py --warmup_style marks --style claims --epochs 2 --out /tmp/rq1-two
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", choices=("marks", "seen", "claims"), default="marks")
    parser.add_argument("--epochs", type=float, default=4.0, help="SFT epochs (the demo: 4)")
    parser.add_argument(
        "--warmup_style",
        choices=("marks", "seen", "claims"),
        default=None,
        help="train on this style first, then on --style from that checkpoint",
    )
    parser.add_argument("--warmup_epochs", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from trl import SFTConfig

    from egt.analysis.rq1 import run_rq1
    from egt.evaluation.runner import evaluate
    from egt.judge.factory import JudgeArgs, make_judge
    from egt.lab import LabConfig, make_lab
    from egt.records import read_pairs
    from egt.train.sft import JudgeSFTArgs, cpu_sft_defaults, train_judge_sft

    start, out = time.perf_counter(), Path(args.out)
    lab = out / "lab"
    make_lab(LabConfig(out=str(lab), seed=args.seed, n_sft=5000, n_rl_pool=2000, n_test=500))
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
    judge = make_judge(JudgeArgs(judge=str(out / "judge"), batch_size=100, device="cpu"))
    report, _ = evaluate(
        judge, read_pairs(lab / "test.jsonl"), order="both", seed=args.seed, images_root=lab, batch_size=100
    )
    rq1 = run_rq1(out / "judge", lab / "rl_pool.jsonl", lab, out / "rq1", rollouts=4, seed=args.seed, batch_size=100)
    warm = f"{args.warmup_style} {args.warmup_epochs:g} epochs, then " if args.warmup_style else ""
    print(
        f"style {warm}{args.style}, {args.epochs:g} epochs: test accuracy {report['metrics']['accuracy']:.3f}, "
        f"rollout accuracy on the pool {rq1['mean_rollout_accuracy']:.3f}"
    )
    for name in ("answer", "sentence", "mixed", "vote"):
        print(
            f"  {name:8s} entropy: Spearman {rq1[f'spearman_{name}']:+.3f}  AUROC flipped "
            f"{rq1[f'auroc_flipped_{name}']:.3f}  AUROC hard {rq1[f'auroc_hard_{name}']:.3f}"
        )
    print(
        f"  answer-entropy curation: flip rate kept {rq1['curation']['flip_rate_kept']:.3f}, "
        f"dropped {rq1['curation']['flip_rate_dropped']:.3f}; {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
