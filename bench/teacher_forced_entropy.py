"""Teacher-forced entropy pass vs the generation it replaces: max difference and cost ratio.

One run, the same workload (``--items`` pool items × ``--rollouts`` rollouts, batches of
``--batch-size`` items, ``--max-new-tokens``):

* ``generation`` — ``egt.entropy.scoring.generate_rollouts`` as ``egt score`` runs it: per-row seeded
  sampling with the entropies recorded inside generate.
* ``teacher_forced`` — ``egt.entropy.teacher_forced.rollout_entropies`` over the *same* sampled
  tokens: one prefill + one continuation forward, float32 LM head in chunks.

Prints the max |H_gen − H_tf| over every scored token (target ≤ 1e-5 in float32) and the cost
ratio teacher_forced / generation, by wall and process CPU time, medians over ``--repeats`` rounds
after a warm-up (target ≤ 0.5×: the pass that lets a vLLM backend or ``--rescore`` skip generation
must cost well under the generation). The machine may be shared; CPU time is the steadier number.

Run: ``.venv/bin/python bench/teacher_forced_entropy.py [--model DIR] [--items 8] [--rollouts 4]``
(``--device cuda --dtype bfloat16`` on a GPU: the difference is then generation's bf16-rounded
logits against the float32 head, not a bug). Without ``--model`` an untrained tiny judge is built on
a small shapes lab (it writes until ``--max-new-tokens``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

MAX_DIFF, MAX_RATIO = 1e-5, 0.5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="")
    ap.add_argument("--data", default="")
    ap.add_argument("--items", type=int, default=8)
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from egt.entropy.scoring import generate_rollouts, presented_swapped, rollout_seed
    from egt.entropy.teacher_forced import rollout_entropies
    from egt.judge.base import JudgeRequest
    from egt.lab import LabConfig, make_lab
    from egt.models.load import load_model
    from egt.records import default_images_root, open_images, read_pairs

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = Path(args.data) if args.data else None
        if data is None:
            make_lab(LabConfig(out=str(work / "lab"), n_sft=64, n_rl_pool=args.items, n_test=1, seed=1))
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
                    requests.append(JudgeRequest(p, presented_swapped(0, p.id, k, "stored"), images))
                    seeds.append(rollout_seed(0, p.id, k))
            batches.append((requests, seeds))

        def sync():
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

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

        def timed(fn, *a):
            sync()
            w, c = time.perf_counter(), time.process_time()
            out = fn(*a)
            sync()
            return out, time.perf_counter() - w, time.process_time() - c

        gens = generation()  # warm-up
        teacher_forced(gens)
        walls = {"generation": [], "teacher_forced": []}
        cpus = {"generation": [], "teacher_forced": []}
        diff = 0.0
        tokens = 0
        for _ in range(args.repeats):
            gens, w, c = timed(generation)
            walls["generation"].append(w)
            cpus["generation"].append(c)
            tfs, w, c = timed(teacher_forced, gens)
            walls["teacher_forced"].append(w)
            cpus["teacher_forced"].append(c)
            tokens = 0
            for g, tf in zip(gens, tfs):
                for row, n in enumerate(g.lengths):
                    diff = max(diff, (g.entropies[row, :n] - tf[row, :n]).abs().max().item())
                    tokens += n

    med = {k: (statistics.median(walls[k]), statistics.median(cpus[k])) for k in walls}
    ratio_wall = med["teacher_forced"][0] / med["generation"][0]
    ratio_cpu = med["teacher_forced"][1] / med["generation"][1]
    print(
        f"model {model} ({args.dtype}, {args.device}); {args.items} items × {args.rollouts} rollouts, "
        f"{tokens} scored tokens, max_new_tokens {args.max_new_tokens}, {args.repeats} rounds"
    )
    for k in walls:
        print(f"  {k:15s} wall {med[k][0]:8.3f} s   cpu {med[k][1]:8.3f} s")
    print(f"max |H_generation − H_teacher_forced| = {diff:.3e}  (target ≤ {MAX_DIFF:g} in float32)")
    print(f"cost teacher_forced / generation: wall {ratio_wall:.3f}×, cpu {ratio_cpu:.3f}×  (target ≤ {MAX_RATIO}×)")
    ok = (diff <= MAX_DIFF or args.dtype != "float32") and ratio_wall <= MAX_RATIO and ratio_cpu <= MAX_RATIO
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
