"""Teacher-forced entropy pass vs the generation it replaces: max difference and cost ratio.

One run, the same workload (``--items`` pool items × ``--rollouts`` rollouts, batches of
``--batch_size`` items, ``--max_new_tokens``):

* ``generation`` — ``egt.entropy.sampling.generate_rollouts`` as ``egt score`` runs it: per-row seeded
  sampling with the entropies recorded inside generate.
* ``teacher_forced`` — ``egt.entropy.teacher_forced.rollout_entropies`` over the *same* sampled
  tokens: one prefill + one continuation forward, float32 LM head in chunks.

Prints the max |H_gen − H_tf| over every scored token (target ≤ 1e-5 in float32) and the cost
ratio teacher_forced / generation, by wall and process CPU time: the median over ``--repeats``
rounds (each a generation, then the pass over its tokens) after a warm-up. Target ≤ 0.5×: the pass
that lets a vLLM backend or ``--rescore`` skip generation must cost well under the generation. The
machine may be shared; CPU time is the steadier number.

Run: ``.venv/bin/python bench/teacher_forced_entropy.py [--model DIR] [--items 8] [--rollouts 4] [--quick]``
(``--device cuda --dtype bfloat16`` on a GPU: the difference is then generation's bf16-rounded
logits against the float32 head, not a bug). Without ``--model`` an untrained tiny judge is built on
a small shapes lab (it writes until ``--max_new_tokens``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

import harness

MAX_DIFF, MAX_RATIO = 1e-5, 0.5


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=3)
    parser.add_argument("--model", default="")
    parser.add_argument("--data", default="")
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    args = harness.parse(parser, quick={"items": 4, "rollouts": 2, "max_new_tokens": 32, "repeats": 2})

    from egt.data.presentation import presented_swapped, rollout_seed
    from egt.entropy.sampling import generate_rollouts
    from egt.entropy.teacher_forced import rollout_entropies
    from egt.judge.base import JudgeRequest
    from egt.lab import LabConfig, make_lab
    from egt.models.load import load_model
    from egt.records import default_images_root, open_images, read_pairs

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = Path(args.data) if args.data else None
        if data is None:
            make_lab(
                LabConfig(output_dir=str(work / "lab"), n_sft=64, n_rl_pool=args.items, n_test=1, seed=args.seed + 1)
            )
            data = work / "lab" / "rl_pool.jsonl"
        model = args.model
        if not model:
            from egt.models.tiny import build_tiny_judge
            from egt.train.sft import lab_corpus

            model = str(build_tiny_judge(lab_corpus(read_pairs(work / "lab" / "sft.jsonl"), "compact"), work / "judge"))
        loaded = load_model(model, device=args.device, dtype=args.dtype)
        pairs = read_pairs(data)[: args.items]
        root = default_images_root(data)
        batches = []
        for b in range(0, len(pairs), args.batch_size):
            requests, seeds = [], []
            for p in pairs[b : b + args.batch_size]:
                images = open_images(p, root) if loaded.is_vision else []
                for k in range(args.rollouts):
                    requests.append(JudgeRequest(p, presented_swapped(args.seed, p.id, k, "stored"), images))
                    seeds.append(rollout_seed(args.seed, p.id, k))
            batches.append((requests, seeds))

        def generation():
            return [
                generate_rollouts(
                    loaded, r, s, temperature=args.temperature, max_new_tokens=args.max_new_tokens, style="compact"
                )
                for r, s in batches
            ]

        def teacher_forced(gens):
            return [
                rollout_entropies(
                    loaded,
                    r,
                    g.ids,
                    lengths=g.lengths,
                    temperature=args.temperature,
                    style="compact",
                    max_new_tokens=args.max_new_tokens,
                )
                for (r, _), g in zip(batches, gens)
            ]

        sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
        teacher_forced(generation())  # warm-up
        samples = {"generation": harness.Samples(), "teacher_forced": harness.Samples()}
        diff, tokens = 0.0, 0
        for _ in range(args.repeats):  # the pass needs this round's tokens: the two sides alternate
            gens, wall, cpu = harness.measure(generation, sync)
            samples["generation"].add(wall, cpu)
            tfs, wall, cpu = harness.measure(lambda gens=gens: teacher_forced(gens), sync)
            samples["teacher_forced"].add(wall, cpu)
            tokens = 0
            for g, tf in zip(gens, tfs):
                for row, n in enumerate(g.lengths):
                    diff = max(diff, (g.entropies[row, :n] - tf[row, :n]).abs().max().item())
                    tokens += n

    ratio_wall = harness.paired_ratio(samples["teacher_forced"].wall, samples["generation"].wall)
    ratio_cpu = harness.paired_ratio(samples["teacher_forced"].cpu, samples["generation"].cpu)
    harness.print_table(
        f"model {model} ({args.dtype}, {args.device}); {args.items} items × {args.rollouts} rollouts, "
        f"{tokens} scored tokens, max_new_tokens {args.max_new_tokens}, {args.repeats} rounds",
        ["side", "wall median s", "CPU median s"],
        [[k, f"{s.median('wall'):.3f}", f"{s.median('cpu'):.3f}"] for k, s in samples.items()],
        caption=f"max |H_generation − H_teacher_forced| = {diff:.3e}"
        + ("" if args.dtype == "float32" else f" ({args.dtype}: generation's rounded logits, not a bug)"),
    )
    checks = [
        harness.Check("cost teacher_forced / generation, wall", ratio_wall, MAX_RATIO),
        harness.Check("cost teacher_forced / generation, CPU", ratio_cpu, MAX_RATIO),
    ]
    if args.dtype == "float32":
        checks.append(harness.Check("max |H_generation − H_teacher_forced| (float32)", diff, MAX_DIFF))
    results = {
        "model": str(model),
        "scored_tokens": tokens,
        "timings": {k: s.summary() for k, s in samples.items()},
        "ratio_wall": ratio_wall,
        "ratio_cpu": ratio_cpu,
        "max_abs_diff": diff,
    }
    return harness.finish(__file__, args, results, checks)


if __name__ == "__main__":
    sys.exit(main())
