"""``JudgeSFTTrainer``: TRL's ``SFTTrainer`` with a loss that projects only the completion tokens.

TRL's fused LM head skips the masked positions only on Triton devices (CUDA, XPU); elsewhere
(CPU) it scores every position, prompt included, in tiles, and computes entropy and top-1 for all
of them: about a third of the tiny judge's step. Here the backbone runs once and only positions
with a label go through the LM head; the loss is ``sum(-log p) / num_items_in_batch`` as TRL
computes it, and the ``entropy``, ``mean_token_accuracy`` and ``num_tokens`` metrics come from the
same logits. TRL's own ``compute_loss`` still runs where its fused head is already compact (CUDA,
XPU), where the loss tokens' logits would be large (``MAX_LOGITS`` elements; TRL never builds
them), and for the setups this does not cover (PEFT, DFT, label smoothing, a MoE auxiliary loss,
scaled or soft-capped logits, padding-free batches, context or sequence parallelism,
``return_outputs``).
"""

from __future__ import annotations

import functools
import types

import torch
import torch.nn.functional as F
from accelerate.utils import is_peft_model
from trl import SFTTrainer

from egt.models.training import ConvertedCheckpointMixin, ensure_float32_masters, trainer_keeps_masters

MAX_LOGITS = 2**26  # 256 MiB of fp32 logits (the tiny judge's batch of 32: ~1M)
_LOGIT_SCALES = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")


def add_completion_lm_head(model) -> None:
    """``model(..., labels=labels, completion_lm_head=True)`` returns ``(logits, targets)`` of the loss tokens.

    The backbone runs as usual; only positions whose next-token label is not ``-100`` go through
    the LM head (fp32 logits). Without the flag the forward is the previous one (TRL's fused head,
    generation). Patched on the instance, like TRL's ``add_fused_lm_head``, so it runs through a
    DDP wrapper too.
    """
    previous = model.forward

    @functools.wraps(type(model).forward)
    def forward(self, *args, completion_lm_head=False, labels=None, **kwargs):
        if not completion_lm_head:
            if labels is not None:
                kwargs["labels"] = labels
            return previous(*args, **kwargs)
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state[:, :-1]
        head = self.get_output_embeddings()
        targets = labels[:, 1:].to(hidden.device)
        mask = targets != -100
        logits = head(hidden[mask].to(head.weight.device)).float()
        return logits, targets[mask].to(logits.device)

    model.forward = types.MethodType(forward, model)


def completion_head_applies(trainer: SFTTrainer) -> bool:
    """Whether a plain NLL over the completion logits is the loss TRL computes for this setup."""
    args, model = trainer.args, trainer.model
    text_config = model.config.get_text_config()
    scaled = any(getattr(text_config, a, None) is not None for a in _LOGIT_SCALES)
    return (
        args.loss_type == "nll"
        and trainer.compute_loss_func is None
        and trainer.label_smoother is None
        and not trainer.aux_loss_enabled
        and not args.padding_free
        and not scaled
        and not is_peft_model(model)
        and trainer.accelerator.parallelism_config is None
        and hasattr(model, "base_model")
        and trainer.args.device.type not in ("cuda", "xpu")
        and model.get_output_embeddings() is not None
    )


class PlainSFTTrainer(ConvertedCheckpointMixin, SFTTrainer):
    """TRL's ``SFTTrainer`` as it is (``--completion_head false``), resuming as :class:`JudgeSFTTrainer` does."""


class JudgeSFTTrainer(ConvertedCheckpointMixin, SFTTrainer):
    """``SFTTrainer`` (loop, logging, checkpoints, accelerate) with the completion-only LM head."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ensure_float32_masters(self.model, engine_keeps_masters=trainer_keeps_masters(self))
        self.completion_head = completion_head_applies(self)
        self.vocab_size = self.model.get_output_embeddings().weight.shape[0] if self.completion_head else 0
        if self.completion_head:
            add_completion_lm_head(self.model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if (
            return_outputs
            or not self.completion_head
            or "shift_labels" in inputs
            or int((inputs["labels"][:, 1:] != -100).sum()) * self.vocab_size > MAX_LOGITS
        ):
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        mode = "train" if self.model.training else "eval"
        logits, targets = model(**inputs, completion_lm_head=True)
        num_tokens = targets.numel() if num_items_in_batch is None else num_items_in_batch
        loss = F.cross_entropy(logits, targets, reduction="sum") / torch.as_tensor(num_tokens).clamp(min=1)
        # As in TRL: `num_items_in_batch` counts every rank's tokens and DDP averages the gradients
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        with torch.no_grad():
            gather = self.accelerator.gather_for_metrics
            log_p = logits.log_softmax(-1)
            num_valid = gather(torch.tensor(targets.numel(), device=logits.device)).sum()
            entropy_sum = gather(-(log_p.exp() * log_p).sum()).sum()
            num_correct = gather((logits.argmax(-1) == targets).sum()).sum()
            metrics = self._metrics[mode]
            metrics["entropy"].append((entropy_sum / num_valid).item() if num_valid > 0 else 0.0)
            metrics["mean_token_accuracy"].append((num_correct / num_valid).item() if num_valid > 0 else 0.0)
            if mode == "train":
                self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item() // self._tp_size
            metrics["num_tokens"] = [self._total_train_tokens]
        return loss
