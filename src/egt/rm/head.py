"""The reward head, last-token pooling and the losses of a scalar reward model (docs/methods.md §6).

Pure functions over tensors; :class:`egt.rm.model.RewardModel` wires them to a backbone::

    pooled = hidden[b, last position where attention_mask == 1]     # [B, h]  pool_last_token
    reward = head(pooled)                                           # [B]     build_head
    loss   = mean(−log σ(r_chosen − r_rejected − margin))           # []      bradley_terry_loss

Heads: ``linear`` (``Linear(h, 1)``) and BaseReward's ``mlp`` (``Linear(h, w) → act → Linear(w, 1)``,
``w = h`` and ``act = SiLU`` by default; BaseReward found two layers with SiLU best, one linear
layer worst). The pooled position is found from the mask itself, so left and right padding give
the same reward. :func:`next_token_loss` is the optional LM regulariser on the chosen sequences
(GRM, Yang et al. 2024; see :mod:`egt.rm.trainer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from egt.errors import EgtError

HEAD_TYPES = ("linear", "mlp")


@dataclass
class HeadConfig:
    """Which head sits on the pooled hidden state (docs/methods.md §6)."""

    type: str = "mlp"  # linear | mlp (BaseReward's choice)
    hidden_size: int = 0  # width of the mlp's inner layer; 0 = the backbone's hidden size
    activation: str = "silu"  # any name in transformers' ACT2FN; BaseReward: silu

    def validate(self) -> HeadConfig:
        if self.type not in HEAD_TYPES:
            raise EgtError(f"field 'head': unknown head type {self.type!r} (one of {', '.join(HEAD_TYPES)})")
        from transformers.activations import ACT2FN

        if self.type == "mlp" and self.activation not in ACT2FN:
            raise EgtError(f"field 'head_activation': unknown activation {self.activation!r}")
        if self.hidden_size < 0:
            raise EgtError(f"field 'head_hidden_size': must be ≥ 0, got {self.hidden_size}")
        return self

    def signature(self, input_size: int) -> tuple:
        """What the head computes, defaults resolved: two configs with equal signatures build the same head."""
        if self.type == "linear":
            return ("linear",)
        return ("mlp", self.hidden_size or input_size, self.activation)


def build_head(cfg: HeadConfig, input_size: int, init_std: float = 0.02) -> nn.Module:
    """``linear``: ``Linear(h, 1)``; ``mlp``: ``Linear(h, w) → act → Linear(w, 1)``.

    The output layer starts small (std ``init_std``, zero bias), so a fresh model's rewards are
    ≈ 0 and its Bradley–Terry loss ≈ ln 2.
    """
    from transformers.activations import ACT2FN

    cfg.validate()
    if cfg.type == "linear":
        head = nn.Sequential(nn.Linear(input_size, 1))
    else:
        width = cfg.hidden_size or input_size
        head = nn.Sequential(nn.Linear(input_size, width), ACT2FN[cfg.activation], nn.Linear(width, 1))
    nn.init.normal_(head[-1].weight, std=init_std)
    nn.init.zeros_(head[-1].bias)
    return head


def last_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-pad token of each row, for left, right or no padding.

    ``attention_mask``: ``[B, L]`` of 0/1 → ``[B]`` long. A row with no token at all maps to 0.
    """
    length = attention_mask.shape[-1]
    positions = torch.arange(length, device=attention_mask.device).expand_as(attention_mask)  # [B, L]
    return (positions * attention_mask.long()).argmax(dim=-1)  # last index where the mask is 1


def pool_last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``hidden`` ``[B, L, h]`` → the hidden state at each row's last non-pad token, ``[B, h]``."""
    index = last_token_positions(attention_mask)  # [B]
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def bradley_terry_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | float | None = None
) -> torch.Tensor:
    """``mean(−log σ(r_chosen − r_rejected − margin))`` over pairs.

    ``chosen``, ``rejected``: ``[B]`` rewards; ``margin``: ``[B]``, a float or None (= 0). A fresh
    model with rewards ≈ 0 gives ln 2 ≈ 0.693.
    """
    diff = chosen - rejected  # [B]
    if margin is not None:
        diff = diff - margin
    return -F.logsigmoid(diff).mean()


def next_token_loss(hidden: torch.Tensor, labels: torch.Tensor, lm_head: nn.Module) -> torch.Tensor:
    """Next-token cross-entropy of ``lm_head`` on ``hidden`` ``[B, L, h]``; ``labels`` ``[B, L]``
    with −100 where no loss is taken. Only the labelled positions go through the LM head."""
    targets = labels[:, 1:]  # [B, L-1]: position t predicts token t+1
    keep = targets != -100
    if not keep.any():
        return hidden.sum() * 0.0
    logits = lm_head(hidden[:, :-1][keep]).float()  # [N, V], labelled positions only
    return F.cross_entropy(logits, targets[keep])
