"""Tests for egt.rl.advantages: hand-worked cases, the identities of docs/methods.md §5, edge cases.

Estimators are called by name through :func:`egt.rl.estimators.compute_advantages` (what the trainer
uses) where a test covers all of them; the registry itself is tested in test_estimators.py."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from egt.rl.advantages import (
    STD_EPS,
    dr_grpo_advantages,
    grpo_advantages,
    grpo_s_advantages,
    grpo_s_shaped_rewards,
    gtpo_advantages,
    gtpo_shaped_rewards,
)
from egt.rl.estimators import compute_advantages

NAN = float("nan")
ESTIMATORS = ("grpo", "dr_grpo", "gtpo", "grpo_s")


def advantages(name, rewards, correct, entropies, mask, group_size, **kwargs):
    """Run any registered estimator through the trainer's dispatch (entropies go only where needed)."""
    return compute_advantages(name, rewards, mask, group_size, correct=correct, entropies=entropies, **kwargs)


def random_batch(groups=3, group_size=4, length=6, seed=0):
    """Binary-outcome batch with variable lengths (every response has ≥ 1 token)."""
    gen = torch.Generator().manual_seed(seed)
    batch = groups * group_size
    correct = torch.rand(batch, generator=gen) > 0.5
    rewards = correct.float() * 2 - 1  # ±1
    rewards[::group_size] = 1.0  # at least one O+ ...
    correct[::group_size] = True
    rewards[1::group_size] = -1.0  # ... and one O− per group
    correct[1::group_size] = False
    entropies = torch.rand(batch, length, generator=gen) * 3
    lengths = torch.randint(1, length + 1, (batch,), generator=gen)
    mask = torch.arange(length)[None, :] < lengths[:, None]  # [B, T] bool
    return rewards, correct, entropies, mask


# The 4-response, 3-token group used by the hand-worked GTPO / GRPO-S cases.
# r = [1, 1, −1, −1], correct = [T, T, F, F], lengths [3, 2, 3, 1]; padding holds junk.
HAND_REWARDS = torch.tensor([1.0, 1.0, -1.0, -1.0])
HAND_CORRECT = torch.tensor([True, True, False, False])
HAND_ENTROPIES = torch.tensor([[1.0, 0.5, 2.0], [1.0, 1.5, 9.0], [0.5, 1.0, 4.0], [2.0, NAN, -5.0]])
HAND_MASK = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 0, 0]])
HAND_SHAPED = [[1.5, 1.25, 1.5], [1.5, 1.75, 0.0], [-1.8, -1.5, -1.5], [-1.2, 0.0, 0.0]]


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------


def test_grpo_hand_computed():
    """r = [1, 0, 0, 1]: mean 0.5, unbiased std = sqrt(4·0.25 / 3) = sqrt(1/3) = 0.57735.

    A = ±0.5 / (0.57735 + 1e-4) = ±0.86588 on every valid token; two groups of 2 and 2 tokens.
    """
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 0]])
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    expected = torch.tensor([[a, a], [-a, 0.0], [-a, -a], [0.0, 0.0]])
    out = grpo_advantages(rewards, mask, group_size=4)
    torch.testing.assert_close(out, expected)
    assert abs(a - 0.865876) < 1e-5


def test_grpo_two_groups_hand_computed():
    """Groups [2, 0] and [3, 3]: the first has mean 1, std sqrt(2) ⇒ A = ±1/(1.41421 + 1e-4);
    the second has equal rewards ⇒ 0."""
    rewards = torch.tensor([2.0, 0.0, 3.0, 3.0])
    mask = torch.ones(4, 1)
    a = 1 / (math.sqrt(2) + 1e-4)
    torch.testing.assert_close(grpo_advantages(rewards, mask, 2), torch.tensor([[a], [-a], [0.0], [0.0]]))


def test_dr_grpo_hand_computed():
    """Dr. GRPO on r = [1, 0, 0, 1]: A = r − 0.5 = [0.5, −0.5, −0.5, 0.5], no std division."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 1]])
    expected = torch.tensor([[0.5, 0.5], [-0.5, 0.0], [-0.5, -0.5], [0.5, 0.5]])
    torch.testing.assert_close(dr_grpo_advantages(rewards, mask, 4), expected)
    torch.testing.assert_close(grpo_advantages(rewards, mask, 4, scale_by_std=False), expected)


def test_gtpo_shaped_rewards_hand_computed():
    """α1 = 1, α2 = 0.5 on the hand group (H rows [1, .5, 2], [1, 1.5, ·], [.5, 1, 4], [2, ·, ·]).

    t=0: P={0,1}, d=2, H=1,1 → bonus 0.5·1/2·2 = 0.5 each → 1.5, 1.5.
         N={2,3}, h=2, u = 1/0.5, 1/2 = 2, 0.5, Σu = 2.5 → penalty 0.5·2/2.5·2 = 0.8 and
         0.5·0.5/2.5·2 = 0.2 → −1.8, −1.2.
    t=1: P={0,1}, H=.5,1.5, ΣH=2 → bonus 0.25, 0.75 → 1.25, 1.75; N={2} (3 has ended), h=1 →
         penalty 0.5·1·1 = 0.5 → −1.5.
    t=2: P={0} (1 has ended), d=1 → bonus 0.5·2/2·1 = 0.5 → 1.5; N={2} → −1.5.
    Padding is 0 (its NaN / negative junk is ignored).
    """
    out = gtpo_shaped_rewards(HAND_REWARDS, HAND_CORRECT, HAND_ENTROPIES, HAND_MASK, 4, 1.0, 0.5)
    torch.testing.assert_close(out, torch.tensor(HAND_SHAPED))


def test_gtpo_joint_hand_computed():
    """Joint normalisation of the hand group, each response weighing 1 (docs/methods.md §5).

    r̃ rows (active tokens): [1.5, 1.25, 1.5], [1.5, 1.75], [−1.8, −1.5, −1.5], [−1.2].
    Response means: 17/12, 13/8, −8/5, −6/5 ⇒ μ = (17/12 + 13/8 − 8/5 − 6/5) / 4 = 29/480 = 0.0604167.
    (1/n_i) Σ_t (r̃ − μ)²: 1.853303, 2.463546, 2.776984, 1.588650; Σ = 8.682483,
    σ² = 8.682483 / 3 = 2.894161, σ = 1.701223.
    A = (r̃ − μ) / (σ + 1e-4): A(1.5) = 1.439583 / 1.701323 = 0.84616, A(1.25) = 0.69921,
    A(1.75) = 0.99310, A(−1.8) = −1.09351, A(−1.5) = −0.91718, A(−1.2) = −0.74084.
    (The token-weighted normalisation this replaced gave A(1.5) = 0.83686.)
    """
    mean = 29 / 480
    std = math.sqrt(500111 / 172800)
    assert abs(std - 1.701223) < 1e-6
    expected = torch.tensor(HAND_SHAPED)
    expected = torch.where(HAND_MASK.bool(), (expected - mean) / (std + 1e-4), 0.0)
    out = gtpo_advantages(HAND_REWARDS, HAND_CORRECT, HAND_ENTROPIES, HAND_MASK, 4, 1.0, 0.5)
    torch.testing.assert_close(out, expected)
    hand = [[0.84616, 0.69921, 0.84616], [0.84616, 0.99310, 0.0], [-1.09351, -0.91718, -0.91718], [-0.74084, 0, 0]]
    torch.testing.assert_close(out, torch.tensor(hand), atol=1e-4, rtol=0)


def test_gtpo_separate_hand_computed():
    """Separate normalisation of the hand group, each response weighing 1 within its set.

    O+ = responses 0, 1 (r̃ [1.5, 1.25, 1.5], [1.5, 1.75]): means 17/12, 13/8 ⇒ μ+ = 73/48 = 1.520833;
    (1/n_i) Σ_t (r̃ − μ+)²: 19/768 = 0.024740, 61/2304 = 0.026476 ⇒ σ+² = (sum) / 1 = 59/1152,
    σ+ = 0.226308 → A(1.5) = −0.020833 / 0.226408 = −0.09202, A(1.25) = −1.19622, A(1.75) = 1.01218.
    O− = responses 2, 3 (r̃ [−1.8, −1.5, −1.5], [−1.2]): means −1.6, −1.2 ⇒ μ− = −1.4;
    (1/3)(0.16 + 0.01 + 0.01) = 0.06 and 0.04 ⇒ σ−² = 0.1, σ− = 0.316228
    → A(−1.8) = −0.4 / 0.316328 = −1.26451, A(−1.5) = −0.31613, A(−1.2) = 0.63226.
    """
    p_mean, p_std = 73 / 48, math.sqrt(59 / 1152)
    q_mean, q_std = -1.4, math.sqrt(0.1)
    shaped = torch.tensor(HAND_SHAPED)
    expected = torch.cat([(shaped[:2] - p_mean) / (p_std + 1e-4), (shaped[2:] - q_mean) / (q_std + 1e-4)])
    expected = torch.where(HAND_MASK.bool(), expected, 0.0)
    out = gtpo_advantages(HAND_REWARDS, HAND_CORRECT, HAND_ENTROPIES, HAND_MASK, 4, 1.0, 0.5, normalize="separate")
    torch.testing.assert_close(out, expected)
    hand = [[-0.09202, -1.19622, -0.09202], [-0.09202, 1.01218, 0.0], [-1.26451, -0.31613, -0.31613], [0.63226, 0, 0]]
    torch.testing.assert_close(out, torch.tensor(hand), atol=1e-4, rtol=0)


def test_grpo_s_hand_computed():
    """β1 = 1, β2 = 0.5 on the hand group.

    Ĥ = (1+.5+2)/3 = 7/6, (1+1.5)/2 = 5/4, (.5+1+4)/3 = 11/6, 2.  n = m = 2.
    O+: ΣĤ = 29/12 → bonus 0.5·(7/6)/(29/12)·2 = 14/29, 15/29 → r̂ = 43/29, 44/29.
    O−: u = 6/11, 1/2, Σu = 23/22 → penalty 0.5·(6/11)/(23/22)·2 = 12/23, 11/23 → r̂ = −35/23, −34/23.
    mean r̂ = 0 (bonuses and penalties both sum to 1); A = r̂ / (stdev(r̂) + 1e-4), per token.
    """
    shaped = [43 / 29, 44 / 29, -35 / 23, -34 / 23]
    out = grpo_s_shaped_rewards(HAND_REWARDS, HAND_CORRECT, HAND_ENTROPIES, HAND_MASK, 4, 1.0, 0.5)
    torch.testing.assert_close(out, torch.tensor(shaped))
    mean, std = statistics.fmean(shaped), statistics.stdev(shaped)
    assert abs(mean) < 1e-12
    per_response = torch.tensor([(v - mean) / (std + 1e-4) for v in shaped])
    expected = torch.where(HAND_MASK.bool(), per_response[:, None], 0.0)
    adv = grpo_s_advantages(HAND_REWARDS, HAND_CORRECT, HAND_ENTROPIES, HAND_MASK, 4, 1.0, 0.5)
    torch.testing.assert_close(adv, expected)


# ---------------------------------------------------------------------------------------------
# The identities of docs/methods.md §5
# ---------------------------------------------------------------------------------------------


def test_gtpo_alpha2_zero_equals_grpo_equal_lengths():
    """α2 = 0 ⇒ r̃_{i,t} = α1·r_i: one value per response, and GTPO's advantages are GRPO's."""
    gen = torch.Generator().manual_seed(1)
    rewards = torch.tensor([1.0, 0.2, -0.5, 0.7, 0.0, 1.0, -1.0, 0.3])
    correct = rewards > 0.5
    entropies = torch.rand(8, 5, generator=gen)
    mask = torch.ones(8, 5)
    gtpo = gtpo_advantages(rewards, correct, entropies, mask, 4, alpha2=0.0)
    torch.testing.assert_close(gtpo, grpo_advantages(rewards, mask, 4))
    assert torch.equal(gtpo, gtpo[:, :1].expand_as(gtpo))


def multi_level_batch(gen, groups, group_size, long=200):
    """Rewards from {0, 0.5, 1, 1.5, 2}, random O+ flags, lengths mixing 1, short and long (≥ 1)."""
    batch = groups * group_size
    levels = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0])
    rewards = levels[torch.randint(0, 5, (batch,), generator=gen)]
    correct = torch.rand(batch, generator=gen) > 0.5
    choices = torch.tensor([1, 1, 2, 3, 7, 20, long])
    lengths = choices[torch.randint(0, len(choices), (batch,), generator=gen)]
    mask = torch.arange(int(lengths.max()))[None, :] < lengths[:, None]  # [B, T]
    entropies = torch.rand(mask.shape, generator=gen) * 4
    return rewards, correct, entropies, mask


def test_gtpo_alpha2_zero_equals_grpo_any_lengths_and_reward_levels():
    """docs/methods.md §5 identity: α2 = 0 ⇒ GTPO (joint) = GRPO exactly, whatever the lengths (1 to
    200 tokens in one group) and the reward levels. Each response weighs 1 in μ and σ; under the
    token-weighted normalisation this replaced, long responses set the baseline and this fails."""
    gen = torch.Generator().manual_seed(21)
    for trial in range(40):
        group_size = 2 + trial % 5
        rewards, correct, entropies, mask = multi_level_batch(gen, 3, group_size)
        gtpo = gtpo_advantages(rewards, correct, entropies, mask, group_size, alpha2=0.0)
        grpo = grpo_advantages(rewards, mask, group_size)
        torch.testing.assert_close(gtpo, grpo, atol=1e-5, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    group_size=st.integers(2, 6),
    rewards=st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0]), min_size=12, max_size=12),
    lengths=st.lists(st.sampled_from([1, 2, 5, 40, 150]), min_size=12, max_size=12),
    correct=st.lists(st.booleans(), min_size=12, max_size=12),
    seed=st.integers(0, 2**16),
)
def test_property_gtpo_alpha2_zero_equals_grpo(group_size, rewards, lengths, correct, seed):
    """The α2 = 0 identity as a property: two groups, multi-level rewards, lengths 1 to 150."""
    batch = 2 * group_size
    rewards_t, lengths_t = torch.tensor(rewards[:batch]), torch.tensor(lengths[:batch])
    mask = torch.arange(int(lengths_t.max()))[None, :] < lengths_t[:, None]
    entropies = torch.rand(mask.shape, generator=torch.Generator().manual_seed(seed))
    gtpo = gtpo_advantages(rewards_t, torch.tensor(correct[:batch]), entropies, mask, group_size, alpha2=0.0)
    torch.testing.assert_close(gtpo, grpo_advantages(rewards_t, mask, group_size), atol=1e-5, rtol=1e-5)


def test_gtpo_long_response_does_not_set_the_baseline():
    """r = [2, 1, 0.5], lengths [1, 1, 100], α2 = 0. GRPO: mean 7/6, std 0.763763 ⇒
    A = [1.0909, −0.2182, −0.8728]. The token-weighted normalisation this replaced measured
    A = [9.4781, 3.0757, −0.1255] (mean (2 + 1 + 50)/102 = 0.5196 set by the long response):
    the second response's sign flipped. Response-weighted, GTPO gives GRPO's values."""
    rewards = torch.tensor([2.0, 1.0, 0.5])
    mask = torch.arange(100)[None, :] < torch.tensor([1, 1, 100])[:, None]
    entropies = torch.rand(3, 100, generator=torch.Generator().manual_seed(0))
    gtpo = gtpo_advantages(rewards, rewards > 0.5, entropies, mask, 3, alpha2=0.0)
    first = gtpo[:, 0]
    torch.testing.assert_close(first, torch.tensor([1.0909, -0.2182, -0.8728]), atol=1e-2, rtol=0)
    torch.testing.assert_close(gtpo, grpo_advantages(rewards, mask, 3))
    assert first[1] < 0


def test_gtpo_separate_alpha2_zero_is_grpo_within_each_set():
    """``separate`` with α2 = 0: within O+ (and within O−) each response weighs 1, so a response's
    advantage is (r_i − mean_set) / (stdev_set + 1e-4) over the set's responses, whatever the
    lengths; a set with fewer than two responses gets 0, a tied group 0."""
    gen = torch.Generator().manual_seed(22)
    for trial in range(30):
        group_size = 2 + trial % 5
        rewards, correct, entropies, mask = multi_level_batch(gen, 3, group_size)
        out = gtpo_advantages(rewards, correct, entropies, mask, group_size, alpha2=0.0, normalize="separate")
        expected = torch.zeros(len(rewards))
        for start in range(0, len(rewards), group_size):
            rows = range(start, start + group_size)
            if len({rewards[i].item() for i in rows}) == 1:
                continue  # tied group
            for flag in (True, False):
                members = [i for i in rows if bool(correct[i]) == flag]
                if len(members) < 2:
                    continue
                values = [rewards[i].item() for i in members]
                mean, std = statistics.fmean(values), statistics.stdev(values)
                for i in members:
                    expected[i] = (rewards[i].item() - mean) / (std + 1e-4)
        torch.testing.assert_close(out, torch.where(mask, expected[:, None], 0.0), atol=1e-5, rtol=1e-5)


def test_grpo_s_beta2_zero_equals_grpo():
    """β2 = 0, β1 = 1 ⇒ r̂ = r, so GRPO-S is GRPO exactly."""
    rewards, correct, entropies, mask = random_batch(seed=3)
    torch.testing.assert_close(
        grpo_s_advantages(rewards, correct, entropies, mask, 4, beta2=0.0), grpo_advantages(rewards, mask, 4)
    )


def test_gtpo_uniform_entropy_equal_positive_shaped_rewards():
    """H_{i,t} = c_t for all i ⇒ bonus = α2·c_t/(d_t·c_t + ε)·d_t ≈ α2 for every i ∈ P_t, so the
    O+ shaped rewards at t are all equal (= α1 + α2 for r = 1), whatever the lengths."""
    rewards, correct, _, mask = random_batch(seed=4)
    per_position = torch.linspace(0.5, 3.0, mask.shape[1])
    entropies = per_position.expand(mask.shape[0], -1).clone()  # [B, T], uniform over i
    shaped = gtpo_shaped_rewards(rewards, correct, entropies, mask, 4, 1.0, 0.1)
    positive = mask & correct[:, None]
    torch.testing.assert_close(shaped[positive], torch.full_like(shaped[positive], 1.1))


def test_gtpo_alpha_sum_one_positive_rewards_sum_to_d_t():
    """α1 + α2 = 1, r = 1 ⇒ Σ_{i∈P_t} r̃ = d_t·α1 + α2·d_t·ΣH/(ΣH + ε) = d_t (up to ε)."""
    rewards, correct, entropies, mask = random_batch(seed=5)
    shaped = gtpo_shaped_rewards(rewards, correct, entropies, mask, 4, alpha1=0.7, alpha2=0.3)
    positive = (mask & correct[:, None]).float()  # [B, T]
    sums = (shaped * positive).reshape(3, 4, -1).sum(dim=1)  # [groups, T]
    d = positive.reshape(3, 4, -1).sum(dim=1)
    torch.testing.assert_close(sums, d)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_micro_batch_invariance_of_advantages(name):
    """Advantages are per group: the full batch and group-aligned micro-batches agree exactly,
    and a micro-batch trimmed to its own max length agrees up to float round-off."""
    rewards, correct, entropies, mask = random_batch(groups=3, length=7, seed=6)
    full = advantages(name, rewards, correct, entropies, mask, 4)
    for rows in (slice(0, 4), slice(4, 12), slice(8, 12)):
        part = advantages(name, rewards[rows], correct[rows], entropies[rows], mask[rows], 4)
        assert torch.equal(part, full[rows])
        length = int(mask[rows].sum(dim=1).max())
        trimmed = advantages(name, rewards[rows], correct[rows], entropies[rows, :length], mask[rows, :length], 4)
        torch.testing.assert_close(trimmed, full[rows, :length], rtol=1e-6, atol=1e-6)
        assert torch.all(full[rows, length:] == 0)


# ---------------------------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gtpo", "grpo_s"])
def test_padding_is_ignored(name):
    """Values past a response's length (NaN, huge) change nothing, and those positions do not
    count in P_t / N_t: the result equals the one with clean zero padding."""
    rewards, correct, entropies, mask = random_batch(seed=8)
    clean = torch.where(mask, entropies, 0.0)
    junk = torch.where(mask, entropies, torch.tensor(NAN))
    junk[0, -1] = 1e30 if not mask[0, -1] else junk[0, -1]
    expected = advantages(name, rewards, correct, clean, mask, 4)
    torch.testing.assert_close(advantages(name, rewards, correct, junk, mask, 4), expected)


def test_gtpo_d_t_counts_only_active_responses():
    """Two O+ responses, lengths 2 and 1, H = 1 everywhere, α1 = 1, α2 = 0.1: at t=0 d=2 →
    bonus 0.1·1/2·2 = 0.1 each; at t=1 only response 0 is active, d=1 → bonus 0.1·1/1·1 = 0.1."""
    rewards = torch.tensor([1.0, 1.0, 0.0])
    correct = torch.tensor([True, True, False])
    entropies = torch.ones(3, 2)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]])
    shaped = gtpo_shaped_rewards(rewards, correct, entropies, mask, 3)
    torch.testing.assert_close(shaped[:2], torch.tensor([[1.1, 1.1], [1.1, 0.0]]))
    torch.testing.assert_close(shaped[2], torch.tensor([-0.1, -0.1]))  # h=1: penalty α2·1·1


def test_gtpo_group_without_negatives():
    """All correct, r = [1, 0.5], H = [[1, 2], [3, 2]], α2 = 0.1 — only the bonus applies:
    t=0: ΣH=4, d=2 → 0.1·1/4·2 = 0.05, 0.1·3/4·2 = 0.15; t=1: 0.1 each.
    r̃ = [[1.05, 1.1], [0.65, 0.6]]."""
    out = gtpo_shaped_rewards(
        torch.tensor([1.0, 0.5]),
        torch.tensor([True, True]),
        torch.tensor([[1.0, 2.0], [3.0, 2.0]]),
        torch.ones(2, 2),
        2,
    )
    torch.testing.assert_close(out, torch.tensor([[1.05, 1.1], [0.65, 0.6]]))
    adv = gtpo_advantages(
        torch.tensor([1.0, 0.5]),
        torch.tensor([True, True]),
        torch.tensor([[1.0, 2.0], [3.0, 2.0]]),
        torch.ones(2, 2),
        2,
    )
    assert torch.isfinite(adv).all() and (adv[0] > 0).all() and (adv[1] < 0).all()


def test_gtpo_group_without_positives():
    """All incorrect, r = [0, −1], H = [[1, 2], [3, 2]], α2 = 0.1 — only the penalty applies:
    t=0: u = 1, 1/3, Σu = 4/3, h=2 → 0.1·(1)/(4/3)·2 = 0.15, 0.1·(1/3)/(4/3)·2 = 0.05;
    t=1: equal u → 0.1 each.  r̃ = [[−0.15, −0.1], [−1.05, −1.1]]: the confident (low-H) token
    is pushed down hardest."""
    out = gtpo_shaped_rewards(
        torch.tensor([0.0, -1.0]),
        torch.tensor([False, False]),
        torch.tensor([[1.0, 2.0], [3.0, 2.0]]),
        torch.ones(2, 2),
        2,
    )
    torch.testing.assert_close(out, torch.tensor([[-0.15, -0.1], [-1.05, -1.1]]))


def test_grpo_s_group_without_one_side():
    """GRPO-S, all correct, r = [1, 0], Ĥ = 1, 3, β2 = 0.1, n = 2: bonus 0.1·1/4·2 = 0.05 and
    0.15 → r̂ = [1.05, 0.15]; no penalty term (m = 0, no 0/0)."""
    out = grpo_s_shaped_rewards(
        torch.tensor([1.0, 0.0]), torch.tensor([True, True]), torch.tensor([[1.0], [3.0]]), torch.ones(2, 1), 2
    )
    torch.testing.assert_close(out, torch.tensor([1.05, 0.15]))


def test_zero_entropies_stay_finite():
    """All-zero H in P_t: bonus = α2·0/(0 + ε)·d = 0 ⇒ r̃ = α1·r. All-zero H in N_t: u = 1/ε
    each, u/Σu·h = 1 ⇒ penalty α2. A zero next to H = 1 in N_t: u = 1e8 vs ≈1 ⇒ penalties
    ≈ 2α2 and ≈ 2e-9."""
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    correct = rewards > 0
    entropies = torch.zeros(8, 2)
    entropies[7] = 1.0
    mask = torch.ones(8, 2)
    shaped = gtpo_shaped_rewards(rewards, correct, entropies, mask, 4)
    torch.testing.assert_close(shaped[:4], torch.tensor([[1.0] * 2, [1.0] * 2, [-0.1] * 2, [-0.1] * 2]))
    torch.testing.assert_close(shaped[6:], torch.tensor([[-0.2] * 2, [0.0] * 2]), atol=1e-6, rtol=0)
    for name in ESTIMATORS:
        assert torch.isfinite(advantages(name, rewards, correct, entropies, mask, 4)).all()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_all_equal_rewards_give_zero(name):
    """Equal base rewards in a group ⇒ advantage 0 everywhere in that group, even though
    GTPO's / GRPO-S's entropy terms would make the shaped rewards differ."""
    rewards, correct, entropies, mask = random_batch(groups=2, seed=9)
    rewards[4:] = 0.3
    out = advantages(name, rewards, correct, entropies, mask, 4)
    assert torch.all(out[4:] == 0)
    assert torch.any(out[:4] != 0)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_groups_are_independent(name):
    """Changing every input of group 1 leaves group 0's advantages bit-identical."""
    rewards, correct, entropies, mask = random_batch(groups=2, seed=10)
    before = advantages(name, rewards, correct, entropies, mask, 4)
    rewards[4:] = torch.tensor([5.0, -3.0, 0.0, 2.0])
    correct[4:] = ~correct[4:]
    entropies[4:] = entropies[4:] * 7
    mask[4:, 1:] = False
    after = advantages(name, rewards, correct, entropies, mask, 4)
    assert torch.equal(before[:4], after[:4])
    assert not torch.equal(before[4:], after[4:])


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.int64, torch.float32])
def test_dtype_shape_and_zeros_under_mask(name, mask_dtype):
    """float64 rewards, any mask dtype ⇒ float32 [B, T], exactly +0.0 where mask is 0."""
    rewards, correct, entropies, mask = random_batch(seed=11)
    out = advantages(name, rewards.double(), correct, entropies.double(), mask.to(mask_dtype), 4)
    assert out.dtype == torch.float32 and out.shape == mask.shape
    assert torch.all(out[~mask] == 0) and not torch.any(torch.signbit(out[~mask]))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_single_active_token_and_singleton_groups(name):
    """A group whose only active token is one response's first one: the std of one value is
    taken as 0, the centred value is 0 ⇒ advantage 0, not NaN. group_size = 1 ⇒ 0."""
    rewards = torch.tensor([1.0, 0.0])
    correct = torch.tensor([True, False])
    entropies = torch.tensor([[0.7, 0.2], [0.4, 0.1]])
    mask = torch.tensor([[1, 0], [0, 0]])
    out = advantages(name, rewards, correct, entropies, mask, 2)
    assert torch.isfinite(out).all()
    if name in ("gtpo",):
        assert torch.all(out == 0)
    singleton = advantages(name, rewards, correct, entropies, torch.ones(2, 2), 1)
    assert torch.all(singleton == 0)


@pytest.mark.parametrize("name", ["gtpo", "grpo_s"])
def test_entropies_with_grad_are_detached(name):
    """Entropies that require grad do not make the advantages require grad."""
    rewards, correct, entropies, mask = random_batch(seed=12)
    entropies.requires_grad_(True)
    out = advantages(name, rewards, correct, entropies, mask, 4)
    assert not out.requires_grad


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_error_batch_not_divisible():
    with pytest.raises(ValueError, match=r"B = 6 is not divisible by group_size = 4"):
        grpo_advantages(torch.zeros(6), torch.ones(6, 2), 4)
    with pytest.raises(ValueError, match=r"group_size must be a positive int, got 0"):
        grpo_advantages(torch.zeros(6), torch.ones(6, 2), 0)


def test_error_shapes_name_argument_and_shapes():
    rewards, correct, entropies, mask = random_batch(groups=1)
    with pytest.raises(ValueError, match=r"entropies must have the shape of mask \(4, 6\), got shape \(4, 5\)"):
        gtpo_advantages(rewards, correct, entropies[:, :5], mask, 4)
    with pytest.raises(ValueError, match=r"correct must have the shape of rewards \(4,\), got shape \(3,\)"):
        grpo_s_advantages(rewards, correct[:3], entropies, mask, 4)
    with pytest.raises(ValueError, match=r"mask must have shape \[B, T\] with B = 4.*got shape \(3, 6\)"):
        grpo_advantages(rewards, mask[:3], 4)
    with pytest.raises(ValueError, match=r"rewards must have shape \[B\], got shape \(4, 1\)"):
        grpo_advantages(rewards[:, None], mask, 4)
    with pytest.raises(TypeError, match=r"rewards must be a torch.Tensor, got list"):
        grpo_advantages([1.0, 0.0], mask[:2], 2)


def test_error_nan_rewards_name_indices():
    rewards = torch.tensor([1.0, NAN, 0.0, NAN])
    with pytest.raises(ValueError, match=r"NaN or inf at indices \[1, 3\]"):
        grpo_advantages(rewards, torch.ones(4, 2), 2)


def test_error_bad_entropies():
    rewards, correct, entropies, mask = random_batch(groups=1)
    entropies[2, 0] = NAN
    with pytest.raises(ValueError, match=r"entropies must be finite under the mask.*\(2, 0\)"):
        gtpo_advantages(rewards, correct, entropies, mask, 4)
    entropies[2, 0] = -2.0
    with pytest.raises(ValueError, match=r"negative at \(i, t\) \[\(2, 0\)\].*log-probabilities"):
        grpo_s_advantages(rewards, correct, entropies, mask, 4)


def test_error_bad_options():
    rewards, correct, entropies, mask = random_batch(groups=1)
    with pytest.raises(ValueError, match=r"normalize must be one of \('joint', 'separate'\), got 'tokens'"):
        gtpo_advantages(rewards, correct, entropies, mask, 4, normalize="tokens")


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@st.composite
def groups_of_responses(draw, equal_lengths=False):
    group_size = draw(st.integers(1, 4))
    groups = draw(st.integers(1, 3))
    length = draw(st.integers(1, 5))
    batch = groups * group_size
    rewards = draw(st.lists(st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0]), min_size=batch, max_size=batch))
    correct = draw(st.lists(st.booleans(), min_size=batch, max_size=batch))
    entropy = st.one_of(st.just(0.0), st.floats(0.0, 12.0, allow_nan=False, allow_infinity=False))
    entropies = draw(st.lists(entropy, min_size=batch * length, max_size=batch * length))
    if equal_lengths:
        lengths = [length] * batch
    else:
        lengths = draw(st.lists(st.integers(0, length), min_size=batch, max_size=batch))
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    return (
        torch.tensor(rewards),
        torch.tensor(correct),
        torch.tensor(entropies).reshape(batch, length),
        mask,
        group_size,
    )


@settings(max_examples=60, deadline=None)
@given(inputs=groups_of_responses(), normalize=st.sampled_from(["joint", "separate"]))
def test_property_finite_and_zero_off_mask(inputs, normalize):
    """Random rewards, flags, lengths (including empty responses) and entropies (including 0):
    every estimator is finite, float32 and 0 off the mask."""
    rewards, correct, entropies, mask, group_size = inputs
    for name in ESTIMATORS:
        kwargs = {"normalize": normalize} if name == "gtpo" else {}
        out = advantages(name, rewards, correct, entropies, mask, group_size, **kwargs)
        assert out.dtype == torch.float32 and out.shape == mask.shape
        assert torch.isfinite(out).all()
        assert torch.all(out[~mask] == 0)


@settings(max_examples=60, deadline=None)
@given(inputs=groups_of_responses(equal_lengths=True))
def test_property_grpo_sums_to_zero_per_position(inputs):
    """Equal lengths ⇒ at each t the group's GRPO advantages are (r − mean)/(std + 1e-4) summed
    over the group = 0; GTPO (joint) centres the response means, Σ_i (1/n_i) Σ_t A_{i,t} = 0, and
    with equal n_i its token sum over the group is 0 too."""
    rewards, correct, entropies, mask, group_size = inputs
    grpo = grpo_advantages(rewards, mask, group_size).reshape(-1, group_size, mask.shape[1])
    torch.testing.assert_close(grpo.sum(dim=1), torch.zeros_like(grpo[:, 0]), atol=1e-5, rtol=0)
    gtpo = gtpo_advantages(rewards, correct, entropies, mask, group_size)
    totals = gtpo.reshape(-1, group_size * mask.shape[1]).sum(dim=1)
    torch.testing.assert_close(totals, torch.zeros_like(totals), atol=1e-4, rtol=0)


def test_std_eps_is_trl_convention():
    assert STD_EPS == 1e-4
