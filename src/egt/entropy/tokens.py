"""Token entropy for entropy-guided training (EGT, arXiv 2602.01884, method; docs/methods.md §2).

``token_entropy`` / ``token_entropy_from_hidden`` — the per-token entropy H_t of the next-token
distribution, over the whole vocabulary, in float32. One function serves scoring, GTPO weights,
logging and analysis. Neither ever holds a float32 copy of the full ``[N, V]`` logits: rows are
processed ``chunk_size`` at a time (with the hidden-state variant the logits of one chunk are the
only ``[*, V]`` tensors alive). The per-response and pool statistics read off these entropies are
in :mod:`egt.entropy.signals`.

Departures from the paper, both deliberate:

* The entropy is computed as ``H = log s − Σ_v q_v · (z_v − m)`` with ``m = max z``,
  ``s = Σ exp(z − m)``, ``q = exp(z − m) / s`` — algebraically EGT's ``logsumexp(z) − Σ p·z``, but
  both terms are non-negative, so there is no cancellation for large logits.
* Entropies carry no gradient (``torch.no_grad``): EGT uses them as selection statistics and GTPO
  as detached weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["DEFAULT_CHUNK_SIZE", "token_entropy", "token_entropy_from_hidden"]

DEFAULT_CHUNK_SIZE = 256
"""Rows per chunk. At Qwen's V = 151,936 one chunk's two float32 buffers take 2·256·V·4 B ≈ 311 MB;
``bench/entropy_memory.py`` measures ~4% of the naive path's peak for 4,096 tokens, and a faster run."""


def _entropy_rows_(shifted: Tensor, probs: Tensor) -> Tensor:
    """Entropy of each row of ``shifted`` (float32 ``[n, V]``, overwritten) → float32 ``[n]``.

    ``probs`` is a float32 scratch buffer of the same shape. Masked (``-inf``) logits contribute 0;
    a row that is entirely ``-inf`` gets entropy 0.
    """
    row_max = shifted.amax(dim=-1, keepdim=True)  # [n, 1]
    row_max.masked_fill_(row_max == -math.inf, 0.0)  # all-masked row: shift by 0, not by -inf
    shifted.sub_(row_max)  # z − m ≤ 0
    # -inf → most negative finite: exp gives exactly 0 and 0 · finite = 0 (never 0 · -inf = NaN).
    shifted.clamp_(min=torch.finfo(torch.float32).min)
    torch.exp(shifted, out=probs)  # exp(z − m) ∈ [0, 1], [n, V]
    total = probs.sum(dim=-1)  # s ≥ 1, or 0 for an all-masked row, [n]
    weighted = probs.mul_(shifted).sum(dim=-1)  # Σ exp(z − m)·(z − m) ≤ 0, [n]
    has_mass = total > 0
    safe_total = torch.where(has_mass, total, 1.0)
    entropy = safe_total.log() - weighted / safe_total  # both terms ≥ 0
    return entropy.masked_fill_(~has_mass, 0.0)


@torch.no_grad()
def token_entropy(logits: Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tensor:
    """Entropy of the softmax over the last dimension, in float32 (EGT arXiv 2602.01884; docs/methods.md §2).

    ``H = logsumexp(z) − Σ_v softmax(z)_v · z_v = −Σ_v p_v log p_v`` (natural log).

    Args:
        logits: ``[..., V]`` in any floating dtype; ``-inf`` marks masked vocabulary entries.
        chunk_size: rows of the flattened ``[N, V]`` processed at a time; the float32 working set
            is two ``[chunk_size, V]`` buffers whatever N is.

    Returns:
        float32 ``[...]``. Masked entries contribute 0 (``0·(−inf) := 0``); a row that is all
        ``-inf`` gets 0. Never NaN unless a logit is NaN or ``+inf``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}")
    vocab = logits.shape[-1]
    rows = logits.reshape(-1, vocab)  # [N, V], a view when contiguous
    num_rows = rows.shape[0]
    out = torch.empty(num_rows, dtype=torch.float32, device=logits.device)  # [N]
    width = min(chunk_size, num_rows)
    shifted = torch.empty(width, vocab, dtype=torch.float32, device=logits.device)  # reused
    probs = torch.empty_like(shifted)
    for start in range(0, num_rows, chunk_size):
        n = min(chunk_size, num_rows - start)
        shifted[:n].copy_(rows[start : start + n])  # upcast fp16/bf16 → float32, chunk only
        out[start : start + n] = _entropy_rows_(shifted[:n], probs[:n])
    return out.reshape(logits.shape[:-1])


@torch.no_grad()
def token_entropy_from_hidden(
    hidden: Tensor,
    lm_head_weight: Tensor,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    mask: Tensor | None = None,
    lm_head_bias: Tensor | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """Token entropy straight from final hidden states, never holding float32 ``[B, T, V]``.

    Equal to ``token_entropy((hidden @ lm_head_weight.T + lm_head_bias) / temperature)``. Rows
    (flattened ``B·T``, masked-out rows dropped first) go through the LM head ``chunk_size`` at a
    time; the logits of one chunk are the only ``[*, V]`` tensors alive (docs/methods.md §2).

    Args:
        hidden: ``[..., h]`` (typically ``[B, T, h]``), the model's final hidden states.
        lm_head_weight: ``[V, h]``. The matmul runs in this dtype, as the model's own ``lm_head``
            does; the softmax and entropy run in float32.
        chunk_size: rows per chunk; the working set is ~``chunk_size · V`` float32 values × 2.
        mask: optional ``[...]`` (bool or 0/1); positions where it is 0 get entropy 0 and cost
            nothing.
        lm_head_bias: optional ``[V]``.
        temperature: divides the logits — the entropy of the distribution actually sampled from
            (EGT samples rollouts at τ; docs/methods.md §2 default τ = 1.0).

    Returns:
        float32 ``[...]`` (``[B, T]``).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    lead_shape, width = hidden.shape[:-1], hidden.shape[-1]
    vocab = lm_head_weight.shape[0]
    rows = hidden.reshape(-1, width)  # [N, h]
    out = torch.zeros(rows.shape[0], dtype=torch.float32, device=hidden.device)  # [N]
    keep = None
    if mask is not None:
        if mask.shape != lead_shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != hidden leading shape {tuple(lead_shape)}")
        keep = mask.reshape(-1).nonzero().squeeze(1)  # [M] indices of positions to score
        rows = rows.index_select(0, keep)  # [M, h]
    num_rows = rows.shape[0]
    if num_rows == 0:
        return out.reshape(lead_shape)

    weight_t = lm_head_weight.t()  # [h, V], a view
    in_float32 = lm_head_weight.dtype == torch.float32
    chunk = min(chunk_size, num_rows)
    logits = torch.empty(chunk, vocab, dtype=torch.float32, device=hidden.device)  # reused
    probs = torch.empty_like(logits)
    scored = torch.empty(num_rows, dtype=torch.float32, device=hidden.device)  # [M]
    for start in range(0, num_rows, chunk_size):
        n = min(chunk_size, num_rows - start)
        x = rows[start : start + n].to(lm_head_weight.dtype)  # [n, h]
        z = logits[:n]  # [n, V]
        if in_float32:
            torch.mm(x, weight_t, out=z)
        else:
            z.copy_(x @ weight_t)  # low-precision logits as the model makes them, then float32
        if lm_head_bias is not None:
            z.add_(lm_head_bias)
        if temperature != 1.0:
            z.div_(temperature)
        scored[start : start + n] = _entropy_rows_(z, probs[:n])

    if keep is None:
        out = scored
    else:
        out[keep] = scored
    return out.reshape(lead_shape)
