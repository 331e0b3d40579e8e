"""``egt score`` backends on a GPU: transformers vs vLLM on the tiny judge, and timings on a real model.

NOT RUN YET: written on CPU-only machines (vLLM cannot run there). Runnable as is on a machine with
a CUDA GPU and ``pip install 'egt[vllm]'``; without them it says so in one line, writes
``"skipped"`` in its results and exits 0. It prints, it does not assert.

1. Tiny judge (an untrained tiny Qwen2.5-VL built on a small shapes lab, float32): the same requests
   and per-(seed, id, rollout) seeds through both backends (:mod:`egt.entropy.backends`).
   * near-greedy (τ = 1e-6; vLLM treats it as greedy, Gumbel-max at that τ is the argmax): the
     share of rows whose token ids, and whose parsed verdicts, are identical (expected: all, up to
     kernel round-off at near-ties);
   * τ = 1: the two backends draw different (equally distributed) samples, so the per-token entropy
     distributions are compared — transformers' recorded inside generate, vLLM's from the
     teacher-forced float32 pass — by mean, quantiles and the two-sample KS statistic; and, on the
     transformers rows, generation-time vs teacher-forced entropies of the same tokens (max |Δ|).
   vLLM may refuse the tiny checkpoint (its processor class is egt's own); that is printed and the
   script goes on to part 2.
2. ``--model M`` (e.g. Qwen/Qwen2.5-VL-7B-Instruct, bf16): ``--items`` pool items × ``--rollouts``
   through ``score_batch`` with each backend; wall time of the transformers backend (generation
   with in-generate entropies) against vLLM generation + the teacher-forced pass, tokens/s.

Run: ``python bench/score_backends_gpu.py [--model Qwen/Qwen2.5-VL-7B-Instruct] [--data POOL.jsonl]
[--items 64] [--rollouts 4] [--max_new_tokens 512] [--gpu_memory_utilization 0.5] [--quick]``
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness


def quantiles(xs: list[float]) -> str:
    xs = sorted(xs)
    if not xs:
        return "–"
    q = [xs[min(len(xs) - 1, int(p * len(xs)))] for p in (0.1, 0.5, 0.9)]
    return f"mean {statistics.fmean(xs):.4f}  p10 {q[0]:.4f}  p50 {q[1]:.4f}  p90 {q[2]:.4f}  (n={len(xs)})"


def ks(a: list[float], b: list[float]) -> float:
    """Two-sample Kolmogorov–Smirnov statistic."""
    import bisect

    a, b = sorted(a), sorted(b)
    return max(
        (abs(bisect.bisect_right(a, x) / len(a) - bisect.bisect_right(b, x) / len(b)) for x in a + b), default=0.0
    )


def make_requests(pairs, root, is_vision, rollouts, seed):
    from egt.data.presentation import presented_swapped, rollout_seed
    from egt.judge.base import JudgeRequest
    from egt.records import open_images

    requests, seeds = [], []
    for p in pairs:
        images = open_images(p, root) if is_vision else []
        for k in range(rollouts):
            requests.append(JudgeRequest(p, presented_swapped(seed, p.id, k, "stored"), images))
            seeds.append(rollout_seed(seed, p.id, k))
    return requests, seeds


def tiny_comparison(args, work: Path) -> None:
    import torch

    from egt.entropy.backends import TransformersBackend, VllmBackend
    from egt.entropy.teacher_forced import rollout_entropies
    from egt.judge.parse import parse_verdict
    from egt.lab import LabConfig, make_lab
    from egt.models.load import load_model
    from egt.models.tiny import build_tiny_judge
    from egt.records import default_images_root, read_pairs
    from egt.train.sft import lab_corpus

    make_lab(LabConfig(output_dir=str(work / "lab"), n_sft=64, n_rl_pool=args.tiny_items, n_test=1, seed=args.seed + 1))
    judge = str(build_tiny_judge(lab_corpus(read_pairs(work / "lab" / "sft.jsonl"), "compact"), work / "judge"))
    data = work / "lab" / "rl_pool.jsonl"
    loaded = load_model(judge, device="cuda", dtype="float32")
    pairs = read_pairs(data)[: args.tiny_items]
    requests, seeds = make_requests(pairs, default_images_root(data), loaded.is_vision, args.rollouts, 0)
    print(f"== tiny judge ({len(pairs)} items × {args.rollouts} rollouts, max_new_tokens {args.tiny_tokens}, float32)")
    try:
        from vllm import LLM

        llm = LLM(
            model=judge,
            dtype="float32",
            seed=0,
            gpu_memory_utilization=0.2,
            max_model_len=4096,
            limit_mm_per_prompt={"image": 2},
            enforce_eager=True,
        )
    except Exception as e:  # noqa: BLE001 - report and go on
        print(f"  vLLM could not load the tiny judge: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        del loaded
        torch.cuda.empty_cache()
        return
    hf, vl = TransformersBackend(loaded), VllmBackend(loaded, llm)
    kw = dict(max_new_tokens=args.tiny_tokens, style="compact")

    greedy_t = 1e-6
    a = hf.generate(requests, seeds, temperature=greedy_t, record_entropy=False, **kw)
    b = vl.generate(requests, seeds, temperature=greedy_t, **kw)
    rows_a = [a.ids[r, :n].tolist() for r, n in enumerate(a.lengths)]
    rows_b = [b.ids[r, :n].tolist() for r, n in enumerate(b.lengths)]
    same_ids = sum(x == y for x, y in zip(rows_a, rows_b))
    dec = loaded.tokenizer.decode
    va = [parse_verdict(dec(x, skip_special_tokens=True)) for x in rows_a]
    vb = [parse_verdict(dec(x, skip_special_tokens=True)) for x in rows_b]
    same_verdict = sum((x and x.choice) == (y and y.choice) for x, y in zip(va, vb))
    print(f"  τ→0: identical token ids {same_ids}/{len(rows_a)} rows, identical verdicts {same_verdict}/{len(rows_a)}")

    a = hf.generate(requests, seeds, temperature=1.0, record_entropy=True, **kw)
    b = vl.generate(requests, seeds, temperature=1.0, **kw)
    tf_a = rollout_entropies(loaded, requests, a.ids, lengths=a.lengths, temperature=1.0, style="compact")
    tf_b = rollout_entropies(loaded, requests, b.ids, lengths=b.lengths, temperature=1.0, style="compact")
    gen_tokens = [x for r, n in enumerate(a.lengths) for x in a.entropies[r, :n].tolist()]
    vllm_tokens = [x for r, n in enumerate(b.lengths) for x in tf_b[r, :n].tolist()]
    diff = max(
        ((a.entropies[r, :n] - tf_a[r, :n]).abs().max().item() for r, n in enumerate(a.lengths) if n), default=0.0
    )
    print(f"  τ=1 transformers (in-generate entropies): {quantiles(gen_tokens)}")
    print(f"  τ=1 vLLM (teacher-forced entropies):      {quantiles(vllm_tokens)}")
    print(f"  KS statistic between the two per-token distributions: {ks(gen_tokens, vllm_tokens):.4f}")
    print(f"  mean length: transformers {statistics.fmean(a.lengths):.1f}, vLLM {statistics.fmean(b.lengths):.1f}")
    print(f"  transformers rows, in-generate vs teacher-forced on the same tokens: max |Δ| = {diff:.3e}")
    del llm, hf, vl, loaded
    torch.cuda.empty_cache()


def model_timing(args) -> None:
    import torch

    from egt.entropy.backends import TransformersBackend, VllmArgs, start_vllm
    from egt.entropy.sampling import PieceDecoder
    from egt.models.args import ModelArgs
    from egt.models.load import load_model
    from egt.pipelines.scoring.config import ScoringConfig
    from egt.pipelines.scoring.run import score_batch
    from egt.records import default_images_root, open_images, read_pairs

    if not args.data:
        print("== --model given without --data: skipping the timing (pass a pool .jsonl)")
        return
    model_args = ModelArgs(model=args.model, dtype=args.dtype, device="cuda")
    loaded = load_model(args.model, device="cuda", dtype=args.dtype)
    pairs = read_pairs(args.data)[: args.items]
    root = default_images_root(args.data)
    images = [open_images(p, root) if loaded.is_vision else [] for p in pairs]
    cfg = ScoringConfig(
        rollouts=args.rollouts,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        prompt_style=args.prompt_style,
        keep_texts=False,
    )
    decoder = PieceDecoder(loaded.tokenizer)

    def run(backend) -> tuple[float, list[dict]]:
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = []
        for b in range(0, len(pairs), args.batch_size):
            out += score_batch(
                loaded,
                pairs[b : b + args.batch_size],
                list(range(b, min(b + args.batch_size, len(pairs)))),
                images[b : b + args.batch_size],
                cfg,
                style=args.prompt_style,
                max_new_tokens=args.max_new_tokens,
                decoder=decoder,
                backend=backend,
            )
        torch.cuda.synchronize()
        return time.perf_counter() - start, out

    print(
        f"== {args.model} ({args.dtype}): {len(pairs)} items × {args.rollouts} rollouts, max_new_tokens "
        f"{args.max_new_tokens}, batches of {args.batch_size} items"
    )
    llm = start_vllm(
        model_args,
        0,
        VllmArgs(vllm_gpu_memory_utilization=args.gpu_memory_utilization, vllm_max_model_len=args.max_model_len),
    )
    from egt.entropy.backends import VllmBackend

    vl = VllmBackend(loaded, llm)
    for name, backend in (("vllm + teacher-forced", vl), ("transformers", TransformersBackend(loaded))):
        wall, recs = run(backend)
        tokens = sum(sum(r["n_tokens"]) for r in recs)
        fmt = statistics.fmean([r["format_rate"] for r in recs])
        acc = statistics.fmean([r["accuracy"] for r in recs])
        print(
            f"  {name:22s} wall {wall:8.1f} s  {tokens / wall:9.1f} tokens/s  ({tokens} tokens; format rate {fmt:.3f}, "
            f"rollout accuracy {acc:.3f})"
        )


def missing_requirement() -> str | None:
    """Why this machine cannot run the script, or None."""
    import torch

    if not torch.cuda.is_available():
        return "needs a CUDA GPU (none visible); vLLM does not run on CPU"
    try:
        import vllm  # noqa: F401
    except ImportError:
        return "needs vLLM: pip install 'egt[vllm]'"
    return None


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=1)
    parser.add_argument("--model", default="")
    parser.add_argument("--data", default="")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=512)
    parser.add_argument("--prompt_style", default="r1_reward")
    parser.add_argument("--gpu_memory_utilization", type=float, default=0.5)
    parser.add_argument("--max_model_len", type=int, default=8192)
    parser.add_argument("--tiny_items", type=int, default=8)
    parser.add_argument("--tiny_tokens", type=int, default=48)
    parser.add_argument("--skip_tiny", action="store_true")
    args = harness.parse(parser, quick={"items": 8, "max_new_tokens": 64, "tiny_items": 4, "tiny_tokens": 16})
    reason = missing_requirement()
    if reason:
        print(f"score_backends_gpu: {reason}; skipped")
        return harness.finish(__file__, args, {"skipped": reason})
    if not args.skip_tiny:
        with tempfile.TemporaryDirectory() as tmp:
            tiny_comparison(args, Path(tmp))
    if args.model:
        model_timing(args)
    return harness.finish(__file__, args, {})


if __name__ == "__main__":
    sys.exit(main())
