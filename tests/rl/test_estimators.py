"""The estimator registry (egt.rl.estimators): built-ins, a toy estimator through the same dispatch, errors."""

from __future__ import annotations

import pytest
import torch

from egt.rl.advantages import dr_grpo_advantages, grpo_advantages, grpo_s_advantages, gtpo_advantages
from egt.rl.estimators import (
    ADVANTAGE_ESTIMATORS,
    compute_advantages,
    get_advantage_estimator,
    register_advantage_estimator,
)


def entropy_weighted(rewards, correct, entropies, mask, group_size, scale=1.0, sign_only=False):
    """Toy: ``A_{i,t} = scale · (r_i − mean_group) · H_{i,t}`` (O+ only; ``sign_only`` keeps the sign)."""
    grouped = rewards.float().reshape(-1, group_size)  # [n, G]
    centred = (grouped - grouped.mean(dim=1, keepdim=True)).reshape(-1, 1)  # [B, 1]
    if sign_only:
        centred = centred.sign()
    values = scale * centred * entropies.float() * correct.float()[:, None]  # [B, T]
    return torch.where(mask != 0, values, 0.0)


def test_builtins_declare_entropy_needs_and_parameters():
    assert set(ADVANTAGE_ESTIMATORS) == {"grpo", "dr_grpo", "gtpo", "grpo_s"}
    expected = {
        "grpo": (grpo_advantages, False, {"scale_by_std": True}),
        "dr_grpo": (dr_grpo_advantages, False, {}),
        "gtpo": (gtpo_advantages, True, {"alpha1": 1.0, "alpha2": 0.1, "normalize": "joint"}),
        "grpo_s": (grpo_s_advantages, True, {"beta1": 1.0, "beta2": 0.1}),
    }
    for name, (fn, needs_entropy, params) in expected.items():
        estimator = get_advantage_estimator(name)
        assert (estimator.fn, estimator.needs_entropy, estimator.params) == (fn, needs_entropy, params)


def test_dispatch_passes_entropies_only_where_needed():
    """grpo is called without correct / entropies (they are ignored); gtpo gets them and its parameters."""
    rewards, mask = torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.ones(4, 3)
    correct, entropies = rewards > 0.5, torch.rand(4, 3, generator=torch.Generator().manual_seed(0))
    got = compute_advantages("grpo", rewards, mask, 2, correct=correct, entropies=entropies, scale_by_std=False)
    assert torch.equal(got, grpo_advantages(rewards, mask, 2, scale_by_std=False))
    got = compute_advantages("gtpo", rewards, mask, 2, correct=correct, entropies=entropies, alpha2=0.3)
    assert torch.equal(got, gtpo_advantages(rewards, correct, entropies, mask, 2, alpha2=0.3))
    assert not torch.equal(got, gtpo_advantages(rewards, correct, entropies, mask, 2))


def test_a_toy_estimator_is_one_function_and_one_registration(estimator_registry):
    register_advantage_estimator("entropy_weighted", needs_entropy=True)(entropy_weighted)
    toy = get_advantage_estimator("entropy_weighted")
    assert toy.needs_entropy and toy.params == {"scale": 1.0, "sign_only": False}
    rewards, mask = torch.tensor([1.0, 0.0, 2.0, 0.0]), torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]])
    correct = torch.tensor([True, False, True, False])
    entropies = torch.tensor([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0], [0.5, 1.0, 1.5], [1.0, 1.0, 9.0]])
    got = compute_advantages("entropy_weighted", rewards, mask, 2, correct=correct, entropies=entropies, scale=2.0)
    # group means 0.5 and 1.0; O+ rows 0 and 2: 2·(+0.5)·H and 2·(+1.0)·H; O− rows 0; padding 0
    expected = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    assert torch.equal(got, expected)
    with pytest.raises(ValueError, match=r"'entropy_weighted' needs correct \[B\] and entropies \[B, T\]"):
        compute_advantages("entropy_weighted", rewards, mask, 2)
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['alpha2'\]; its parameters: scale, sign_only"):
        compute_advantages("entropy_weighted", rewards, mask, 2, correct=correct, entropies=entropies, alpha2=0.1)


def test_an_unknown_name_lists_the_known_ones(estimator_registry):
    with pytest.raises(ValueError, match=r"unknown advantage estimator 'ppo'; known: dr_grpo, grpo, grpo_s, gtpo$"):
        compute_advantages("ppo", torch.zeros(2), torch.ones(2, 1), 2)
    register_advantage_estimator("entropy_weighted", needs_entropy=True)(entropy_weighted)
    with pytest.raises(ValueError, match=r"known: dr_grpo, entropy_weighted, grpo, grpo_s, gtpo$"):
        get_advantage_estimator("ppo")


def test_registration_errors(estimator_registry):
    with pytest.raises(ValueError, match=r"'grpo' is already registered \(grpo_advantages\)"):
        register_advantage_estimator("grpo")(lambda rewards, mask, group_size: rewards)
    assert estimator_registry["grpo"].fn is grpo_advantages
    register_advantage_estimator("grpo")(grpo_advantages)  # the same function again (a module reload) is fine
    with pytest.raises(ValueError, match=r"must take \(rewards, correct, entropies, mask, group_size\) first"):
        register_advantage_estimator("toy", needs_entropy=True)(grpo_advantages)
    with pytest.raises(ValueError, match=r"parameters \['scale'\] need a default"):
        register_advantage_estimator("toy")(lambda rewards, mask, group_size, scale: rewards)
    assert "toy" not in estimator_registry
