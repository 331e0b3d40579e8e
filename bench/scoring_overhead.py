"""Scoring K rollouts with entropies vs plain ``generate`` of the same rollouts: time ratio.

Three ways to produce the same workload (``--items`` pool items × ``--rollouts`` rollouts, in
batches of ``--batch_size`` items):

* ``scoring`` — what ``egt score`` does per batch (``egt.pipelines.scoring.run.score_batch``):
  generate with :class:`RolloutSampler` recording ``token_entropy`` at every step, then the
  per-rollout statistics (answer-token / reasoning-sentence entropy, strict parse, verdicts).
* ``plain`` — the same ``generate`` with the same sampler and seeds but no entropy, then
  ``batch_decode``: the *same tokens* (checked), so the ratio isolates the cost of the entropies
  and statistics. Target: scoring / plain ≤ 1.15.
* ``native`` — for context only: transformers' own ``generate(do_sample=True,
  num_return_sequences=K)`` on the same prompts. Its samples differ, so the runs differ in length
  whenever the judge stops at EOS; the line says what per-row seeded sampling costs against it.

The machine may be shared: the sides run interleaved (their order alternating, ``bench/harness.py``)
for ``--repeats`` rounds after one warm-up round, and the medians of wall time and of process CPU
time are compared (CPU time is the steadier of the two on a contended machine; ``--threads 1``
steadier still). PASS needs both ratios within the target.

Run: ``.venv/bin/python bench/scoring_overhead.py [--model DIR] [--items 16] [--rollouts 4] [--quick]``.
Without ``--model`` it uses ``runs/demo/judge`` when present, else an untrained tiny judge built
on a small shapes lab (which writes until ``max_new_tokens``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

import harness

TARGET = 1.15


def setup(args, workdir: Path):
    from egt.judge.generative import read_judge_meta
    from egt.lab import LabConfig, make_lab
    from egt.models.load import load_model
    from egt.records import default_images_root, open_images, read_pairs

    model = args.model or ("runs/demo/judge" if Path("runs/demo/judge/config.json").is_file() else "")
    if args.data:
        data = Path(args.data)
    else:
        make_lab(
            LabConfig(output_dir=str(workdir / "lab"), n_sft=64, n_rl_pool=args.items, n_test=1, seed=args.seed + 1)
        )
        data = workdir / "lab" / "rl_pool.jsonl"
    if not model:
        from egt.models.tiny import build_tiny_judge
        from egt.train.sft import lab_corpus

        model = str(
            build_tiny_judge(lab_corpus(read_pairs(workdir / "lab" / "sft.jsonl"), "compact"), workdir / "judge")
        )
    loaded = load_model(model, device=args.device)
    meta = read_judge_meta(model)
    pairs = read_pairs(data)[: args.items]
    root = default_images_root(data)
    images = [open_images(p, root) if loaded.is_vision else [] for p in pairs]
    return (
        model,
        loaded,
        pairs,
        images,
        meta.get("prompt_style", "compact"),
        args.max_new_tokens or meta.get("max_new_tokens", 64),
    )


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=5)
    parser.add_argument("--model", default="")
    parser.add_argument("--data", default="")
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=0, help="0: the judge's own setting (else 64)")
    parser.add_argument("--device", default="cpu")
    args = harness.parse(parser, quick={"items": 4, "rollouts": 2, "batch_size": 4, "max_new_tokens": 16, "repeats": 2})

    from egt.data.presentation import presented_swapped, rollout_seed
    from egt.entropy.sampling import PieceDecoder, generate_rollouts
    from egt.judge.base import JudgeRequest
    from egt.judge.generative import GenerationSettings, encode_batch, generation_kwargs
    from egt.pipelines.scoring.config import ScoringConfig
    from egt.pipelines.scoring.run import score_batch

    with tempfile.TemporaryDirectory() as tmp:
        model, loaded, pairs, images, style, max_new = setup(args, Path(tmp))
        cfg = ScoringConfig(
            rollouts=args.rollouts, batch_size=args.batch_size, max_new_tokens=max_new, prompt_style=style
        )
        batches = [list(range(b, min(b + args.batch_size, len(pairs)))) for b in range(0, len(pairs), args.batch_size)]
        decoder = PieceDecoder(loaded.tokenizer)

        def requests_and_seeds(batch):
            reqs, seeds = [], []
            for i in batch:
                for k in range(cfg.rollouts):
                    reqs.append(
                        JudgeRequest(pairs[i], presented_swapped(cfg.seed, pairs[i].id, k, cfg.order), images[i])
                    )
                    seeds.append(rollout_seed(cfg.seed, pairs[i].id, k))
            return reqs, seeds

        def scoring() -> int:
            tokens = 0
            for batch in batches:
                records = score_batch(
                    loaded,
                    [pairs[i] for i in batch],
                    batch,
                    [images[i] for i in batch],
                    cfg,
                    style=style,
                    max_new_tokens=max_new,
                    decoder=decoder,
                )
                tokens += sum(sum(r["n_tokens"]) for r in records)
            return tokens

        def plain() -> int:
            tokens = 0
            for batch in batches:
                reqs, seeds = requests_and_seeds(batch)
                gen = generate_rollouts(
                    loaded,
                    reqs,
                    seeds,
                    temperature=cfg.temperature,
                    max_new_tokens=max_new,
                    style=style,
                    record_entropy=False,
                )
                loaded.tokenizer.batch_decode(
                    [gen.ids[r, :n] for r, n in enumerate(gen.lengths)], skip_special_tokens=True
                )
                tokens += sum(gen.lengths)
            return tokens

        @torch.no_grad()
        def native() -> int:
            torch.manual_seed(args.seed)
            tokens = 0
            settings = GenerationSettings(max_new_tokens=max_new, temperature=cfg.temperature)
            for batch in batches:
                reqs = [JudgeRequest(pairs[i], False, images[i]) for i in batch]
                enc = encode_batch(loaded, reqs, style)
                out = loaded.model.generate(
                    **enc, **generation_kwargs(loaded, settings, num_return_sequences=cfg.rollouts)
                )
                loaded.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                tokens += int((out[:, enc["input_ids"].shape[1] :] != loaded.tokenizer.pad_token_id).sum())
            return tokens

        sides = {"scoring": scoring, "plain": plain, "native": native}
        samples, tokens = harness.interleave(sides, args.repeats, warmup=1)
        if tokens["scoring"] != tokens["plain"]:
            raise RuntimeError("scoring and plain generate must produce the same rollouts")

    med = {name: s.median("wall") for name, s in samples.items()}
    med_cpu = {name: s.median("cpu") for name, s in samples.items()}
    ratio = harness.paired_ratio(samples["scoring"].wall, samples["plain"].wall)
    ratio_cpu = harness.paired_ratio(samples["scoring"].cpu, samples["plain"].cpu)
    harness.print_table(
        f"model: {model} ({'VLM' if loaded.is_vision else 'LM'}, vocab "
        f"{loaded.model.config.get_text_config().vocab_size}), device {args.device}, torch threads "
        f"{torch.get_num_threads()}; {len(pairs)} items × {cfg.rollouts} rollouts, {len(batches)} batches of "
        f"≤ {args.batch_size} items, max_new_tokens {max_new}; {tokens['plain']} generated tokens per pass",
        ["side", "wall median s", "CPU median s", "wall runs"],
        [
            [name, f"{med[name]:.3f}", f"{med_cpu[name]:.3f}", ", ".join(f"{t:.2f}" for t in samples[name].wall)]
            for name in sides
        ],
        caption=f"context: per-row seeded sampler, plain / transformers' native sampling: wall "
        f"{med['plain'] / med['native']:.3f}, CPU {med_cpu['plain'] / med_cpu['native']:.3f} (native made "
        f"{tokens['native']} tokens: its samples differ)",
    )
    checks = [
        harness.Check("scoring with entropies / plain generate, wall", ratio, TARGET),
        harness.Check("scoring with entropies / plain generate, CPU", ratio_cpu, TARGET),
    ]
    results = {
        "model": str(model),
        "tokens": tokens,
        "timings": {name: s.summary() for name, s in samples.items()},
        "ratio_wall": ratio,
        "ratio_cpu": ratio_cpu,
    }
    return harness.finish(__file__, args, results, checks)


if __name__ == "__main__":
    sys.exit(main())
