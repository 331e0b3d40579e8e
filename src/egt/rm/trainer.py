"""Bradley–Terry training of a scalar reward model on image + text pairs (docs/methods.md §6).

The loss is one function, :func:`egt.rm.head.bradley_terry_loss`. The trainer is ``transformers.Trainer``
with a narrow subclass: ``compute_loss`` (the loss and its metrics), ``log`` (adds accuracy and
reward margin to every log line), ``prediction_step`` (evaluation loss without logits), and the
two save / resume hooks, because a reward model is saved as backbone + head (see
:mod:`egt.rm.checkpoint`). Logging, checkpointing, gradient accumulation, accelerate and DeepSpeed are
``Trainer``'s own. TRL's ``RewardTrainer`` is not used: it tokenises text-only rows and builds an
``AutoModelForSequenceClassification``, which Qwen2-VL / Qwen2.5-VL do not have.

Departures from BaseReward: none in the default loss (no reward centring or length normalisation —
BaseReward found no gain; ``center_rewards_coefficient`` is there for parity with TRL). One
optional addition: ``chosen_lm_loss_coefficient`` adds a language-modelling loss on the chosen
sequences (GRM, Yang et al. 2024). BaseReward starts from a pretrained VLM; our tiny lab backbone
starts from random weights and, with the pairwise loss alone, never learns to read the image (the
loss stays at ln 2 for hundreds of steps), so the lab recipe turns it on.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from egt.errors import EgtError
from egt.models.training import ensure_float32_masters, trainer_keeps_masters
from egt.rm.collate import RewardCollator, RewardExample
from egt.rm.head import HeadConfig, bradley_terry_loss
from egt.rm.model import RewardModel


@dataclass
class RewardModelConfig(TrainingArguments):
    """``TrainingArguments`` plus the reward model's head, loss and LoRA options."""

    head: str = field(default="mlp", metadata={"help": "linear | mlp. BaseReward recommends mlp (2 layers, SiLU)."})
    head_hidden_size: int = field(default=0, metadata={"help": "Width of the mlp head's inner layer; 0 = hidden size."})
    head_activation: str = field(default="silu", metadata={"help": "Activation of the mlp head; BaseReward: silu."})
    margin: float = field(
        default=0.0,
        metadata={
            "help": "Bradley–Terry margin for pairs without meta['margin'] (Llama 2 used rating-based margins); "
            "0 = none."
        },
    )
    chosen_lm_loss_coefficient: float = field(
        default=0.0,
        metadata={
            "help": "Weight of a language-modelling loss on the chosen sequences (GRM's SFT regulariser, Yang et al. "
            "2024, use 0.01). BaseReward uses none; a backbone trained from scratch (the tiny lab VLM) needs it "
            "to learn to read images at all (lab recipe: 1.0)."
        },
    )
    chosen_lm_loss_span: str = field(
        default="response",
        metadata={
            "help": "Tokens the LM loss covers: response (the whole chosen response, as GRM) | differing (only where "
            "it differs from the rejected response: on templated data such as the lab, the deciding words)."
        },
    )
    center_rewards_coefficient: float | None = field(
        default=None,
        metadata={
            "help": "Weight of mean((r_c + r_r)^2) (Eisenstein et al. 2023 recommend 0.01); BaseReward found no gain."
        },
    )
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Text backbones: truncate sequences from the left to this many tokens (VLM inputs are never cut)."
        },
    )
    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters (peft) instead of the full backbone."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(default="all-linear", metadata={"help": "peft target_modules (comma list)."})
    # Trainer defaults that differ for reward models
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep False: the collator reads records."})

    def head_config(self) -> HeadConfig:
        return HeadConfig(self.head, self.head_hidden_size, self.head_activation).validate()


def apply_lora(model: RewardModel, args: RewardModelConfig) -> RewardModel:
    """Wrap the backbone in LoRA adapters; the head stays fully trainable."""
    from peft import LoraConfig, get_peft_model

    targets: Any = args.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    config = LoraConfig(
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=targets, bias="none"
    )
    model.backbone = get_peft_model(model.backbone, config)
    return model


class RewardModelTrainer(Trainer):
    """``Trainer`` with the Bradley–Terry loss; logs ``accuracy``, ``margin`` and reward range.

    Gradient accumulation: :meth:`compute_loss` returns a mean over the micro-batch's pairs (and
    the LM loss a mean over its tokens) and never uses ``num_items_in_batch``, so ``Trainer``
    must divide it by the number of accumulated micro-batches. That is stated here, not inferred:
    ``Trainer`` would take ``RewardModel.forward``'s ``**inputs`` for "accepts loss kwargs" and
    then skip the division whenever it can count ``num_items_in_batch``. With equal micro-batches
    the accumulated gradient is the gradient of one batch of all their pairs.
    """

    loss_is_scaled_for_ga = False  # Trainer.training_step divides by the accumulation steps

    def __init__(self, *args: Any, reward_meta: dict | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        ensure_float32_masters(self.model, engine_keeps_masters=trainer_keeps_masters(self))
        self.model_accepts_loss_kwargs = False  # compute_loss takes no num_items_in_batch
        self.reward_meta = reward_meta or {}
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        margin = inputs.pop("margin", None)
        if "lm_labels" in inputs:
            rewards, lm_loss = model(**inputs)  # [2B] chosen then rejected; LM loss of the chosen rows
        else:
            rewards, lm_loss = model(**inputs), None
        chosen, rejected = torch.chunk(rewards, 2)  # [B], [B]
        loss = bradley_terry_loss(chosen, rejected, margin)
        if lm_loss is not None:
            loss = loss + self.args.chosen_lm_loss_coefficient * lm_loss
            self._metrics[mode]["lm_loss"].append(self.accelerator.gather_for_metrics(lm_loss.detach()).mean().item())
        coefficient = self.args.center_rewards_coefficient
        if coefficient:
            loss = loss + coefficient * torch.mean((chosen + rejected) ** 2)
        with torch.no_grad():
            gather = self.accelerator.gather_for_metrics
            self._metrics[mode]["accuracy"].append(gather((chosen > rejected).float().mean()).mean().item())
            self._metrics[mode]["margin"].append(gather((chosen - rejected).mean()).mean().item())
            self._metrics[mode]["mean_reward"].append(gather(rewards.mean()).mean().item())
        if return_outputs:
            return loss, {"rewards_chosen": chosen, "rewards_rejected": rejected}
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        metrics = {k: sum(v) / len(v) for k, v in self._metrics[mode].items() if v}
        if mode == "eval":
            metrics = {f"eval_{k}": v for k, v in metrics.items()}
        logs.update(metrics)
        super().log(logs, start_time)
        self._metrics[mode].clear()

    # A reward model is backbone + head: save and resume through RewardModel, never pickle weights.
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        model = self.accelerator.unwrap_model(self.model)
        model.save_pretrained(output_dir, processor=self.processing_class, extra_meta=self.reward_meta)
        Path(output_dir, "training_args.json").write_text(self.args.to_json_string(), encoding="utf-8")

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        model = model or self.model
        loaded, _ = RewardModel.from_pretrained(
            resume_from_checkpoint, model.head_config, device="cpu", for_training=True
        )
        fit = model.load_state_dict(loaded.state_dict(), strict=False)
        if fit.missing_keys or fit.unexpected_keys:  # strict, with the keys named
            raise EgtError(
                f"{resume_from_checkpoint}: checkpoint does not fit the model (missing: {fit.missing_keys[:3]}, "
                f"unexpected: {fit.unexpected_keys[:3]}); resume with the settings it was trained with (LoRA, head)"
            )


def train_reward_model(
    model: RewardModel,
    processor: Any,
    train_examples: list[RewardExample],
    args: RewardModelConfig,
    *,
    eval_examples: list[RewardExample] | None = None,
    reward_meta: dict | None = None,
    save: bool = True,
) -> RewardModelTrainer:
    """Train ``model`` on ``train_examples``; with ``save``, write the final model to ``args.output_dir``.

    The final save folds a LoRA adapter into the weights, so the output loads on its own.
    """
    if not model.is_vision:
        with_images = [ex for ex in train_examples if ex.pair.images]
        if with_images:
            ex = with_images[0]
            raise EgtError(
                f"source {ex.source!r}: id={ex.pair.id!r}: the text-only backbone cannot read images; "
                "drop image pairs from its sources or use a VLM backbone"
            )
    if args.use_lora:
        model = apply_lora(model, args)
    meta = {"max_length": args.max_length, **(reward_meta or {})}
    collator = RewardCollator(
        processor,
        reads_images=model.is_vision,
        max_length=args.max_length,
        default_margin=args.margin,
        lm_labels=args.chosen_lm_loss_span if args.chosen_lm_loss_coefficient > 0 else None,
    )
    trainer = RewardModelTrainer(
        model=model,
        args=args,
        train_dataset=train_examples,
        eval_dataset=eval_examples,
        data_collator=collator,
        processing_class=processor,
        reward_meta=meta,
    )
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    if save:
        model.merge_adapter()
        model.save_pretrained(args.output_dir, processor=processor, extra_meta=meta)
        history = [row for row in trainer.state.log_history]
        Path(args.output_dir, "log_history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
        Path(args.output_dir, "training_args.json").write_text(args.to_json_string(), encoding="utf-8")
    return trainer


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
