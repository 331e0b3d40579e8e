"""Step time of ``egt train sft`` (TRL's SFTTrainer) against a bare PyTorch loop, same model, same batches.

Variants (``--variants``, interleaved):

- ``egt``: what ``egt train sft`` runs: examples tokenised once, a collator that only pads,
  the completion-only LM head, ``cpu_sft_defaults()`` (no gradient checkpointing).
- ``bare``: a bare loop over the same model config and the batches the ``egt`` trainer's own
  dataloader yields, collated up front: ``model(**batch).loss``, backward, ``AdamW.step``,
  ``zero_grad``. Nothing else.
- ``old``: the path before issue 15: TRL's vision collator (chat template, tokeniser and image
  processor on every batch), TRL's fused LM head over every position, gradient checkpointing on
  (``SFTConfig``'s default).
- ``old_nogc``: ``old`` without gradient checkpointing; ``pretok``: pre-tokenised data with
  TRL's fused head (no checkpointing). Together they split the gain.

A trainer's step time is the interval between consecutive ``on_step_end`` callbacks, so it holds
data loading, collation, forward, backward, clipping, optimiser, scheduler and logging; each
burst is one ``trainer.train()`` of ``--steps`` steps, the first of which is not timed. Variants
take turns burst by burst (round robin), so neighbouring bursts share the load of a shared
machine; the ratio is taken per round and its median reported. Two clocks: wall and this
process's CPU time (the work done rather than the waiting; they agree on an idle machine with
one thread). Prints, never asserts.

    .venv/bin/python bench/sft_step.py                       # 640-item lab, batch 32
    .venv/bin/python bench/sft_step.py --variants old,egt,bare --rounds 7 --threads 2

Target (issue 15): egt / bare ≤ 1.3.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGET = 1.3
VARIANTS = ("old", "old_nogc", "pretok", "egt", "bare")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lab", default="", help="A shapes-lab folder; default: a fresh one of --items SFT items.")
    p.add_argument("--items", type=int, default=640)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=11, help="Steps per burst (the first is not timed).")
    p.add_argument("--rounds", type=int, default=5, help="Bursts per variant, round robin.")
    p.add_argument("--variants", default="old,egt,bare", help=f"Comma-separated, of {', '.join(VARIANTS)}.")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (0: torch's default). 1 is fastest on a shared 2-core box: with 2, "
        "other processes' load makes OpenMP wait and a step takes seconds.",
    )
    p.add_argument("--out", default="", help="Optional JSON file for the numbers.")
    return p.parse_args()


class StepClock:
    """Wall and CPU seconds between consecutive optimiser steps."""

    def __init__(self):
        self.wall, self.cpu, self._last = [], [], None

    def tick(self):
        now = (time.perf_counter(), time.process_time())
        if self._last is not None:
            self.wall.append(now[0] - self._last[0])
            self.cpu.append(now[1] - self._last[1])
        self._last = now

    def reset(self):
        self._last = None


def make_callback(clock: StepClock):
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            clock.reset()

        def on_step_end(self, *a, **k):
            clock.tick()

    return Clock()


def main() -> None:
    args = parse()
    import torch
    from transformers import PrinterCallback
    from trl import SFTConfig

    from egt.lab import LabConfig, make_lab
    from egt.records import read_pairs
    from egt.train.sft import JudgeSFTArgs, cpu_sft_defaults, load_sft_model, make_sft_trainer, select_traces

    if args.threads:
        torch.set_num_threads(args.threads)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    work = Path(tempfile.mkdtemp(prefix="egt-sft-step-"))
    lab = Path(args.lab) if args.lab else work / "lab"
    if not args.lab:
        make_lab(LabConfig(out=str(lab), n_sft=args.items, n_rl_pool=8, n_test=8, seed=0))
    pairs = read_pairs(lab / "sft.jsonl")
    base = {
        **cpu_sft_defaults(),
        "per_device_train_batch_size": args.batch,
        "max_steps": args.steps,
        "disable_tqdm": True,
        "output_dir": str(work / "ckpt"),
    }
    config = SFTConfig(**base)
    examples, _ = select_traces(pairs, "random", config.seed, fidelity_filter=True)
    sft_args = JudgeSFTArgs(data=str(lab / "sft.jsonl"))
    model0, processor, is_vision = load_sft_model(sft_args, pairs, config)
    n_params = sum(p.numel() for p in model0.parameters())

    settings = {  # variant: (pretokenize, completion_head, gradient_checkpointing)
        "old": (False, False, True),
        "old_nogc": (False, False, False),
        "pretok": (True, False, False),
        "egt": (True, True, False),
    }
    trainers, clocks = {}, {v: StepClock() for v in variants}
    t0 = time.perf_counter()
    for v in variants:
        if v == "bare":
            continue
        pretok, head, gc = settings[v]
        cfg = SFTConfig(**{**base, "gradient_checkpointing": gc})
        a = dataclasses.replace(sft_args, pretokenize=pretok, completion_head=head)
        trainers[v] = make_sft_trainer(
            copy.deepcopy(model0), processor, is_vision, examples, lab, a, cfg, callbacks=[make_callback(clocks[v])]
        )
        trainers[v].remove_callback(PrinterCallback)  # the logs are still computed, just not printed
    setup_s = time.perf_counter() - t0

    bare_batches, bare_model, bare_opt = [], None, None
    if "bare" in variants:
        source = make_sft_trainer(copy.deepcopy(model0), processor, is_vision, examples, lab, sft_args, config)
        for batch in source.get_train_dataloader():
            bare_batches.append({k: v for k, v in batch.items()})
            if len(bare_batches) == args.steps:
                break
        bare_model = copy.deepcopy(model0).train()
        bare_opt = torch.optim.AdamW(bare_model.parameters(), lr=config.learning_rate)

    def bare_burst():
        clock = clocks["bare"]
        clock.reset()
        for batch in bare_batches:
            bare_model(**batch).loss.backward()
            bare_opt.step()
            bare_opt.zero_grad(set_to_none=True)
            clock.tick()

    per_round = {v: [] for v in variants}
    for r in range(args.rounds + 1):  # round 0 warms up
        for v in variants:
            clock = clocks[v]
            start = len(clock.wall)
            if v == "bare":
                bare_burst()
            else:
                trainers[v].train()
            wall, cpu = clock.wall[start:], clock.cpu[start:]
            if r > 0:
                per_round[v].append((statistics.median(wall), statistics.median(cpu)))
            if r == 0:
                del clock.wall[start:], clock.cpu[start:]

    batch0 = bare_batches[0] if bare_batches else None
    print(
        f"tiny judge: {n_params / 1e6:.2f}M params, batch {args.batch}, {len(examples)} examples, "
        f"torch threads {torch.get_num_threads()}, {args.rounds} rounds x {args.steps - 1} timed steps"
        + (
            f", seq len {batch0['input_ids'].shape[1]}, {int((batch0['labels'] != -100).sum())} loss tokens / batch"
            if batch0
            else ""
        )
    )
    print(f"trainer setup (incl. pre-tokenisation): {setup_s:.1f} s for {len(trainers)} trainer(s)")
    result = {"variants": {}, "ratios": {}}
    for v in variants:
        wall = statistics.median(clocks[v].wall)
        cpu = statistics.median(clocks[v].cpu)
        result["variants"][v] = {"wall_s": round(wall, 4), "cpu_s": round(cpu, 4)}
        print(f"  {v:9s} step  wall {wall * 1000:7.1f} ms   cpu {cpu * 1000:7.1f} ms")
    if "bare" in variants:
        for v in variants:
            if v == "bare":
                continue
            rw = statistics.median(a[0] / b[0] for a, b in zip(per_round[v], per_round["bare"]))
            rc = statistics.median(a[1] / b[1] for a, b in zip(per_round[v], per_round["bare"]))
            result["ratios"][f"{v}/bare"] = {"wall": round(rw, 3), "cpu": round(rc, 3)}
            note = f"   (target <= {TARGET})" if v == "egt" else ""
            print(f"  {v:9s} / bare   wall {rw:5.2f}x   cpu {rc:5.2f}x{note}")
    if "old" in variants and "egt" in variants:
        rw = statistics.median(a[0] / b[0] for a, b in zip(per_round["old"], per_round["egt"]))
        result["ratios"]["old/egt"] = {"wall": round(rw, 3)}
        print(f"  old / egt        wall {rw:5.2f}x  (speed-up)")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
