"""GPU check (issue 22): what only a CUDA device can tell, in one script for one H100 in ≤ 6 minutes.

Everything is built here (labs, the tiny judge, random weights): nothing is downloaded. Sections
(``--sections a,b,c``):

(a) **Tiny judge, the device against the CPU**, float32 on both (the untrained tiny lab judge):

    * teacher-forced entropies (``egt.entropy.teacher_forced.rollout_entropies``) of the *same*
      rollouts (sampled on the CPU by ``egt.entropy.sampling.generate_rollouts``) on each device:
      max |ΔH|; and on each device its own rollouts' generation-time entropies against the pass;
    * ``--sft_steps`` SFT steps (``egt.train.sft.make_sft_trainer``, the same data order): loss per step;
    * ``--rl_steps`` GRPO steps with GTPO advantages (``egt.rl.trainer.JudgeGRPOTrainer``, a stand-in
      accuracy reward as in tests/rl/test_trainer.py: the untrained judge never writes a verdict):
      loss per step, and the rollout-entropy agreement — the entropies GTPO used (recorded while
      generating) against the trainer's own forward pass over the same completions (max |Δ|).
      Sampling draws from each device's own random stream, so the two devices' RL losses differ
      (different completions); the SFT losses and the entropies of the same tokens must not.

(b) **A random-initialised model with Qwen2.5-VL-7B-Instruct's real shapes** (``egt.models.real_shaped``:
    8.3B parameters, vocabulary 151,936, the release's generation config dropped as ``load_model``
    drops it), bf16, judge prompts (``r1_reward`` style, as the 7B configs) with ``--image_size`` px images:

    * generation at ``--gen_rows`` rows (64 = configs/score/qwen2_5_vl_7b_vllm.yaml's 16 items × 4
      rollouts; 16 = configs/rl/qwen2_5_vl_7b_8gpu.yaml's per-device generation batch,
      per_device_train_batch_size 4 × gradient_accumulation_steps 4) × ``--new_tokens`` (256: the
      configs allow 1,024; 256 keeps the check inside 6 minutes), τ = 1: tokens/s and peak memory of
      plain ``generate`` (``do_sample``), our sampler without entropies and with them
      (``generate_rollouts(record_entropy=False/True)``); the sides interleaved, ``--repeats`` rounds;
    * the teacher-forced pass at ``--tf_shapes`` (rows × tokens: the generation shapes over the
      sampled tokens, and 4 × 1,024 = the RL config's per-device batch at its max_completion_length,
      over random token ids): time, peak memory, and |ΔH| against a float32 reference — the same
      weights upcast to float32, the same pass — for the bf16 pass (float32 LM head) and, where the
      tokens were sampled, for the entropies recorded during bf16 generation.

(c) **The fraction of weights one optimiser step moves**: ``torch.optim.AdamW`` (weight decay 0, the
    Trainer's default) at each ``--lrs`` on one fixed batch of ``--opt_tokens`` random tokens, a
    real-width slice of the 7B (its hidden and MLP sizes and vocabulary, ``--opt_layers`` decoder
    layers): parameters stored in bf16 (no master copy: each update is rounded to bf16) against
    float32 master parameters under bf16 autocast — the fraction of the masters that moved and of
    their bf16 rounding. Adam's first step moves each weight by about lr; at |w| ≈ 0.02 a bf16 ulp is ~1e-4.

``--dry_run`` (= ``--quick``, what the tests run): NARROW sizes (egt.models.real_shaped) on the CPU
in under a minute; on a CPU-only machine (a) then compares the CPU with itself, so ΔH = 0 and the
SFT and RL losses are equal — a check of the script, not of a GPU. The full check needs a CUDA
device; without one it says so, writes ``"skipped"`` and exits 0. Targets print PASS / FAIL; nothing
asserts. Run (docs/results/gpu_check.md says how on an offline GPU box)::

    python bench/gpu_check.py --output runs/bench/gpu_check.json          # one GPU
    python bench/gpu_check.py --dry_run                                   # CPU, small
"""

from __future__ import annotations

import dataclasses
import gc
import math
import platform
import sys
import tempfile
from pathlib import Path

import torch

import harness

DRY_RUN = {  # --dry_run / --quick sizes: CPU, under a minute
    "threads": 1,  # tiny models on a shared CPU run faster on one thread
    "tiny_items": 1,
    "tiny_tokens": 8,
    "sft_items": 16,
    "sft_batch": 2,
    "rl_items": 2,
    "rl_tokens": 8,
    "gen_rows": "4",
    "new_tokens": 8,
    "tf_shapes": "4x8,2x16",
    "image_size": 56,
    "opt_layers": 2,
    "opt_tokens": 16,
}
ROLLOUTS = 4  # rollouts per item, as configs/score/qwen2_5_vl_7b_vllm.yaml
MAX_TF_DIFF = 1e-4  # the device's float32 teacher-forced entropies against the CPU's
MAX_LOSS_DIFF = 1e-4  # relative, per SFT step
MAX_ROLLOUT_ENTROPY_DIFF = 1e-4  # GTPO's recorded entropies against the forward pass (float32)
MAX_SAMPLER_RATIO = 1.15  # our sampler (with entropies) / plain generate, time (bench/scoring_overhead.py)
MAX_TF_RATIO = 0.5  # teacher-forced pass / the generation it replaces (bench/teacher_forced_entropy.py)
GIB = 2**30


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


class Device:
    """The device under test: its name, clock sync and memory counters (memory: CUDA only, else None)."""

    def __init__(self, name: str):
        self.name = name
        self.cuda = name.startswith("cuda")
        self.sync = torch.cuda.synchronize if self.cuda else None

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated() / GIB if self.cuda else None

    def allocated_gib(self) -> float | None:
        return torch.cuda.memory_allocated() / GIB if self.cuda else None

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()


def fmt(x, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def max_abs_diff(a, b, lengths) -> float:
    """max |a − b| over the first ``lengths[r]`` entries of each row r (``[R, T]`` tensors)."""
    out = 0.0
    for row, n in enumerate(lengths):
        if n:
            out = max(out, (a[row, :n].float() - b[row, :n].float()).abs().max().item())
    return out


def mean_abs_diff(a, b, lengths) -> float:
    total, count = 0.0, 0
    for row, n in enumerate(lengths):
        total += (a[row, :n].float() - b[row, :n].float()).abs().sum().item()
        count += n
    return total / max(count, 1)


def judge_requests(pairs, images_root, rows: int, seed: int):
    """``rows`` judge requests of a VLM, ⌈rows / 4⌉ items × 4 rollouts (as ``egt score``), and their seeds."""
    from score_backends_gpu import make_requests

    items = -(-rows // ROLLOUTS)
    if len(pairs) < items:
        raise ValueError(f"{rows} rows need {items} items, the data has {len(pairs)}")
    requests, seeds = make_requests(pairs[:items], images_root, True, ROLLOUTS, seed)
    return requests[:rows], seeds[:rows]


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """``"64x256,4x1024"`` → ``[(64, 256), (4, 1024)]``."""
    shapes = []
    for part in text.split(","):
        rows, tokens = part.strip().lower().split("x")
        shapes.append((int(rows), int(tokens)))
    return shapes


def make_lab(work: Path, name: str, seed: int, n_sft: int, n_pool: int, image_size: int = 56) -> Path:
    from egt import lab

    out = work / name
    lab.make_lab(
        lab.LabConfig(output_dir=str(out), n_sft=n_sft, n_rl_pool=n_pool, n_test=1, seed=seed, image_size=image_size)
    )
    return out


# ------------------------------------------------------------------------------------------------
# (a) the tiny judge on the device against the CPU
# ------------------------------------------------------------------------------------------------


def judge_accuracy(prompts, completions, **kwargs):
    """Stand-in accuracy reward (tests/rl/test_trainer.py): every other completion is "correct", so
    each group has both O+ and O− and GTPO's entropy shaping acts, whatever the untrained judge writes."""
    return [float(k % 2) for k in range(len(completions))]


def tiny_entropies(args, lab: Path, judge: Path, device: str) -> dict:
    from egt.entropy.sampling import generate_rollouts
    from egt.entropy.teacher_forced import rollout_entropies
    from egt.models.load import load_model
    from egt.records import default_images_root, read_pairs

    data = lab / "rl_pool.jsonl"
    pairs = read_pairs(data)[: args.tiny_items]
    cpu = load_model(str(judge), device="cpu", dtype="float32")
    on_device = load_model(str(judge), device=device, dtype="float32")  # a second copy also when device is cpu
    requests, seeds = judge_requests(pairs, default_images_root(data), len(pairs) * ROLLOUTS, args.seed)
    kw = dict(temperature=1.0, max_new_tokens=args.tiny_tokens, style="compact")
    gen = generate_rollouts(cpu, requests, seeds, **kw)  # the CPU's rollouts: the shared tokens

    def teacher_forced(loaded, rollouts):
        return rollout_entropies(
            loaded,
            requests,
            rollouts.ids,
            lengths=rollouts.lengths,
            temperature=1.0,
            style="compact",
            max_new_tokens=args.tiny_tokens,
        )

    h_cpu, h_dev = teacher_forced(cpu, gen), teacher_forced(on_device, gen)
    gen_dev = generate_rollouts(on_device, requests, seeds, **kw)  # the device's own rollouts
    h_dev_own = teacher_forced(on_device, gen_dev)
    return {
        "rows": len(requests),
        "scored_tokens": sum(gen.lengths),
        "max_abs_dH_teacher_forced_device_vs_cpu": max_abs_diff(h_dev, h_cpu, gen.lengths),
        "mean_entropy_cpu": float(sum(h_cpu[r, :n].sum().item() for r, n in enumerate(gen.lengths)))
        / max(sum(gen.lengths), 1),
        "max_abs_dH_generation_vs_teacher_forced_cpu": max_abs_diff(gen.entropies, h_cpu, gen.lengths),
        "max_abs_dH_generation_vs_teacher_forced_device": max_abs_diff(gen_dev.entropies, h_dev_own, gen_dev.lengths),
        "same_tokens_sampled_on_device": bool(gen.ids.shape == gen_dev.ids.shape and (gen.ids == gen_dev.ids).all()),
    }


def sft_losses(args, lab: Path, judge: Path, device: str, out: Path) -> list[float]:
    from transformers import PrinterCallback
    from trl import SFTConfig

    from egt.models.load import load_model
    from egt.models.training import cpu_sft_defaults
    from egt.records import read_pairs
    from egt.train.sft import JudgeSFTArgs, make_sft_trainer, select_traces

    config = SFTConfig(
        **{
            **cpu_sft_defaults(),
            "use_cpu": device == "cpu",
            "output_dir": str(out),
            "max_steps": args.sft_steps,
            "per_device_train_batch_size": args.sft_batch,
            "logging_steps": 1,
            "warmup_steps": 0,
            "lr_scheduler_type": "constant",
            "disable_tqdm": True,
            "seed": args.seed,
        }
    )
    pairs = read_pairs(lab / "sft.jsonl")
    examples, _ = select_traces(pairs, "random", config.seed, fidelity_filter=True)
    loaded = load_model(str(judge), device=device, dtype="float32", for_training=True)  # float32 on both
    sft_args = JudgeSFTArgs(data=str(lab / "sft.jsonl"), model=str(judge))
    trainer = make_sft_trainer(loaded.model, loaded.processor, loaded.is_vision, examples, lab, sft_args, config)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]


def rl_steps(args, lab: Path, judge: Path, device: str, out: Path) -> dict:
    from transformers import PrinterCallback
    from trl import GRPOConfig

    from egt.records import read_pairs
    from egt.rl.config import cpu_rl_defaults
    from egt.rl.dataset import build_rl_dataset, presentation_rows
    from egt.rl.trainer import JudgeGRPOTrainer

    class Probe(JudgeGRPOTrainer):
        """Keeps, per generation batch, the entropies GTPO used and the forward pass's of the same rows."""

        agreement: list[float]
        entropy_means: list[float]

        def _token_advantages(self, mask, entropies, mode):
            self._used = None if entropies is None else entropies.detach().float()
            return super()._token_advantages(mask, entropies, mode)

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            mask = output["completion_mask"] != 0
            forward = self._rollout_entropy_pass(output, "train").float()  # [B, T], the policy before its step
            used = self._used[:, : forward.size(1)]
            self.agreement.append((used - forward)[mask].abs().max().item() if mask.any() else 0.0)
            self.entropy_means.append(forward[mask].mean().item() if mask.any() else 0.0)
            return output

    pairs = read_pairs(lab / "rl_pool.jsonl")[: args.rl_items]
    dataset = build_rl_dataset(pairs, presentation_rows(pairs, "random", args.seed), lab, "compact", True)
    config = GRPOConfig(
        **{
            **cpu_rl_defaults(),
            "use_cpu": device == "cpu",
            "output_dir": str(out),
            "max_steps": args.rl_steps,
            "per_device_train_batch_size": len(pairs) * ROLLOUTS,
            "num_generations": ROLLOUTS,
            "max_completion_length": args.rl_tokens,
            "model_init_kwargs": {"dtype": "float32"},
            "seed": args.seed,
        }
    )
    trainer = Probe(
        model=str(judge), reward_funcs=[judge_accuracy], args=config, train_dataset=dataset, advantage_estimator="gtpo"
    )
    trainer.agreement, trainer.entropy_means = [], []
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return {
        "loss": [float(h["loss"]) for h in trainer.state.log_history if "loss" in h],
        "rollout_entropy_max_abs_diff_recorded_vs_forward": trainer.agreement,
        "rollout_entropy_mean": trainer.entropy_means,
    }


def section_a(args, work: Path, dev: Device) -> tuple[dict, list]:
    from egt.models.tiny import build_tiny_judge
    from egt.records import read_pairs
    from egt.train.sft import lab_corpus

    lab = make_lab(work, "lab_a", args.seed + 1, args.sft_items, max(args.tiny_items, args.rl_items))
    judge = build_tiny_judge(lab_corpus(read_pairs(lab / "sft.jsonl"), "compact"), work / "tiny_judge")
    sides = {"device": dev.name, "cpu": "cpu"}
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # float32 means float32
    try:
        entropies = tiny_entropies(args, lab, judge, dev.name)
        sft = {side: sft_losses(args, lab, judge, name, work / f"sft_{side}") for side, name in sides.items()}
        rl = {side: rl_steps(args, lab, judge, name, work / f"rl_{side}") for side, name in sides.items()}
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    sft_rel = max((abs(a - b) / max(abs(b), 1e-12) for a, b in zip(sft["device"], sft["cpu"])), default=float("nan"))
    result = {
        "devices": sides,
        "tf32": False,
        "teacher_forced": entropies,
        "sft_loss": sft,
        "sft_loss_max_rel_diff": sft_rel,
        "rl_gtpo": rl,
    }
    rows = [
        ["teacher-forced max |ΔH|, same tokens", fmt(entropies["max_abs_dH_teacher_forced_device_vs_cpu"], ".2e"), "-"],
        [
            "generation vs teacher-forced max |ΔH|",
            fmt(entropies["max_abs_dH_generation_vs_teacher_forced_device"], ".2e"),
            fmt(entropies["max_abs_dH_generation_vs_teacher_forced_cpu"], ".2e"),
        ],
    ]
    for i in range(max(len(sft["device"]), len(sft["cpu"]))):
        rows.append([f"SFT loss, step {i + 1}", *(fmt(sft[s][i], ".6f") if i < len(sft[s]) else "-" for s in sides)])
    for i in range(max(len(rl["device"]["loss"]), len(rl["cpu"]["loss"]))):
        cells = [fmt(rl[s]["loss"][i], ".6g") if i < len(rl[s]["loss"]) else "-" for s in sides]
        rows.append([f"GRPO+GTPO loss, step {i + 1}", *cells])
    for i in range(max(len(rl[s]["rollout_entropy_max_abs_diff_recorded_vs_forward"]) for s in sides)):
        cells = [
            fmt(rl[s]["rollout_entropy_max_abs_diff_recorded_vs_forward"][i], ".2e")
            if i < len(rl[s]["rollout_entropy_max_abs_diff_recorded_vs_forward"])
            else "-"
            for s in sides
        ]
        rows.append([f"GTPO rollout entropy, recorded vs forward max |Δ|, batch {i + 1}", *cells])
    harness.print_table(
        f"(a) tiny judge, float32: {dev.name} against cpu ({entropies['rows']} rollouts, "
        f"{entropies['scored_tokens']} scored tokens; SFT {args.sft_steps} steps; GRPO {args.rl_steps} steps, GTPO)",
        ["measure", f"{dev.name} (under test)", "cpu (reference)"],
        rows,
        caption=(
            f"SFT loss max relative difference {fmt(sft_rel, '.2e')}. RL losses differ between devices when the "
            "devices sample different completions (each its own random stream); on one device they must agree."
        ),
    )
    checks = [
        harness.Check(
            f"(a) teacher-forced max |ΔH| {dev.name} vs cpu (float32)",
            entropies["max_abs_dH_teacher_forced_device_vs_cpu"],
            MAX_TF_DIFF,
        ),
        harness.Check(f"(a) SFT loss max rel. diff {dev.name} vs cpu", sft_rel, MAX_LOSS_DIFF),
    ]
    for side in sides:
        diffs = rl[side]["rollout_entropy_max_abs_diff_recorded_vs_forward"]
        checks.append(
            harness.Check(
                f"(a) GTPO rollout entropy recorded vs forward, {sides[side]} ({side})",
                max(diffs, default=float("nan")),
                MAX_ROLLOUT_ENTROPY_DIFF,
            )
        )
    return result, checks


# ------------------------------------------------------------------------------------------------
# (b) the 7B's shapes in bf16: generation and the teacher-forced pass
# ------------------------------------------------------------------------------------------------


def real_shaped_judge(args, sizes, lab: Path, dev: Device):
    """A LoadedModel: random weights at ``sizes`` (bf16), the real-vocabulary tokenizer, the released
    image-processor settings, TRL's Qwen2.5-VL chat template and the released generation config."""
    from transformers import GenerationConfig, Qwen2VLImageProcessorPil
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from egt.models.generation import reset_generation_config
    from egt.models.load import LoadedModel
    from egt.models.processors import set_image_bounds
    from egt.models.real_shaped import GENERATION_CONFIG, IMAGE_PROCESSOR, build_model, build_tokenizer
    from egt.models.tiny import TinyVLProcessor
    from egt.records import read_pairs
    from egt.train.sft import lab_corpus

    tokenizer = build_tokenizer(lab_corpus(read_pairs(lab / "sft.jsonl"), "r1_reward"))
    tokenizer.padding_side = "left"  # as load_model sets it for generation
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=IMAGE_PROCESSOR["min_pixels"],
        max_pixels=IMAGE_PROCESSOR["max_pixels"],
        patch_size=IMAGE_PROCESSOR["patch_size"],
        temporal_patch_size=IMAGE_PROCESSOR["temporal_patch_size"],
        merge_size=IMAGE_PROCESSOR["merge_size"],
        image_mean=IMAGE_PROCESSOR["image_mean"],
        image_std=IMAGE_PROCESSOR["image_std"],
    )  # the released settings; the PIL processor needs no torchvision (the released folder's video processor does)
    processor = TinyVLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=qwen2_5_vl_chat_template
    )
    model = build_model(sizes, seed=args.seed, dtype=torch.bfloat16, device=dev.name).eval()
    model.generation_config = GenerationConfig(
        **{k: v for k, v in GENERATION_CONFIG.items() if k != "transformers_version"}
    )
    reset_generation_config(model)  # as load_model does: our sampling definition, not the release's
    set_image_bounds(processor)  # as load_model does: the default cap of 1,280 tokens per image
    return LoadedModel(model=model, processor=processor, is_vision=True)


def time_generation(args, loaded, requests, seeds, style: str, dev: Device):
    """Plain ``generate``, our sampler without and with entropies on ``requests``: interleaved rounds
    after an untimed 2-token warm-up of each. Returns samples, last outputs, peak GiB and steps per side."""
    from egt.entropy.sampling import generate_rollouts
    from egt.judge.generative import GenerationSettings, encode_batch, generation_kwargs

    def plain(n=args.new_tokens):
        enc = encode_batch(loaded, requests, style)
        kwargs = generation_kwargs(loaded, GenerationSettings(max_new_tokens=n, temperature=1.0))
        out = loaded.model.generate(**enc, **kwargs)
        return out[:, enc["input_ids"].shape[1] :]

    def sampler(record: bool, n=args.new_tokens):
        return generate_rollouts(
            loaded, requests, seeds, temperature=1.0, max_new_tokens=n, style=style, record_entropy=record
        )

    peaks: dict[str, float | None] = {}
    steps: dict[str, int] = {}

    def timed(name, fn):
        def run():
            dev.reset_peak()
            out = fn()
            peaks[name] = dev.peak_gib()
            steps[name] = (out if isinstance(out, torch.Tensor) else out.ids).shape[1]
            return out

        return run

    plain(2), sampler(False, 2), sampler(True, 2)  # kernels, allocator, tokenizer caches: not timed
    samples, outputs = harness.interleave(
        {
            "plain generate": timed("plain generate", plain),
            "sampler, no entropy": timed("sampler, no entropy", lambda: sampler(False)),
            "sampler + entropy": timed("sampler + entropy", lambda: sampler(True)),
        },
        repeats=args.repeats,
        warmup=0,
        sync=dev.sync,
    )
    return samples, outputs, peaks, steps


def section_b(args, work: Path, dev: Device) -> tuple[dict, list]:
    from egt.entropy.teacher_forced import rollout_entropies
    from egt.judge.generative import encode_batch
    from egt.models.real_shaped import NARROW, QWEN2_5_VL_7B, REGULAR_TOKENS, describe
    from egt.records import default_images_root, read_pairs

    sizes = NARROW if args.dry_run else QWEN2_5_VL_7B
    gen_rows = [int(r) for r in args.gen_rows.split(",") if r.strip()]
    shapes = parse_shapes(args.tf_shapes)
    most_rows = max(gen_rows + [r for r, _ in shapes])
    lab = make_lab(work, "lab_b", args.seed + 2, 64, -(-most_rows // ROLLOUTS), args.image_size)
    data = lab / "rl_pool.jsonl"
    pairs, root = read_pairs(data), default_images_root(data)
    style = "r1_reward"
    dev.free()
    dev.reset_peak()
    loaded = real_shaped_judge(args, sizes, lab, dev)
    model = loaded.model
    n_params = sum(p.numel() for p in model.parameters())
    weights_gib = dev.allocated_gib()
    result: dict = {
        "sizes": describe(sizes),
        "params": n_params,
        "weights_gib": weights_gib,
        "image_size": args.image_size,
        "new_tokens": args.new_tokens,
        "generation": {},
        "teacher_forced": {},
    }

    # generation: plain generate, our sampler without and with entropies, interleaved
    cases = []  # (rows, tokens, requests, ids, lengths, generation entropies or None)
    gen_table, checks = [], []
    for rows in gen_rows:
        requests, seeds = judge_requests(pairs, root, rows, args.seed)
        prompt_len = encode_batch(loaded, requests, style)["input_ids"].shape[1]
        samples, outputs, peaks, steps = time_generation(args, loaded, requests, seeds, style, dev)
        entry = {"prompt_tokens": prompt_len}
        for name, s in samples.items():
            wall = s.median("wall")
            entry[name] = {
                "wall_s": wall,
                "steps": steps[name],
                "tokens_per_s": rows * steps[name] / wall,
                "peak_gib": peaks[name],
                "timings": s.summary(),
            }
            gen_table.append(
                [
                    f"{rows} × {args.new_tokens}",
                    name,
                    f"{wall:.3f}",
                    f"{rows * steps[name] / wall:,.0f}",
                    fmt(peaks[name], ".2f"),
                ]
            )
        ratio = harness.paired_ratio(samples["sampler + entropy"].wall, samples["plain generate"].wall)
        entry["ratio_sampler_entropy_vs_plain"] = ratio
        entry["ratio_sampler_vs_plain"] = harness.paired_ratio(
            samples["sampler, no entropy"].wall, samples["plain generate"].wall
        )
        result["generation"][str(rows)] = entry
        checks.append(
            harness.Check(f"(b) sampler + entropy / plain generate, {rows} rows, wall", ratio, MAX_SAMPLER_RATIO)
        )
        gen = outputs["sampler + entropy"]
        cases.append((rows, args.new_tokens, requests, gen.ids, gen.lengths, gen.entropies, entry))
    harness.print_table(
        f"(b) generation, {sizes_name(args)} shapes ({n_params / 1e9:.2f}B params, bf16, weights "
        f"{fmt(weights_gib, '.1f')} GiB), τ = 1, {args.image_size} px images, {args.repeats} round(s)",
        ["rows × new tokens", "side", "wall median s", "tokens/s", "peak GiB"],
        gen_table,
        caption="tokens/s = rows × decoding steps / wall; peak = torch.cuda.max_memory_allocated (CUDA only).",
    )

    # the teacher-forced pass: bf16 (float32 LM head) timed; float32 reference after
    generated = {(case[0], case[1]): case for case in cases}
    tf_cases = []
    gen_rng = torch.Generator().manual_seed(args.seed)
    for rows, tokens in shapes:
        if (rows, tokens) in generated:
            rows, tokens, requests, ids, lengths, gen_h, entry = generated[(rows, tokens)]
        else:  # random completions: the pass's cost and precision do not depend on where tokens came from
            requests, _ = judge_requests(pairs, root, rows, args.seed)
            ids = torch.randint(0, REGULAR_TOKENS, (rows, tokens), generator=gen_rng)
            lengths, gen_h, entry = [tokens] * rows, None, None
        tf_cases.append((rows, tokens, requests, ids, lengths, gen_h, entry))

    def teacher_forced(case):
        rows, tokens, requests, ids, lengths, _, _ = case
        return rollout_entropies(
            loaded, requests, ids, lengths=lengths, temperature=1.0, style=style, max_new_tokens=tokens
        )

    small = min(tf_cases, key=lambda c: c[0] * c[1])
    teacher_forced((small[0], 2, small[2], small[3][:, :2], [min(n, 2) for n in small[4]], None, None))  # warm-up
    bf16 = []
    for case in tf_cases:
        dev.reset_peak()
        h, wall, cpu = harness.measure(lambda case=case: teacher_forced(case), dev.sync)
        bf16.append((h, wall, cpu, dev.peak_gib()))
    model_dtype_gen = model.dtype
    model.float()  # the float32 reference: the same weights, upcast
    dev.free()
    tf_table = []
    for case, (h, wall, cpu, peak) in zip(tf_cases, bf16):
        rows, tokens, _, _, lengths, gen_h, entry = case
        ref = teacher_forced(case)
        key = f"{rows}x{tokens}"
        out = {
            "rows": rows,
            "tokens": tokens,
            "scored_tokens": sum(lengths),
            "source": "sampled" if gen_h is not None else "random ids",
            "wall_s": wall,
            "cpu_s": cpu,
            "peak_gib": peak,
            "max_abs_dH_bf16_vs_float32": max_abs_diff(h, ref, lengths),
            "mean_abs_dH_bf16_vs_float32": mean_abs_diff(h, ref, lengths),
            "mean_entropy_float32": float(sum(ref[r, :n].sum().item() for r, n in enumerate(lengths)))
            / max(sum(lengths), 1),
        }
        if gen_h is not None:
            out["max_abs_dH_generation_bf16_vs_float32"] = max_abs_diff(gen_h, ref, lengths)
            out["mean_abs_dH_generation_bf16_vs_float32"] = mean_abs_diff(gen_h, ref, lengths)
            out["ratio_vs_generation"] = wall / entry["sampler + entropy"]["wall_s"]
            checks.append(
                harness.Check(
                    f"(b) teacher-forced / generation, {rows} rows, wall", out["ratio_vs_generation"], MAX_TF_RATIO
                )
            )
        result["teacher_forced"][key] = out
        tf_table.append(
            [
                f"{rows} × {tokens}",
                out["source"],
                f"{wall:.3f}",
                fmt(peak, ".2f"),
                f"{out['max_abs_dH_bf16_vs_float32']:.2e} / {out['mean_abs_dH_bf16_vs_float32']:.1e}",
                "-"
                if gen_h is None
                else f"{out['max_abs_dH_generation_bf16_vs_float32']:.2e} / "
                f"{out['mean_abs_dH_generation_bf16_vs_float32']:.1e}",
                f"{out['mean_entropy_float32']:.3f}",
            ]
        )
    harness.print_table(
        f"(b) teacher-forced pass, {sizes_name(args)} shapes, {model_dtype_gen} backbone, float32 LM head in chunks",
        ["rows × tokens", "completions", "wall s", "peak GiB", "|ΔH| pass", "|ΔH| generation", "H̄ (nats)"],
        tf_table,
        caption="|ΔH|: max / mean against the float32 reference (the same weights upcast, the same pass). "
        "The generation's entropies come from bf16 logits rounded by generate before the float32 softmax.",
    )
    return result, checks


def sizes_name(args) -> str:
    return "NARROW (test)" if args.dry_run else "Qwen2.5-VL-7B"


# ------------------------------------------------------------------------------------------------
# (c) the fraction of weights one AdamW step moves: bf16 parameters vs float32 masters
# ------------------------------------------------------------------------------------------------


def param_group(name: str) -> str | None:
    if "visual" in name:
        return None  # the text batch gives the vision tower no gradient
    if "embed_tokens" in name:
        return "embed_tokens"
    if name.startswith("lm_head"):
        return "lm_head"
    return "decoder layers + norm"


def section_c(args, dev: Device) -> tuple[dict, list]:
    from egt.models.real_shaped import NARROW, QWEN2_5_VL_7B, REGULAR_TOKENS, build_model, describe

    if args.dry_run:
        sizes = dataclasses.replace(NARROW, num_hidden_layers=args.opt_layers)
    else:
        sizes = dataclasses.replace(
            QWEN2_5_VL_7B, num_hidden_layers=args.opt_layers, vision_depth=1, fullatt_block_indexes=(0,)
        )
    lrs = [float(x) for x in args.lrs.split(",")]
    dev.free()
    model = build_model(sizes, seed=args.seed, dtype=torch.bfloat16, device=dev.name)  # the "checkpoint": bf16
    model.train()
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, REGULAR_TOKENS, (2, args.opt_tokens // 2), generator=generator).to(dev.name)
    device_type = "cuda" if dev.cuda else "cpu"

    def one_step(masters: bool, lr: float) -> dict:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(init[n])  # bf16 → the parameter's dtype (float32 masters: exact)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=masters):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        moved: dict[str, list[int]] = {}  # group: [elements, moved, moved after rounding to bf16]
        with torch.no_grad():
            for n, p in model.named_parameters():
                group = param_group(n)
                if group is None or p.grad is None:
                    continue
                counts = moved.setdefault(group, [0, 0, 0])
                counts[0] += p.numel()
                counts[1] += int(torch.ne(p, init[n].to(p.dtype)).count_nonzero())
                counts[2] += int(torch.ne(p.to(torch.bfloat16), init[n]).count_nonzero())
        opt.zero_grad(set_to_none=True)
        del opt
        total = [sum(c[i] for c in moved.values()) for i in range(3)]
        out = {g: {"elements": c[0], "moved": c[1] / c[0], "moved_bf16_view": c[2] / c[0]} for g, c in moved.items()}
        out["all"] = {"elements": total[0], "moved": total[1] / total[0], "moved_bf16_view": total[2] / total[0]}
        out["loss"] = float(loss.item())
        return out

    result: dict = {"sizes": describe(sizes), "tokens": int(ids.numel()), "weight_decay": 0.0, "runs": {}}
    table = []
    for masters in (False, True):
        if masters:
            model.float()
        mode = "fp32 masters + autocast" if masters else "bf16, no master"
        for lr in lrs:
            out = one_step(masters, lr)
            result["runs"][f"{'float32_masters' if masters else 'bf16'}@{lr:g}"] = out
            for group in ("all", "decoder layers + norm", "lm_head", "embed_tokens"):
                if group not in out:
                    continue
                g = out[group]
                table.append(
                    [
                        mode,
                        f"{lr:g}",
                        group,
                        f"{g['elements'] / 1e6:.1f}M",
                        f"{g['moved']:.4f}",
                        f"{g['moved_bf16_view']:.4f}",
                    ]
                )
            dev.free()
    harness.print_table(
        f"(c) one AdamW step (weight decay 0) on {result['tokens']} random tokens, {sizes_name(args)} widths, "
        f"{sizes.num_hidden_layers} decoder layers",
        ["parameters", "lr", "group", "elements", "fraction moved", "moved in bf16"],
        table,
        caption="bf16 parameters: each update is rounded to bf16 in place (no master copy). Float32 masters: "
        "the float32 weight moves; 'moved in bf16' is whether its bf16 rounding (what a bf16 forward uses) changed.",
    )
    return result, []


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------


def environment(args, dev: Device) -> dict:
    import transformers
    import trl

    return {
        "device": dev.name,
        "device_name": torch.cuda.get_device_name(0) if dev.cuda else f"cpu ({platform.processor() or 'unknown'})",
        "dry_run": bool(args.dry_run),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "tf32": {  # (a) turns both off while it runs: its float32 comparison is in IEEE float32
            "matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn": bool(torch.backends.cudnn.allow_tf32),
        },
        "torch_threads": torch.get_num_threads(),
    }


def finite_or_none(value) -> bool:
    """Every number in ``value`` (nested dicts / lists) is finite."""
    if isinstance(value, dict):
        return all(finite_or_none(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(finite_or_none(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = harness.make_parser(__doc__, repeats=1)
    parser.add_argument("--dry_run", action="store_true", help="small sizes on the CPU (= --quick; the tests)")
    parser.add_argument("--device", default="auto", help="auto (cuda if there is one) | cuda | cpu")
    parser.add_argument("--sections", default="a,b,c")
    parser.add_argument("--output", default="", help="the JSON results file (default <output_dir>/gpu_check.json)")
    group = parser.add_argument_group("(a) tiny judge")
    group.add_argument("--tiny_items", type=int, default=8, help="items × 4 rollouts for the entropies")
    group.add_argument("--tiny_tokens", type=int, default=32)
    group.add_argument("--sft_items", type=int, default=64)
    group.add_argument("--sft_batch", type=int, default=8)
    group.add_argument("--sft_steps", type=int, default=3)
    group.add_argument("--rl_items", type=int, default=4, help="items × 4 generations per GRPO step")
    group.add_argument("--rl_tokens", type=int, default=32)
    group.add_argument("--rl_steps", type=int, default=2)
    group = parser.add_argument_group("(b) the 7B's shapes")
    group.add_argument("--gen_rows", default="64,16", help="rows per generate call, comma-separated")
    group.add_argument("--new_tokens", type=int, default=256)
    group.add_argument("--tf_shapes", default="64x256,16x256,4x1024", help="teacher-forced rows × tokens")
    group.add_argument("--image_size", type=int, default=448, help="image side in px (448: 256 image tokens)")
    group = parser.add_argument_group("(c) optimiser step")
    group.add_argument("--opt_layers", type=int, default=4)
    group.add_argument("--opt_tokens", type=int, default=1024)
    group.add_argument("--lrs", default="1e-6,1e-5")
    args = parser.parse_args(argv)
    args.dry_run = args.quick = args.dry_run or args.quick  # one small mode, under either name
    harness.apply_quick(parser, args, DRY_RUN)
    torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = Device(device)
    output = Path(args.output) if args.output else Path(args.output_dir) / "gpu_check.json"
    env = environment(args, dev)
    print(
        f"gpu_check: {env['device_name']}, torch {env['torch']}, transformers {env['transformers']}, "
        f"trl {env['trl']}, {'DRY RUN (small sizes)' if args.dry_run else 'full sizes'}"
    )
    if not args.dry_run and not dev.cuda:
        print("gpu_check: the full check needs a CUDA device and none is here; --dry_run runs it small on the CPU")
        document = harness.results_document(__file__, args, {"environment": env, "skipped": "no CUDA device"}, [])
        print(f"results: {harness.write_results(output, document)}")
        return 0
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if set(sections) - {"a", "b", "c"}:
        parser.error(f"--sections takes a, b and c, not {args.sections!r}")
    results: dict = {"environment": env}
    checks: list = []
    with tempfile.TemporaryDirectory(prefix="egt-gpu-check-") as tmp:
        work = Path(tmp)
        runs = {"a": lambda: section_a(args, work, dev), "b": lambda: section_b(args, work, dev)}
        runs["c"] = lambda: section_c(args, dev)
        for name in sections:
            (results[name], section_checks), wall, _ = harness.measure(runs[name], dev.sync)
            results[name]["section_wall_s"] = wall
            checks += section_checks
            print(f"({name}) done in {wall:.1f} s")
            dev.free()  # the section's models are gone with its frame
    results["all_finite"] = finite_or_none({k: results[k] for k in sections if k in results})
    harness.print_checks(checks)
    document = harness.results_document(__file__, args, results, checks)
    print(f"results: {harness.write_results(output, document)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
