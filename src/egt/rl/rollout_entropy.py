"""Float32 token entropies of the rollout policy, read from its final hidden states by a forward hook.

GTPO and GRPO-S (:mod:`egt.rl.advantages`) shape rewards with the entropy of the distribution each
token was sampled from. :class:`RolloutEntropyRecorder`, hooked onto the policy's backbone, computes
it with :func:`egt.entropy.token_entropy_from_hidden` from the hidden states h a pass computes anyway:
the float32 entropy of ``softmax((h · Wᵀ + b) / τ)``, the LM head W run in float32 (a float32 copy of
W, ``[V, h]``, for the duration of one pass when the model is bf16/fp16; never float32 ``[B, T, V]``
logits), at the sampling temperature τ, with the tokens generation suppresses (TRL's
``suppress_tokens``: the image token of a VLM) at −inf. That is the distribution sampled from, up to
history-dependent processors (``repetition_penalty``, ``no_repeat_ngram_size``, ``min_new_tokens``,
…, none on by default) and the top-k / top-p / min-p truncation, which it does not reflect.

TRL's own entropies are not used: its fused LM head rounds the logits to the model's dtype before its
float32 softmax, which in bf16, at a trained model's logit scale, moves the entropies by ~0.5–1.5%
(median) and 3–7% (max) (docs/rl.md). Which pass the trainer hooks is in :mod:`egt.rl.trainer`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributed.tensor import DTensor
from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled
from trl.trainer.utils import maybe_gather_lm_head_ctx

from egt.entropy import token_entropy_from_hidden


class RolloutEntropyRecorder:
    """Forward hook for the policy's backbone: float32 token entropies from its final hidden states.

    Each backbone call appends ``token_entropy_from_hidden(h, W, b, τ)`` of the positions whose next
    token the LM head scores: with ``keep=None`` (generation) the last position, ``[b]`` per decoding
    step; with ``keep=k`` (a forward over prompt + completion) the k positions that predict the
    completion, ``[b, k]`` per call, 0 where the attention mask is 0. W and b are the LM head's in
    float32 (copied once per recorder, gathered under ZeRO-3 / FSDP2); ``suppressed`` token ids get
    b = −inf, as generation's ``suppress_tokens`` does.
    """

    def __init__(
        self, head: torch.nn.Module, temperature: float, suppressed: Sequence[int] = (), keep: int | None = None
    ):
        self.head, self.temperature, self.suppressed, self.keep = head, temperature, list(suppressed), keep
        self.parts: list[torch.Tensor] = []  # [b] per step (keep=None) or [b, k] per call
        self._weight: torch.Tensor | None = None  # [V, h] float32
        self._bias: torch.Tensor | None = None  # [V] float32, or None

    def _float32_head(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._weight is None:
            weight, bias = self.head.weight, self.head.bias
            with maybe_gather_lm_head_ctx(weight, bias):
                if isinstance(weight, DTensor):
                    weight, bias = weight.full_tensor(), None if bias is None else bias.full_tensor()
                copy = is_deepspeed_zero3_enabled()  # the gathered weight is freed on leaving the block
                self._weight = weight.detach().to(torch.float32, copy=copy)  # [V, h]
                if bias is not None:
                    self._bias = bias.detach().to(torch.float32, copy=True)  # [V]
            if self.suppressed:
                if self._bias is None:
                    self._bias = self._weight.new_zeros(self._weight.shape[0])  # [V]
                self._bias[self.suppressed] = float("-inf")
        return self._weight, self._bias

    def __call__(self, module, args, kwargs, output) -> None:
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]  # [b, L, h]
        weight, bias = self._float32_head()
        mask = None
        if self.keep is None:
            rows = hidden[:, -1]  # [b, h], predicts the token sampled at this step
        else:
            rows = hidden[:, -self.keep - 1 : -1]  # [b, k, h], predict the k completion tokens
            attention = kwargs.get("attention_mask")
            if isinstance(attention, torch.Tensor) and attention.dim() == 2:
                mask = attention[:, -self.keep :] != 0  # [b, k]
        self.parts.append(
            token_entropy_from_hidden(rows, weight, mask=mask, lm_head_bias=bias, temperature=self.temperature)
        )
