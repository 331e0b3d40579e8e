"""Chunked vs naive token entropy from hidden states: time, peak memory, agreement.

Compares ``egt.entropy.token_entropy_from_hidden`` with the naive path
``log_softmax(hidden @ W.T) → −Σ p log p`` (float32 throughout) at Qwen's vocabulary,
V = 151,936, for B·T = 4 · 1,024 tokens and h = 128 (small h keeps the matmul — identical in both
paths — from dominating a 2-core CPU; the memory story depends only on N·V).

How peak memory is measured: each path runs in a fresh subprocess, so neither inherits the
other's allocator state. The worker builds the inputs, runs the path once on 64 tokens to warm
up kernels, then records its resident set size (``VmRSS``) and resets the kernel's high-water mark
to it (``echo 5 > /proc/self/clear_refs``, Linux ≥ 4.0). After one full run, ``VmHWM − baseline``
is the peak extra memory the path touched. PyTorch's CPU allocator hands big tensors straight to
``mmap``/``munmap`` (no caching), so RSS follows live tensor memory page for page; the kernel's
high-water mark catches short-lived peaks that sampling would miss. Where ``clear_refs`` cannot
be written the worker skips the warm-up and falls back to the ``ru_maxrss`` delta from the same
baseline. Time is the best of ``--repeats`` full runs, the first being the memory run.

Targets: time ratio chunked/naive ≤ 1.5, peak-memory ratio ≤ 0.15, max |ΔH| ≤ 1e-4.

Run: ``.venv/bin/python bench/entropy_memory.py [--chunk_size N] [--seq 1024] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

import harness
from egt.entropy import DEFAULT_CHUNK_SIZE, token_entropy_from_hidden

TIME_RATIO_TARGET = 1.5
MEMORY_RATIO_TARGET = 0.15
MAX_ABS_DIFF_TARGET = 1e-4


# ------------------------------------------------------------------------------------------------
# The two paths
# ------------------------------------------------------------------------------------------------


def naive_entropy(hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The textbook path: full float32 logits ``[B, T, V]``, log-softmax, ``−Σ p log p``."""
    log_probs = torch.log_softmax(hidden @ weight.T, dim=-1)  # [B, T, V]
    return -(log_probs.exp() * log_probs).sum(dim=-1)  # [B, T]


def chunked_entropy(hidden: torch.Tensor, weight: torch.Tensor, chunk_size: int) -> torch.Tensor:
    return token_entropy_from_hidden(hidden, weight, chunk_size=chunk_size)


# ------------------------------------------------------------------------------------------------
# Memory probes (Linux /proc)
# ------------------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ------------------------------------------------------------------------------------------------
# Worker: one path, one fresh process
# ------------------------------------------------------------------------------------------------


def make_inputs(batch: int, seq: int, width: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded inputs whose logits have std ≈ 4, so entropies spread well below ln V."""
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(batch, seq, width, generator=gen)  # [B, T, h]
    weight = torch.randn(vocab, width, generator=gen) * (4.0 / width**0.5)  # [V, h]
    return hidden, weight


def worker(args: argparse.Namespace) -> None:
    hidden, weight = make_inputs(args.batch, args.seq, args.width, args.vocab)
    if args.worker == "naive":
        run = partial(naive_entropy, weight=weight)
    else:
        run = partial(chunked_entropy, weight=weight, chunk_size=args.chunk_size)

    can_reset = _reset_peak()
    if can_reset:
        run(hidden[:1, :64])  # warm-up, then forget its peak
    gc.collect()
    baseline_kib = _status_kib("VmRSS")
    if can_reset:
        _reset_peak()

    start = time.perf_counter()
    entropy = run(hidden)
    seconds = time.perf_counter() - start
    if can_reset:
        peak_kib = _status_kib("VmHWM") - baseline_kib
    else:  # exact once the run sets a new process high, as a path of hundreds of MB does
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kib  # KiB on Linux
    for _ in range(args.repeats - 1):
        start = time.perf_counter()
        run(hidden)
        seconds = min(seconds, time.perf_counter() - start)
    torch.save(entropy, args.worker_out)
    probe = "VmHWM" if can_reset else "ru_maxrss"
    print(json.dumps({"seconds": seconds, "peak_bytes": peak_kib * 1024, "probe": probe}))


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------


def run_path(path: str, args: argparse.Namespace, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", path, "--worker_out", str(out)]
    for name in ("batch", "seq", "width", "vocab", "chunk_size", "threads", "repeats"):
        cmd += [f"--{name}", str(getattr(args, name))]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{path} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=151_936)
    parser.add_argument("--chunk_size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--worker", choices=["naive", "chunked"], help=argparse.SUPPRESS)
    parser.add_argument("--worker_out", type=Path, help=argparse.SUPPRESS)
    args = harness.parse(parser, quick={"seq": 256, "repeats": 1})
    if args.worker:
        worker(args)
        return 0

    tokens = args.batch * args.seq
    with tempfile.TemporaryDirectory() as tmp:
        naive = run_path("naive", args, Path(tmp) / "naive.pt")
        chunked = run_path("chunked", args, Path(tmp) / "chunked.pt")
        naive_h = torch.load(Path(tmp) / "naive.pt")  # [B, T]
        chunked_h = torch.load(Path(tmp) / "chunked.pt")  # [B, T]
    diff = (naive_h - chunked_h).abs().max().item()
    # Which path carries the difference: both against a float64 reference on the first 256 tokens.
    hidden, weight = make_inputs(args.batch, args.seq, args.width, args.vocab)
    rows = min(256, args.seq)
    reference = naive_entropy(hidden[:1, :rows].double(), weight.double())  # [1, rows]
    naive_err = (naive_h[:1, :rows].double() - reference).abs().max().item()
    chunked_err = (chunked_h[:1, :rows].double() - reference).abs().max().item()
    del hidden, weight, reference

    time_ratio = chunked["seconds"] / naive["seconds"]
    memory_ratio = chunked["peak_bytes"] / naive["peak_bytes"]
    harness.print_table(
        f"entropy from hidden: B={args.batch} T={args.seq} (N={tokens}) h={args.width} V={args.vocab}, "
        f"chunk_size={args.chunk_size}, threads={args.threads}; best of {args.repeats}",
        ["path", "seconds", "peak extra MiB", "probe", f"max err vs float64 ({rows} tokens)"],
        [
            [name, f"{r['seconds']:.3f}", f"{r['peak_bytes'] / 2**20:.1f}", r["probe"], f"{err:.2e}"]
            for name, r, err in (("naive", naive, naive_err), ("chunked", chunked, chunked_err))
        ],
        caption=f"naive float32 [N, V] logits alone: {tokens * args.vocab * 4 / 2**30:.2f} GiB",
    )
    checks = [
        harness.Check("time ratio (chunked / naive)", time_ratio, TIME_RATIO_TARGET),
        harness.Check("peak-memory ratio (chunked / naive)", memory_ratio, MEMORY_RATIO_TARGET),
        harness.Check("max |ΔH| (nats)", diff, MAX_ABS_DIFF_TARGET),
    ]
    results = {
        "tokens": tokens,
        "naive": naive,
        "chunked": chunked,
        "time_ratio": time_ratio,
        "memory_ratio": memory_ratio,
        "max_abs_diff": diff,
        "float64_error": {"naive": naive_err, "chunked": chunked_err, "tokens": rows},
    }
    return harness.finish(__file__, args, results, checks)


if __name__ == "__main__":
    sys.exit(main())
