"""StableReinforce (R1-Reward): the log-ratio pre-clip and the advantage filter, by hand-worked values."""

from __future__ import annotations

import math

import pytest
import torch

from egt.rl.stable_reinforce import filter_advantages, preclip_log_ratio, preclip_logps

LOG_1000 = math.log(1000.0)  # 6.907755...


def ppo_token_loss(log_ratio: torch.Tensor, advantage: float, eps_low=0.2, eps_high=0.28) -> torch.Tensor:
    """TRL's clipped token loss −min(r·A, clip(r)·A) for one token (as in its _compute_loss)."""
    ratio = torch.exp(log_ratio)
    return -torch.min(ratio * advantage, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * advantage)


def test_preclip_keeps_a_ratio_that_would_overflow_at_R():
    """log-ratio 100 (π_θ rose e^100-fold): exp overflows float32 to inf, and with a negative advantage the
    PPO min keeps the unclipped r·A, so the loss is inf. Pre-clipped at R = 1000 the ratio is 1000 and the
    token's loss is 1000·|A| = 1000; its gradient is 0."""
    log_ratio = torch.tensor(100.0, requires_grad=True)
    assert torch.isinf(ppo_token_loss(log_ratio, -1.0))
    clipped = preclip_log_ratio(log_ratio, 1000.0)
    assert clipped.item() == pytest.approx(LOG_1000)
    loss = ppo_token_loss(clipped, -1.0)
    assert loss.item() == pytest.approx(1000.0, rel=1e-5)
    loss.backward()
    assert log_ratio.grad.item() == 0.0  # outside the band, as R1-Reward's torch.clamp
    values = preclip_log_ratio(torch.tensor([-10.0, 0.5, 10.0]), 1000.0)
    torch.testing.assert_close(values, torch.tensor([-LOG_1000, 0.5, LOG_1000]))
    torch.testing.assert_close(torch.exp(values), torch.tensor([1e-3, math.exp(0.5), 1e3]))
    with pytest.raises(ValueError, match="> 1"):
        preclip_log_ratio(values, 1.0)


def test_preclip_logps_moves_only_the_extreme_tokens():
    """old −15, new −0.1: log-ratio 14.9 → moved to −15 + log 1000 = −8.092245; old −1, new −20: −19.0 →
    −1 − log 1000 = −7.907755; old −1, new −1.2 (ratio 0.82) stays −1.2 bit for bit, gradient 1."""
    logps = torch.tensor([[-0.1, -20.0, -1.2]], requires_grad=True)
    old = torch.tensor([[-15.0, -1.0, -1.0]])
    moved = preclip_logps(logps, old, 1000.0)
    torch.testing.assert_close(moved, torch.tensor([[-15.0 + LOG_1000, -1.0 - LOG_1000, -1.2]]))
    assert moved[0, 2].item() == logps[0, 2].item()
    torch.testing.assert_close(moved - old, preclip_log_ratio(logps - old, 1000.0))
    moved.sum().backward()
    assert logps.grad.tolist() == [[0.0, 0.0, 1.0]]


def test_advantage_filter_standardises_over_tokens_and_zeroes_the_outlier():
    """Nine valid tokens at 0 and one at 10 (padding 999 ignored): μ = 1, σ² = (9·1 + 81)/10 = 9, σ = 3;
    z = −1/3 for the zeros and (10 − 1)/3 = 3 for the outlier: kept at S = 3 (the bound is inclusive),
    zeroed at S = 2.9. Padding comes out 0."""
    advantages = torch.tensor([[0.0, 0, 0, 0, 0, 999], [0, 0, 0, 0, 10, 999]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 0]])
    third = -1.0 / 3.0
    expected = torch.tensor([[third] * 5 + [0.0], [third] * 4 + [3.0, 0.0]])
    torch.testing.assert_close(filter_advantages(advantages, mask, 3.0), expected)
    expected[1, 4] = 0.0
    torch.testing.assert_close(filter_advantages(advantages, mask, 2.9), expected)


def test_advantage_filter_broadcasts_per_response_advantages_over_their_tokens():
    """[B] advantages 1 and −1 over 2 and 1 tokens: μ = 1/3, σ² = (2·(2/3)² + (4/3)²)/3 = 8/9, so
    z = (2/3)/(2√2/3) = 1/√2 on the first response's tokens and (−4/3)/(2√2/3) = −√2 on the second's."""
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    out = filter_advantages(torch.tensor([1.0, -1.0]), mask, 3.0)
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(out, torch.tensor([[r, r, 0.0], [-math.sqrt(2), 0.0, 0.0]]))
    assert torch.equal(filter_advantages(torch.ones(2, 3), torch.zeros(2, 3), 3.0), torch.zeros(2, 3))
    torch.testing.assert_close(filter_advantages(torch.ones(2, 3), torch.ones(2, 3), 3.0), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="sigma"):
        filter_advantages(torch.ones(2, 3), torch.ones(2, 3), 0.0)
