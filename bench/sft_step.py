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
take turns burst by burst (round robin, ``--repeats`` rounds after a warm-up round), so
neighbouring bursts share the load of a shared machine; the ratio is taken per round and its
median reported. Two clocks: wall and this
process's CPU time (the work done rather than the waiting; they agree on an idle machine with
one thread). Prints, never asserts.

    .venv/bin/python bench/sft_step.py                       # 640-item lab, batch 32
    .venv/bin/python bench/sft_step.py --variants old,egt,bare --repeats 7 --threads 1

Target (issue 15): egt / bare ≤ 1.3.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness

TARGET = 1.3
VARIANTS = ("old", "old_nogc", "pretok", "egt", "bare")


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


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=5)
    parser.add_argument("--lab", default="", help="A shapes-lab folder; default: a fresh one of --items SFT items.")
    parser.add_argument("--items", type=int, default=640)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=11, help="Steps per burst (the first is not timed).")
    parser.add_argument("--variants", default="old,egt,bare", help=f"Comma-separated, of {', '.join(VARIANTS)}.")
    args = harness.parse(parser, quick={"items": 64, "batch": 8, "steps": 3, "repeats": 1, "variants": "egt,bare"})
    import torch
    from transformers import PrinterCallback
    from trl import SFTConfig

    from egt.lab import LabConfig, make_lab
    from egt.models.training import cpu_sft_defaults
    from egt.records import read_pairs
    from egt.train.sft import JudgeSFTArgs, load_sft_model, make_sft_trainer, select_traces

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    work = Path(tempfile.mkdtemp(prefix="egt-sft-step-"))
    lab = Path(args.lab) if args.lab else work / "lab"
    if not args.lab:
        make_lab(LabConfig(output_dir=str(lab), n_sft=args.items, n_rl_pool=8, n_test=8, seed=args.seed))
    pairs = read_pairs(lab / "sft.jsonl")
    base = {
        **cpu_sft_defaults(),
        "per_device_train_batch_size": args.batch,
        "max_steps": args.steps,
        "disable_tqdm": True,
        "output_dir": str(work / "ckpt"),
        "seed": args.seed,
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
    for r in range(args.repeats + 1):  # round 0 warms up
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
    shape = (
        f", seq len {batch0['input_ids'].shape[1]}, {int((batch0['labels'] != -100).sum())} loss tokens / batch"
        if batch0
        else ""
    )
    result = {"params": n_params, "setup_seconds": setup_s, "variants": {}, "ratios": {}}
    rows = []
    for v in variants:
        wall, cpu = statistics.median(clocks[v].wall), statistics.median(clocks[v].cpu)
        result["variants"][v] = {"wall_s": wall, "cpu_s": cpu}
        rows.append([f"{v} step", f"{wall * 1000:.1f} ms", f"{cpu * 1000:.1f} ms"])
    checks = []
    baselines = [("bare", v) for v in variants if v != "bare"] if "bare" in variants else []
    if "old" in variants and "egt" in variants:
        baselines.append(("egt", "old"))
    for base_name, v in baselines:
        rw = harness.paired_ratio([a[0] for a in per_round[v]], [b[0] for b in per_round[base_name]])
        rc = harness.paired_ratio([a[1] for a in per_round[v]], [b[1] for b in per_round[base_name]])
        result["ratios"][f"{v}/{base_name}"] = {"wall": rw, "cpu": rc}
        rows.append([f"{v} / {base_name}", f"{rw:.2f}x", f"{rc:.2f}x"])
        if (v, base_name) == ("egt", "bare"):
            checks += [
                harness.Check(f"egt / bare step, {clock}", r, TARGET) for clock, r in (("wall", rw), ("CPU", rc))
            ]
    harness.print_table(
        f"tiny judge: {n_params / 1e6:.2f}M params, batch {args.batch}, {len(examples)} examples, torch threads "
        f"{torch.get_num_threads()}, {args.repeats} rounds x {args.steps - 1} timed steps{shape}",
        ["", "wall", "CPU"],
        rows,
        caption=f"trainer setup (incl. pre-tokenisation): {setup_s:.1f} s for {len(trainers)} trainer(s); "
        "ratios: median over rounds; old / egt is the speed-up of issue 15",
    )
    shutil.rmtree(work, ignore_errors=True)
    return harness.finish(__file__, args, result, checks)


if __name__ == "__main__":
    sys.exit(main())
