"""StableReinforce (R1-Reward, Zhang et al. 2025, arXiv 2505.02835 §3.1): its two stability rules, pure functions.

R1-Reward trains its judge with REINFORCE++ plus two rules that keep the loss finite and its
gradient bounded; :class:`egt.rl.trainer.JudgeGRPOTrainer` applies them on top of TRL's GRPO loss.
Their public code (github.com/yfzhang114/r1_reward, commit 3693413) is the reference for the exact
rules:

- **Pre-CLIP** (``openrlhf/models/loss.py``, ``PolicyLoss.forward``, lines 71-73): the log-ratio
  ``log π_θ − log π_old`` is clamped to ``[log 1e-3, log 1e3]`` *before* the exponential and the PPO
  clip, so a token whose probability rose a million-fold gives ratio 1000, not an overflow; the
  gradient through a clamped log-ratio is 0 (``torch.clamp``). Here ``R`` is ``--ratio_preclip``
  (theirs: 1000): :func:`preclip_log_ratio`, and :func:`preclip_logps` for TRL's loss, which forms the
  log-ratio itself (module docstring of the trainer).
- **Advantage filter** (``openrlhf/trainer/ppo_utils/replay_buffer.py``, ``NaiveReplayBuffer.normalize``,
  lines 237-276, called once per rollout batch from ``openrlhf/trainer/ppo_trainer.py`` line 252):
  the batch's advantages are standardised over its response tokens (token-weighted mean, population
  std, variance floored at 1e-8) and every standardised value outside ±3 is set to 0. Here ``S`` is
  ``--advantage_filter_sigma`` (theirs: 3): :func:`filter_advantages`.

Departures from their code (each changes nothing in the common case): they compare the standardised
value with ``mean ± 3`` where ``mean`` is the *raw* advantages' mean (replay_buffer.py lines
265-266; the paper's rule is ±3 standard deviations, which is what ``±S`` about 0 is, and the two
agree when the raw mean is 0); they add 1e-8 to every standardised value (line 270; omitted); they
also zero values beyond ±10 (line 273; implied by ``S ≤ 10``). Non-finite values are zeroed, as theirs.
"""

from __future__ import annotations

import math

import torch

VARIANCE_FLOOR = 1e-8  # R1-Reward's rstd = clamp(var, 1e-8).rsqrt()


def preclip_log_ratio(log_ratio: torch.Tensor, max_ratio: float) -> torch.Tensor:
    """Pre-CLIP: ``clamp(log_ratio, −log R, log R)``, so ``exp`` of it lies in ``[1/R, R]``.

    Args:
        log_ratio: ``[B, T]`` (any shape) ``log π_θ − log π_old`` per token.
        max_ratio: R > 1 (R1-Reward: 1000).

    Returns:
        The clamped log-ratio, same shape and dtype; gradient 1 inside the band, 0 outside.
    """
    if not max_ratio > 1.0:
        raise ValueError(f"max_ratio must be > 1, got {max_ratio!r}")
    bound = math.log(max_ratio)
    return log_ratio.clamp(-bound, bound)


def preclip_logps(per_token_logps: torch.Tensor, old_per_token_logps: torch.Tensor, max_ratio: float) -> torch.Tensor:
    """The policy's log-probs moved so that TRL's ``per_token_logps − old_per_token_logps`` is pre-clipped.

    ``old + preclip_log_ratio(logps − old, R)`` where the log-ratio leaves ``[−log R, log R]``, and
    ``logps`` itself (bit for bit, gradient 1) inside, so a loss computed from the result equals the
    unclipped one wherever no ratio is extreme. Outside the band the value is ``old ± log R`` and the
    gradient 0, as R1-Reward's clamp.

    Args:
        per_token_logps: ``[B, T]`` log π_θ of the sampled tokens (with gradient).
        old_per_token_logps: ``[B, T]`` log π_old of the same tokens (no gradient needed).
        max_ratio: R > 1.

    Returns:
        ``[B, T]``, dtype of ``per_token_logps``.
    """
    old = old_per_token_logps.detach()
    log_ratio = per_token_logps - old  # [B, T]
    clipped = preclip_log_ratio(log_ratio, max_ratio)
    return torch.where(clipped == log_ratio, per_token_logps, old + clipped)


def filter_advantages(advantages: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """Advantage filter: standardise over the batch's response tokens, zero what lies beyond ±sigma.

    With m the mask, ``μ = Σ A·m / Σ m``, ``σ² = max(Σ (A − μ)²·m / Σ m, 1e-8)`` (population variance,
    token-weighted), ``z = (A − μ) / σ``; the result is ``z`` where ``|z| ≤ sigma`` and ``m ≠ 0``, else 0
    (also where ``z`` is not finite).

    Args:
        advantages: ``[B, T]`` per-token advantages of the whole batch, or ``[B]`` per response
            (broadcast over its tokens).
        mask: ``[B, T]`` 1 on response tokens, 0 on padding (bool or numeric).
        sigma: S > 0 (R1-Reward: 3).

    Returns:
        ``[B, T]`` float32. An empty mask gives all zeros.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    if advantages.dim() == 1:
        advantages = advantages[:, None].expand(mask.shape)
    if advantages.shape != mask.shape:
        raise ValueError(f"advantages {tuple(advantages.shape)} and mask {tuple(mask.shape)} differ in shape")
    valid = mask != 0  # [B, T]
    values = advantages.detach().to(torch.float32)
    weights = valid.to(torch.float32)
    count = weights.sum().clamp_min(1.0)
    mean = (torch.where(valid, values, 0.0)).sum() / count
    variance = (torch.where(valid, (values - mean) ** 2, 0.0)).sum() / count
    z = (values - mean) * variance.clamp_min(VARIANCE_FLOOR).rsqrt()  # [B, T]
    keep = valid & torch.isfinite(z) & (z.abs() <= sigma)
    return torch.where(keep, z, 0.0)
