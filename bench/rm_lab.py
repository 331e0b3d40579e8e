"""Scalar reward models end to end on the CPU (issue 6): lab heads, ensemble, RM inside GRPO, HH-RLHF.

Parts (``--parts``, default all, in this order; later parts reuse earlier outputs in the work folder):

``heads``     the shapes lab (5,000 sft + 2,000 rl_pool noisy-label pairs, 400 clean test pairs); one
              fresh tiny Qwen2.5-VL backbone (tokenizer trained on the lab texts); a ``linear`` and an
              ``mlp`` reward model trained on the same data, seed and steps; clean test accuracy
              (both presentation orders), wall and CPU time of training. Target: mlp ≥ 90 % in ≤ 3 min.
``ensemble``  a third member (mlp, seed 1); the three z-normalised on a separate calibration lab
              (labels unused); each member's and the ensemble's clean test accuracy.
``grpo``      a tiny policy (second tiny VLM) warm-started by a short SFT on lab answers, then TRL's
              GRPOTrainer rewarded by the mlp reward model (σ(score); ``--grpo_reward hybrid``: the
              verifier's 1/0, else σ(score)); the policy's answer accuracy (greedy answer names the true
              colour and no other) before and after GRPO. The policy part uses only the lab's
              single-square items (``meta["n_squares"] == 1``, a quarter of them) for the SFT, the GRPO
              prompts and the held-out questions (200 from the clean test split of a fresh lab, seed 2):
              with 2–4 squares the answer needs binding "bottom right" to one of the 4 image tokens,
              which neither tiny model learns — the reward models only judge whether the named colour
              is in the image (the lab's flawed colour never is), so on those questions a policy
              naming any colour present is rewarded as right.
``hh``        a text reward model (tiny Qwen2 from a config, tokenizer trained on the data) on the
              HH-RLHF harmless-base test pairs: trained on the first 1,800, evaluated on the rest.

    .venv/bin/python bench/rm_lab.py [--parts heads,ensemble,grpo,hh] [--output_dir runs/bench]
    .venv/bin/python bench/rm_lab.py --quick      # small labs, a few steps of every part: a smoke check

Work files go under ``<output_dir>/rm_lab/`` (``rm_lab_quick/`` with ``--quick``); the results of
every part run so far are kept in ``<output_dir>/rm_lab.json``.

Recipe notes (what departs from BaseReward, and why, is in egt.rm.trainer): the tiny backbone is
trained from random weights, so the lab recipe adds the chosen-sequence LM loss (on the words where
the two responses differ) and uses AdamW with beta2 = 0.95 and 50 warmup steps (with beta2 = 0.999
the from-scratch tiny VLM never learns to read colours); then lr 1e-3 for 500 steps is enough.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

import harness
from egt.evaluation import evaluate
from egt.lab import LabConfig, make_lab
from egt.lab.colours import NAMES
from egt.models.tiny import TinyTextConfig, build_tiny_text_lm
from egt.models.training import cpu_defaults_without_accelerator as cpu_defaults
from egt.records import open_images, read_pairs
from egt.rm.backbones import build_tiny_backbone, pair_texts
from egt.rm.collate import ScoreItem
from egt.rm.ensemble import RewardEnsemble
from egt.rm.model import HeadConfig, RewardModel
from egt.rm.scoring import RewardModelJudge
from egt.rm.sources import mix_sources
from egt.rm.trainer import RewardModelConfig, train_reward_model

HH_PATH = Path(__file__).resolve().parents[2] / "shared/data/hh_rlhf/harmless-base_test.jsonl.gz"

# ---- the lab reward-model recipe ---------------------------------------------------------------
LAB = dict(n_sft=5000, n_rl_pool=2000, n_test=400, seed=0)  # the lab's default split sizes
RM_STEPS = 500
HEADS = "linear:0,mlp:0,mlp:1"  # head:seed of each lab reward model (the ensemble uses all three)
RM_RECIPE = dict(
    per_device_train_batch_size=32,
    learning_rate=1e-3,
    lr_scheduler_type="cosine",
    warmup_steps=50,
    adam_beta2=0.95,
    weight_decay=0.0,
    chosen_lm_loss_coefficient=1.0,
    chosen_lm_loss_span="differing",
    save_strategy="no",
    logging_steps=100,
    disable_tqdm=True,
)
# ---- the HH-RLHF text recipe -------------------------------------------------------------------
HH_TRAIN, HH_STEPS, HH_HELD_OUT = 1800, 400, None  # held out: all pairs after the training ones
HH_RECIPE = dict(
    per_device_train_batch_size=16,
    learning_rate=5e-4,
    lr_scheduler_type="cosine",
    warmup_steps=0.05,
    max_length=256,
    chosen_lm_loss_coefficient=1.0,
    weight_decay=0.0,
    save_strategy="no",
    logging_steps=50,
    disable_tqdm=True,
)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_training(model, processor, examples, args, **kw) -> dict:
    wall, cpu = time.perf_counter(), cpu_seconds()
    trainer = train_reward_model(model, processor, examples, args, **kw)
    logs = [r for r in trainer.state.log_history if "accuracy" in r and "loss" in r]
    return {
        "steps": trainer.state.global_step,
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(cpu_seconds() - cpu, 1),
        "final_train_loss": logs[-1]["loss"] if logs else None,
        "load_avg_1min": round(os.getloadavg()[0], 1),
    }


def accuracy(judge, pairs, images_root) -> dict:
    report, _ = evaluate(judge, pairs, order="both", images_root=images_root, batch_size=64)
    cats = {k: round(v["accuracy"], 4) for k, v in report.get("categories", {}).items()}
    return {"accuracy": round(report["metrics"]["accuracy"], 4), **cats}


# ------------------------------------------------------------------------------------------------


def part_heads(out: Path, results: dict) -> None:
    lab = out / "lab"
    if not (lab / "lab.json").is_file():
        make_lab(LabConfig(output_dir=str(lab), **LAB))
    mix = mix_sources([f"{lab / 'sft.jsonl'},name=sft", f"{lab / 'rl_pool.jsonl'},name=rl_pool"], seed=0)
    backbone = out / "backbone"
    if not (backbone / "config.json").is_file():
        build_tiny_backbone("tiny", pair_texts(e.pair for e in mix.examples), backbone, seed=0)
    test = read_pairs(lab / "test.jsonl")
    rows = []
    for spec in HEADS.split(","):
        head, seed = spec.split(":")[0], int(spec.split(":")[1])
        name = f"rm_{head}_seed{seed}"
        model, processor = RewardModel.from_backbone(backbone, HeadConfig(head), device="cpu", seed=seed)
        args = RewardModelConfig(
            output_dir=str(out / name),
            max_steps=RM_STEPS,
            seed=seed,
            data_seed=0,
            head=head,
            **RM_RECIPE,
            **cpu_defaults(),
        )
        timing = timed_training(model, processor, mix.examples, args, reward_meta={"data_mix": mix.report})
        judge = RewardModelJudge.from_pretrained(out / name, device="cpu", batch_size=64)
        results[name] = {**timing, "head": head, "seed": seed, **accuracy(judge, test, lab)}
        r = results[name]
        rows.append(
            [
                name,
                r["steps"],
                r["wall_s"],
                r["cpu_s"],
                r["load_avg_1min"],
                r["final_train_loss"],
                r["accuracy"],
                r.get("easy"),
                r.get("hard"),
            ]
        )
    harness.print_table(
        "lab reward models (clean test, both orders; same data, backbone and data order)",
        ["model", "steps", "wall s", "cpu s", "load", "train loss", "accuracy", "easy", "hard"],
        rows,
    )


def part_ensemble(out: Path, results: dict) -> None:
    lab, calib = out / "lab", out / "calibration_lab"
    if not (calib / "lab.json").is_file():
        make_lab(LabConfig(output_dir=str(calib), seed=1, n_sft=1, n_rl_pool=200, n_test=1))
    members = [
        RewardModelJudge.from_pretrained(out / n, device="cpu", batch_size=64)
        for n in ("rm_linear_seed0", "rm_mlp_seed0", "rm_mlp_seed1")
    ]
    calib_pairs = read_pairs(calib / "rl_pool.jsonl")
    items = [ScoreItem(p.question, r, open_images(p, calib)) for p in calib_pairs for r in p.responses]
    ens = RewardEnsemble.calibrate(members, items, name="ensemble")
    ens.save(
        out / "ensemble", extra={"calibration": {"data": str(calib / "rl_pool.jsonl"), "n_pairs": len(calib_pairs)}}
    )
    ens = RewardEnsemble.load(out / "ensemble", device="cpu", batch_size=64)
    test = read_pairs(lab / "test.jsonl")
    rows = []
    for judge in [*ens.members, ens]:
        r = accuracy(judge, test, lab)
        results.setdefault("ensemble", {})[judge.name] = r
        rows.append([judge.name, r["accuracy"], r.get("easy"), r.get("hard")])
    for m in ens.stats:
        rows.append([f"  z-norm {Path(m.path).name}", f"mean {m.mean:.3f}", f"std {m.std:.3f}", ""])
    harness.print_table(
        "ensemble (mean of z-scores, calibrated on 200 pairs of another lab seed)",
        ["judge", "accuracy", "easy", "hard"],
        rows,
    )


def policy_messages(question: str, answer: str | None = None) -> list[dict]:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def sft_policy(
    policy, processor, pairs, images_root, steps: int, batch_size: int, lr: float, seed: int, callback=None
) -> list[float]:
    """Warm-start: LM loss on the correct lab answer (assistant tokens only) — a short, plain SFT loop.

    AdamW with beta2 = 0.95 (as the tiny judge: with the default 0.999 the from-scratch VLM does not learn
    to read the image). ``callback(step, policy)``, if given, runs after every step (probes).
    """
    import random

    rng = random.Random(seed)
    optimiser = torch.optim.AdamW(policy.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    policy.train()
    losses = []
    for step in range(1, steps + 1):
        batch = rng.sample(pairs, batch_size)
        prompts = [
            processor.apply_chat_template(policy_messages(p.question), tokenize=False, add_generation_prompt=True)
            for p in batch
        ]
        answers = [p.responses[p.meta["true_preferred"]] + "<|im_end|>" for p in batch]
        images = [im for p in batch for im in open_images(p, images_root)]
        enc = processor(
            text=[a + b for a, b in zip(prompts, answers)],
            images=images,
            padding=True,
            padding_side="right",
            return_tensors="pt",
        )
        labels = enc["input_ids"].clone()
        for i, prompt in enumerate(prompts):  # no loss on the prompt (images expand to 4 tokens each)
            n_prompt = len(processor(text=[prompt], images=open_images(batch[i], images_root))["input_ids"][0])
            labels[i, :n_prompt] = -100
        labels[enc["attention_mask"] == 0] = -100
        loss = policy(**enc, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
        if callback is not None:
            callback(step, policy)
            policy.train()
    return losses


@torch.no_grad()
def policy_accuracy(policy, processor, pairs, images_root, batch_size: int = 50, samples: list | None = None) -> float:
    """Greedy answer names the true colour, and no other colour (``samples`` collects a few answers)."""
    from egt.rm.rl import names_colour

    policy.eval()
    right = 0
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        prompts = [
            processor.apply_chat_template(policy_messages(p.question), tokenize=False, add_generation_prompt=True)
            for p in batch
        ]
        images = [im for p in batch for im in open_images(p, images_root)]
        enc = processor(text=prompts, images=images, padding=True, padding_side="left", return_tensors="pt")
        out = policy.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=processor.tokenizer.pad_token_id)
        texts = processor.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        right += sum(names_colour(t, p.meta["colour"], NAMES) for t, p in zip(texts, batch))
        if samples is not None and start == 0:
            samples += [f"{p.question} [{p.meta['colour']}] -> {t!r}" for p, t in zip(batch[:5], texts[:5])]
    return right / len(pairs)


# The warm start sits mid-way through the SFT's jump from chance (~17 %, steps ≤ 150) to ~88 % (step 250):
# 200 steps → 67.5 % held-out. From a weaker start (175 steps, 34 %) the "rm" run collapsed to answers
# naming no colour (the RM gives those σ ≈ 0.36, between right ≈ 0.75 and wrong ≈ 0.22). beta = KL weight;
# without it, 400 steps also reach ~88 % but the answers degrade ("... is is is red.").
GRPO = dict(
    steps=400,
    sft_steps=200,
    sft_lr=5e-4,
    prompts_per_step=8,
    num_generations=4,
    lr=1e-4,
    beta=0.04,
    rm="rm_mlp_seed0",
    reward="rm,hybrid",
    eval_every=100,
)
POLICY_LAB = dict(seed=2, n_sft=1, n_rl_pool=1, n_test=900)  # a fresh lab for the policy's held-out questions
N_POLICY_HELD_OUT = 200


def single_square(pairs: list) -> list:
    """The lab items whose image holds one square: the answer needs no binding of the position words to a
    square (the tiny models only see which colours are present; the lab's reward models judge that)."""
    if pairs and "n_squares" not in pairs[0].meta:
        raise SystemExit("this lab has no meta['n_squares'] (made before it was added): delete it and rerun")
    return [p for p in pairs if p.meta["n_squares"] == 1]


def part_grpo(out: Path, results: dict) -> None:
    import datasets
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from egt.models.load import load_model
    from egt.rm.rl import RewardModelReward, colour_verifier

    lab, policy_lab = out / "lab", out / "policy_lab"
    if not (policy_lab / "lab.json").is_file():
        make_lab(LabConfig(output_dir=str(policy_lab), **POLICY_LAB))
    all_sft = read_pairs(lab / "sft.jsonl")
    sft_pairs, pool = single_square(all_sft), single_square(read_pairs(lab / "rl_pool.jsonl"))
    held_out = single_square(read_pairs(policy_lab / "test.jsonl"))[:N_POLICY_HELD_OUT]
    print(
        f"\npolicy task: single-square lab questions only — SFT {len(sft_pairs)} (of {len(all_sft)}), "
        f"GRPO prompts {len(pool)}, held-out {len(held_out)} (clean test split of lab seed {POLICY_LAB['seed']})"
    )
    policy_dir = out / "policy_init"
    if not (policy_dir / "config.json").is_file():
        build_tiny_backbone("tiny", pair_texts(all_sft), policy_dir, seed=2)
    sft_dir = out / f"policy_sft{GRPO['sft_steps']}_lr{GRPO['sft_lr']:g}"
    sft_s = None
    if not (sft_dir / "config.json").is_file():  # the warm start is reused across GRPO runs
        loaded = load_model(str(policy_dir), device="cpu", for_training=True)
        wall = time.perf_counter()
        losses = sft_policy(
            loaded.model, loaded.processor, sft_pairs, lab, GRPO["sft_steps"], 32, GRPO["sft_lr"], seed=0
        )
        sft_s = round(time.perf_counter() - wall, 1)
        print(
            f"policy SFT: {GRPO['sft_steps']} steps at lr {GRPO['sft_lr']:g}, {sft_s:.0f}s, "
            f"mean loss of the last 20 steps {sum(losses[-20:]) / len(losses[-20:]):.3f}"
        )
        loaded.model.save_pretrained(sft_dir)
        loaded.processor.save_pretrained(sft_dir)

    table = []
    for reward_kind in GRPO["reward"].split(","):
        loaded = load_model(str(sft_dir), device="cpu", for_training=True)
        policy, processor = loaded.model, loaded.processor
        before = policy_accuracy(policy, processor, held_out, policy_lab)
        print(f"policy after SFT: accuracy {before:.3f}")
        rows = []
        for p in pool:
            (image,) = open_images(p, lab)
            rows.append(
                {"prompt": [{"role": "user", "content": p.question}], "image": image, "colour": p.meta["colour"]}
            )
        dataset = datasets.Dataset.from_list(rows)
        verifier = colour_verifier(NAMES) if reward_kind == "hybrid" else None  # hybrid: right answer → 1, else σ(RM)
        reward = RewardModelReward(out / GRPO["rm"], verifier=verifier, device="cpu", batch_size=64)
        config = GRPOConfig(
            output_dir=str(out / "policy_grpo"),
            max_steps=GRPO["steps"],
            learning_rate=GRPO["lr"],
            per_device_train_batch_size=GRPO["prompts_per_step"] * GRPO["num_generations"],
            num_generations=GRPO["num_generations"],
            max_completion_length=12,
            temperature=1.0,
            beta=GRPO["beta"],
            logging_steps=10,
            save_strategy="no",
            gradient_checkpointing=False,
            disable_tqdm=True,
            seed=0,
            lr_scheduler_type="constant",
            warmup_steps=0,
            **cpu_defaults(),
        )
        processor.tokenizer.padding_side = "left"
        curve: list[tuple[int, float]] = []
        eval_time = [0.0, 0.0]  # wall, cpu of the in-training evaluations (not counted as GRPO time)

        class HeldOutAccuracy(TrainerCallback):
            def on_step_end(
                self, args, state, control, policy=policy, processor=processor, curve=curve, eval_time=eval_time, **kw
            ):
                if GRPO["eval_every"] and state.global_step % GRPO["eval_every"] == 0:
                    w, c = time.perf_counter(), cpu_seconds()
                    curve.append((state.global_step, policy_accuracy(policy, processor, held_out, policy_lab)))
                    print(f"GRPO step {curve[-1][0]}: held-out accuracy {curve[-1][1]:.3f}", flush=True)
                    policy.train()
                    eval_time[0] += time.perf_counter() - w
                    eval_time[1] += cpu_seconds() - c

        trainer = GRPOTrainer(
            model=policy,
            reward_funcs=[reward],
            args=config,
            train_dataset=dataset,
            processing_class=processor,
            callbacks=[HeldOutAccuracy()],
        )
        wall, cpu = time.perf_counter(), cpu_seconds()
        trainer.train()
        grpo_s, grpo_cpu = time.perf_counter() - wall - eval_time[0], cpu_seconds() - cpu - eval_time[1]
        samples: list[str] = []
        after = policy_accuracy(policy, processor, held_out, policy_lab, samples=samples)
        print("greedy answers after GRPO:\n  " + "\n  ".join(samples))
        rewards = [r["reward"] for r in trainer.state.log_history if "reward" in r]
        results[f"grpo_{reward_kind}"] = {
            "task": "single-square lab questions",
            "sft_steps": GRPO["sft_steps"],
            "sft_lr": GRPO["sft_lr"],
            "sft_s": sft_s,
            "n_sft_items": len(sft_pairs),
            "n_grpo_prompts": len(pool),
            "grpo_steps": GRPO["steps"],
            "grpo_lr": GRPO["lr"],
            "grpo_beta": GRPO["beta"],
            "reward": reward_kind,
            "rm": GRPO["rm"],
            "grpo_s": round(grpo_s, 1),
            "grpo_cpu_s": round(grpo_cpu, 1),
            "accuracy_before": before,
            "accuracy_after": after,
            "accuracy_curve": curve,
            "rewards_logged": [round(r, 4) for r in rewards],
            "samples_after": samples,
            "n_held_out": len(held_out),
            "load_avg_1min": round(os.getloadavg()[0], 1),
        }
        table.append(
            [
                reward_kind,
                f"{before:.3f}",
                f"{after:.3f}",
                " ".join(f"{a:.3f}" for _, a in curve) or "-",
                GRPO["steps"],
                f"{grpo_s:.0f}",
                f"{grpo_cpu:.0f}",
                f"{rewards[0]:.3f} → {rewards[-1]:.3f}" if rewards else "-",
            ]
        )
    harness.print_table(
        f"policy answer accuracy on {len(held_out)} held-out single-square lab questions "
        f"(greedy; names the true colour only); warm start: {GRPO['sft_steps']} SFT steps on "
        f"{len(sft_pairs)} single-square items",
        [
            "reward",
            "after SFT (before GRPO)",
            "after GRPO",
            f"every {GRPO['eval_every']} GRPO steps",
            "GRPO steps",
            "GRPO wall s",
            "GRPO cpu s",
            "mean reward first→last log",
        ],
        table,
    )


def part_hh(out: Path, results: dict) -> None:
    if not HH_PATH.is_file():
        print(f"\nHH-RLHF: {HH_PATH} not present, skipped")
        return
    mix = mix_sources([f"{HH_PATH},name=hh"], seed=0, skip_bad=True)  # shuffled under seed 0
    pairs = [e.pair for e in mix.examples]
    train, held_out = pairs[:HH_TRAIN], pairs[HH_TRAIN:][:HH_HELD_OUT]
    backbone = out / "hh_backbone"
    if not (backbone / "config.json").is_file():
        build_tiny_text_lm(pair_texts(train), backbone, TinyTextConfig(vocab_size=4096), seed=0)
    model, tokenizer = RewardModel.from_backbone(backbone, HeadConfig("mlp"), device="cpu", seed=0)
    args = RewardModelConfig(output_dir=str(out / "rm_hh"), max_steps=HH_STEPS, seed=0, **HH_RECIPE, **cpu_defaults())
    from egt.rm.collate import RewardExample

    timing = timed_training(model, tokenizer, [RewardExample(p, source="hh") for p in train], args)
    judge = RewardModelJudge.from_pretrained(out / "rm_hh", device="cpu", batch_size=32)
    from egt.judge.base import LongerJudge

    r = {
        **timing,
        "n_train": len(train),
        "n_held_out": len(held_out),
        "skipped": mix.report["sources"][0]["skipped"],
        "held_out": accuracy(judge, held_out, None)["accuracy"],
        "train_subset": accuracy(judge, train[:500], None)["accuracy"],
        "longer_baseline_held_out": accuracy(LongerJudge(), held_out, None)["accuracy"],
    }
    results["hh"] = r
    harness.print_table(
        "HH-RLHF harmless-base (text RM, tiny Qwen2 from scratch)",
        [
            "train pairs",
            "held-out pairs",
            "steps",
            "wall s",
            "cpu s",
            "train acc (500)",
            "held-out acc",
            "'longer' baseline",
        ],
        [
            [
                r["n_train"],
                r["n_held_out"],
                r["steps"],
                r["wall_s"],
                r["cpu_s"],
                r["train_subset"],
                r["held_out"],
                r["longer_baseline_held_out"],
            ]
        ],
    )


def heads_checks(results: dict) -> list[harness.Check]:
    """Issue 6's target for the lab heads: the mlp reward model ≥ 90 % on the clean test in ≤ 3 min."""
    mlp = results.get("rm_mlp_seed0")
    if mlp is None:
        return []
    return [
        harness.Check("mlp head (seed 0): clean test accuracy", mlp["accuracy"], 0.9, ">="),
        harness.Check("mlp head (seed 0): training wall seconds", mlp["wall_s"], 180.0),
    ]


PARTS = {"heads": part_heads, "ensemble": part_ensemble, "grpo": part_grpo, "hh": part_hh}


QUICK = dict(rm_steps=10, heads="linear:0,mlp:0,mlp:1", sft_steps=4, grpo_steps=2, grpo_eval_every=0, hh_steps=4)
QUICK_LABS = dict(n_sft=256, n_rl_pool=64, n_test=32)  # the lab, the calibration lab and the policy's lab


def main() -> int:
    global RM_STEPS, HH_STEPS, HEADS, HH_TRAIN, HH_HELD_OUT
    parser = harness.make_parser(__doc__, repeats=1)
    parser.add_argument("--parts", default="heads,ensemble,grpo,hh")
    parser.add_argument("--rm_steps", type=int, default=RM_STEPS)
    parser.add_argument(
        "--rm_lr", type=float, default=RM_RECIPE["learning_rate"], help="lab reward models' learning rate"
    )
    parser.add_argument("--heads", default=HEADS, help="head:seed list for the heads part")
    parser.add_argument("--sft_steps", type=int, default=GRPO["sft_steps"], help="policy warm-start SFT steps")
    parser.add_argument("--sft_lr", type=float, default=GRPO["sft_lr"], help="policy warm-start SFT learning rate")
    parser.add_argument("--grpo_steps", type=int, default=GRPO["steps"])
    parser.add_argument("--grpo_lr", type=float, default=GRPO["lr"])
    parser.add_argument(
        "--grpo_eval_every",
        type=int,
        default=GRPO["eval_every"],
        help="print the held-out accuracy every N GRPO steps (0: only before and after)",
    )
    parser.add_argument("--grpo_beta", type=float, default=GRPO["beta"], help="KL coefficient of GRPO")
    parser.add_argument(
        "--grpo_reward",
        default=GRPO["reward"],
        help="rm (σ(RM score)) and/or hybrid (verifier → 1/0, else σ(RM)); comma list, one run each",
    )
    parser.add_argument("--hh_steps", type=int, default=HH_STEPS)
    parser.add_argument("--rm", default=GRPO["rm"], help="reward model (under the work folder) for the GRPO part")
    args = harness.parse(parser, quick=QUICK)
    RM_STEPS, HH_STEPS, HEADS = args.rm_steps, args.hh_steps, args.heads
    RM_RECIPE["learning_rate"] = args.rm_lr
    if set(args.grpo_reward.split(",")) - {"rm", "hybrid"}:
        parser.error(f"--grpo_reward: rm and/or hybrid, got {args.grpo_reward!r}")
    GRPO.update(
        sft_steps=args.sft_steps,
        sft_lr=args.sft_lr,
        steps=args.grpo_steps,
        rm=args.rm,
        lr=args.grpo_lr,
        beta=args.grpo_beta,
        reward=args.grpo_reward,
        eval_every=args.grpo_eval_every,
    )
    if args.quick:
        LAB.update(QUICK_LABS)
        POLICY_LAB.update(n_test=QUICK_LABS["n_test"] * 4)
        HH_TRAIN, HH_HELD_OUT = 200, 100
        RM_RECIPE["logging_steps"] = HH_RECIPE["logging_steps"] = 2
    out = harness.work_dir(args, "rm_lab_quick" if args.quick else __file__)
    results_path = Path(args.output_dir) / "rm_lab.json"
    earlier = json.loads(results_path.read_text()) if results_path.is_file() else {}
    keep = earlier.get("args", {}).get("quick") == args.quick  # other runs of the same size may share the folder
    results = earlier.get("results", {}) if keep else {}
    for part in args.parts.split(","):
        PARTS[part](out, results)
        harness.write_results(results_path, harness.results_document(__file__, args, results, []))
    return harness.finish(__file__, args, results, heads_checks(results))


if __name__ == "__main__":
    sys.exit(main())
