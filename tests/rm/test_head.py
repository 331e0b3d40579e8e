"""The reward head, last-token pooling and the losses: shapes and hand-worked values."""

from __future__ import annotations

import math

import pytest
import torch

from egt.errors import EgtError
from egt.rm.head import (
    HeadConfig,
    bradley_terry_loss,
    build_head,
    last_token_positions,
    next_token_loss,
    pool_last_token,
)


def test_head_shapes():
    x = torch.randn(5, 32)  # [B, h]
    linear = build_head(HeadConfig("linear"), 32)
    assert [type(m).__name__ for m in linear] == ["Linear"]
    assert linear(x).shape == (5, 1)
    mlp = build_head(HeadConfig("mlp"), 32)
    assert [tuple(m.weight.shape) for m in mlp if isinstance(m, torch.nn.Linear)] == [(32, 32), (1, 32)]
    assert type(mlp[1]).__name__ == "SiLUActivation" or isinstance(mlp[1], torch.nn.SiLU)
    wide = build_head(HeadConfig("mlp", hidden_size=7, activation="gelu"), 32)
    assert wide[0].weight.shape == (7, 32) and wide(x).shape == (5, 1)
    assert torch.all(wide[-1].bias == 0)


@pytest.mark.parametrize(
    "bad, why",
    [
        (HeadConfig("conv"), r"field 'head': unknown head type 'conv' \(one of linear, mlp\)"),
        (HeadConfig("mlp", activation="nope"), "field 'head_activation': unknown activation 'nope'"),
        (HeadConfig("mlp", -1), "field 'head_hidden_size': must be ≥ 0, got -1"),
    ],
)
def test_bad_head_config(bad, why):
    with pytest.raises(EgtError, match=why):
        bad.validate()


def test_last_token_positions_left_and_right_padding():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    assert last_token_positions(right).tolist() == [2, 4, 0]
    assert last_token_positions(left).tolist() == [4, 4, 4]
    hidden = torch.arange(3 * 5, dtype=torch.float32).view(3, 5, 1)  # hidden[b, t] = 5b + t
    assert pool_last_token(hidden, right).squeeze(-1).tolist() == [2.0, 9.0, 10.0]
    assert pool_last_token(hidden, left).squeeze(-1).tolist() == [4.0, 9.0, 14.0]


def test_bradley_terry_loss_by_hand():
    """r_c − r_r = (2, 0, −1): loss = mean(log(1+e^-2), log 2, log(1+e)) = (0.1269 + 0.6931 + 1.3133)/3."""
    chosen, rejected = torch.tensor([3.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 1.0])
    expected = (math.log1p(math.exp(-2)) + math.log(2) + math.log1p(math.e)) / 3
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected, rel=1e-6)
    # a margin of 1 shifts every difference down by 1: (1, −1, −2)
    with_margin = (math.log1p(math.exp(-1)) + math.log1p(math.e) + math.log1p(math.exp(2))) / 3
    assert bradley_terry_loss(chosen, rejected, 1.0).item() == pytest.approx(with_margin, rel=1e-6)
    assert bradley_terry_loss(chosen, rejected, torch.ones(3)).item() == pytest.approx(with_margin, rel=1e-6)
    assert bradley_terry_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(math.log(2))


def test_head_signature_resolves_defaults():
    assert HeadConfig("mlp").signature(32) == HeadConfig("mlp", hidden_size=32).signature(32)
    assert HeadConfig("mlp").signature(32) != HeadConfig("mlp", hidden_size=7).signature(32)
    assert HeadConfig("linear", hidden_size=7).signature(32) == HeadConfig("linear").signature(32)
    assert HeadConfig("mlp", activation="gelu").signature(32) != HeadConfig("mlp").signature(32)


def test_next_token_loss_by_hand():
    """An LM head that maps hidden state e_k to logits 10·e_k predicts token k with probability
    e^10 / (e^10 + V − 1); only labelled positions count, position t predicting label t+1."""
    vocab = 4
    lm_head = torch.nn.Linear(vocab, vocab, bias=False)
    with torch.no_grad():
        lm_head.weight.copy_(10 * torch.eye(vocab))
    hidden = torch.eye(vocab)[None]  # [1, 4, 4]: position t holds e_t, so it predicts token t
    labels = torch.tensor([[-100, 0, 2, -100]])  # position 0 → 0 (right), position 1 → 2 (wrong), 2 → unlabelled
    right = -math.log(math.exp(10) / (math.exp(10) + vocab - 1))
    wrong = -math.log(1 / (math.exp(10) + vocab - 1))
    assert next_token_loss(hidden, labels, lm_head).item() == pytest.approx((right + wrong) / 2, rel=1e-5)
    nothing = next_token_loss(hidden, torch.full_like(labels, -100), lm_head)
    assert nothing.item() == 0.0
