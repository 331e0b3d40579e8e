"""Tests for ``egt.entropy.tokens`` and ``egt.entropy.signals``: hand-worked entropies, dtype/masking
edge cases, chunking invariance, the token-string statistics, ranks and vote entropy."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from egt.entropy import (
    answer_token_entropy,
    mixed_entropy,
    percentile_rank,
    reasoning_peak_entropy,
    reasoning_sentence_entropy,
    token_entropy,
    token_entropy_from_hidden,
    vote_entropy,
)

INF = math.inf


def reference_entropy(logits: torch.Tensor) -> torch.Tensor:
    """float64 −Σ p log p over the last dim, with 0 · log 0 := 0."""
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    probs = log_probs.exp()
    return -torch.where(probs > 0, probs * log_probs, 0.0).sum(-1)


# ----------------------------------------------------------------------------------------------
# token_entropy
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vocab", [1, 2, 7, 1000])
def test_uniform_distribution_has_entropy_log_v(vocab: int) -> None:
    """Equal logits (any constant) → p_v = 1/V → H = ln V."""
    logits = torch.full((3, vocab), 5.0)
    assert torch.allclose(token_entropy(logits), torch.full((3,), math.log(vocab)), atol=1e-5)


def test_one_hot_distribution_has_zero_entropy() -> None:
    """One finite logit, the rest masked → p = e_k → H = 0 exactly; a 100-nat margin → H ≈ 0."""
    masked = torch.tensor([[-INF, 3.0, -INF, -INF]])
    assert token_entropy(masked).item() == 0.0
    peaked = torch.tensor([[100.0, 0.0, 0.0, 0.0]])
    assert 0.0 <= token_entropy(peaked).item() < 1e-6


def test_hand_computed_entropy() -> None:
    """p = (1/2, 1/4, 1/4): H = ½ ln 2 + 2 · ¼ ln 4 = 1.5 ln 2."""
    logits = torch.tensor([0.5, 0.25, 0.25]).log() + 7.0  # shift must not matter
    assert token_entropy(logits).item() == pytest.approx(1.5 * math.log(2), abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_are_computed_in_float32(dtype: torch.dtype) -> None:
    logits = (torch.randn(4, 5, 3000, generator=torch.Generator().manual_seed(0)) * 4).to(dtype)
    entropy = token_entropy(logits, chunk_size=3)
    assert entropy.dtype == torch.float32 and entropy.shape == (4, 5)
    assert torch.allclose(entropy.double(), reference_entropy(logits), atol=2e-5)


def test_masked_logits_equal_entropy_of_the_unmasked_subset_and_never_nan() -> None:
    logits = torch.tensor(
        [
            [1.0, -INF, 2.0, -INF, 0.5],
            [-INF, -INF, -INF, -INF, -INF],  # fully masked row → 0
            [-INF, -INF, 4.0, -INF, -INF],  # one survivor → 0
        ]
    )
    entropy = token_entropy(logits)
    assert not entropy.isnan().any()
    expected = reference_entropy(torch.tensor([1.0, 2.0, 0.5])).item()
    assert entropy.tolist() == pytest.approx([expected, 0.0, 0.0], abs=1e-6)


def test_all_masked_half_precision_row_is_zero() -> None:
    logits = torch.full((2, 3, 8), -INF, dtype=torch.bfloat16)
    assert torch.equal(token_entropy(logits), torch.zeros(2, 3))


def test_chunking_and_shapes() -> None:
    logits = torch.randn(2, 3, 5, 50, generator=torch.Generator().manual_seed(1)) * 3
    expected = reference_entropy(logits).float()  # [2, 3, 5]
    for chunk_size in (1, 4, 7, 30, 1000):
        assert torch.allclose(token_entropy(logits, chunk_size=chunk_size), expected, atol=1e-5)
    assert token_entropy(torch.empty(0, 11)).shape == (0,)
    with pytest.raises(ValueError):
        token_entropy(logits, chunk_size=0)


def test_input_is_not_modified() -> None:
    logits = torch.randn(6, 20)
    before = logits.clone()
    token_entropy(logits, chunk_size=4)
    assert torch.equal(logits, before)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(min_value=-60, max_value=60, width=32), st.just(-INF)), min_size=1, max_size=40))
def test_entropy_lies_between_zero_and_log_v(row: list[float]) -> None:
    """0 ≤ H ≤ ln V for any logits, masked or not; and it matches the float64 reference."""
    logits = torch.tensor([row])
    entropy = token_entropy(logits).item()
    assert not math.isnan(entropy)
    assert 0.0 <= entropy <= math.log(len(row)) + 1e-5
    if any(v > -INF for v in row):
        assert entropy == pytest.approx(reference_entropy(logits).item(), abs=1e-5)


# ----------------------------------------------------------------------------------------------
# token_entropy_from_hidden
# ----------------------------------------------------------------------------------------------


def _hidden_case(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 7, 16, generator=gen)  # [B, T, h], B·T = 21
    weight = torch.randn(97, 16, generator=gen)  # [V, h]
    bias = torch.randn(97, generator=gen)  # [V]
    return hidden, weight, bias


@pytest.mark.parametrize("chunk_size", [1, 4, 5, 21, 64])
def test_from_hidden_equals_naive_logits_path(chunk_size: int) -> None:
    """Chunk sizes that divide B·T = 21 and ones that do not give the same [B, T] entropies."""
    hidden, weight, _ = _hidden_case()
    expected = token_entropy(hidden @ weight.T)
    actual = token_entropy_from_hidden(hidden, weight, chunk_size=chunk_size)
    assert actual.shape == (3, 7) and actual.dtype == torch.float32
    assert torch.allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [2, 5, 100])
def test_from_hidden_with_mask_bias_and_temperature(chunk_size: int) -> None:
    hidden, weight, bias = _hidden_case(seed=2)
    mask = torch.rand(3, 7, generator=torch.Generator().manual_seed(3)) > 0.4  # [B, T]
    mask[0, 0] = False
    expected = token_entropy((hidden @ weight.T + bias) / 0.7) * mask
    actual = token_entropy_from_hidden(
        hidden, weight, chunk_size=chunk_size, mask=mask.long(), lm_head_bias=bias, temperature=0.7
    )
    assert torch.allclose(actual, expected, atol=1e-5)
    assert actual[0, 0].item() == 0.0


def test_temperature_raises_entropy_and_fully_masked_input_is_zero() -> None:
    hidden, weight, _ = _hidden_case(seed=4)
    cold = token_entropy_from_hidden(hidden, weight, temperature=0.5)
    hot = token_entropy_from_hidden(hidden, weight, temperature=2.0)
    assert (hot > cold).all()
    nothing = token_entropy_from_hidden(hidden, weight, mask=torch.zeros(3, 7, dtype=torch.bool))
    assert torch.equal(nothing, torch.zeros(3, 7))
    with pytest.raises(ValueError):
        token_entropy_from_hidden(hidden, weight, temperature=0.0)
    with pytest.raises(ValueError):
        token_entropy_from_hidden(hidden, weight, mask=torch.ones(7, 3))


def test_from_hidden_in_bfloat16_matches_the_models_own_logits() -> None:
    """The matmul runs in bf16 like the model's lm_head; the entropy of those logits in float32."""
    hidden, weight, _ = _hidden_case(seed=5)
    hidden, weight = hidden.bfloat16(), weight.bfloat16()
    expected = token_entropy(hidden @ weight.T)
    assert torch.allclose(token_entropy_from_hidden(hidden, weight, chunk_size=4), expected, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# answer_token_entropy / reasoning_sentence_entropy
# ----------------------------------------------------------------------------------------------


def _entropies(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float32) / 10  # token i has entropy i/10


def test_answer_token_entropy_one_token_per_tag() -> None:
    tokens = ["<think>", "ok", ".", "</think>", "<answer>", "2", "</answer>"]
    assert answer_token_entropy(_entropies(7), tokens) == pytest.approx(0.5)


def test_answer_token_entropy_with_merged_tokens_and_whitespace() -> None:
    merged = ["<think>ok.</think>", "<answer>1", "</answer>"]
    assert answer_token_entropy(_entropies(3), merged) == pytest.approx(0.1)
    spaced = ["\n", "<think>", "x", "</think>", "\n", "<answer>", " ", "2", " </", "answer>", "\n"]
    assert answer_token_entropy(_entropies(11), spaced) == pytest.approx(0.7)  # whitespace is well-formed
    empty_pieces = ["<think>x</think>", "<answer>", "", "1", "</answer>"]  # a special token that decodes to ""
    assert answer_token_entropy(_entropies(5), empty_pieces) == pytest.approx(0.3)


def test_answer_token_entropy_returns_none_without_a_block() -> None:
    assert answer_token_entropy(_entropies(3), ["<think>", "x", "</think>"]) is None
    assert answer_token_entropy(_entropies(4), ["<think>x</think>", "<answer>", "maybe", "</answer>"]) is None
    assert answer_token_entropy(_entropies(3), ["<think>x</think>", "<answer>", "1"]) is None  # unclosed
    with pytest.raises(ValueError):
        answer_token_entropy(_entropies(2), ["<answer>1</answer>"])


@pytest.mark.parametrize(
    "tokens",
    [
        ["<think>", "x", "</think>", "<answer>", "3", "</answer>"],  # not a verdict the judge can give
        ["<think>", "x", "</think>", "<answer>", "1", "</answer>", "<answer>", "2", "</answer>"],  # two blocks
        ["<think>", "<answer>1</answer>?", "</think>", "<answer>", "2", "</answer>"],  # a tag in the reasoning
        ["<think>", "x", "</think>", "<answer>", "12", "</answer>"],  # two digits
        ["<think>", "x", "</think>", "<answer>", "2", "</answer>", " so 2"],  # text after the answer
        ["<answer>", "1", "</answer>"],  # no reasoning block
    ],
)
def test_answer_token_entropy_only_for_a_well_formed_verdict(tokens) -> None:
    """Issue 14: the old finder took the last block's first digit and gave all of these an entropy
    (0.4, 0.7, 0.4, 0.4, 0.4, 0.1); the strict parser rejects them, so there is none."""
    from egt.judge.parse import parse_verdict

    assert parse_verdict("".join(tokens)) is None
    assert answer_token_entropy(_entropies(len(tokens)), tokens) is None


def test_reasoning_sentence_entropy_hand_computed() -> None:
    """Sentences "The cat." (0.1, 0.2, 0.3) and " It sat!" (0.4, 0.5, 0.6); "\\n" alone is empty.

    Means 0.2 and 0.5 → 0.35. The answer tokens do not count.
    """
    tokens = ["<think>", "The", " cat", ".", " It", " sat", "!", "\n", "</think>", "<answer>", "1", "</answer>"]
    assert reasoning_sentence_entropy(_entropies(12), tokens) == pytest.approx(0.35)


def test_reasoning_sentence_entropy_merged_tokens() -> None:
    """ "<think>A" counts for sentence "A b." (0.0, 0.1 → 0.05); "c?" holds 0.2 and 0.3 → 0.25;
    "d" is a token straddling "</think>", so it starts inside and counts (0.4). Mean 0.7/3."""
    tokens = ["<think>A", " b.", " c", "?", " d</think>", "<answer>1</answer>"]
    assert reasoning_sentence_entropy(_entropies(6), tokens) == pytest.approx(0.7 / 3)


def test_reasoning_sentence_entropy_missing_or_empty() -> None:
    assert reasoning_sentence_entropy(_entropies(3), ["<answer>", "1", "</answer>"]) is None
    assert reasoning_sentence_entropy(_entropies(3), ["<think>", " ...\n", "</think>"]) is None
    # The template opened <think> in the prompt: the completion starts inside the reasoning.
    tokens = ["Hmm", ".", "</think>", "<answer>", "1", "</answer>"]
    assert reasoning_sentence_entropy(_entropies(6), tokens) == pytest.approx(0.05)


def test_reasoning_peak_entropy_hand_computed() -> None:
    """Reasoning tokens "The" .1, " cat" .2, "." .3, " It" .4, " sat" .5, "!" .6, "\n" .7 (the tags and
    the answer are outside): top 3 = .7, .6, .5 → 0.6; k = 1 → 0.7; k = 2 → 0.65."""
    tokens = ["<think>", "The", " cat", ".", " It", " sat", "!", "\n", "</think>", "<answer>", "1", "</answer>"]
    h = _entropies(12)
    h[10] = 9.0  # a very uncertain verdict token does not count: it is not reasoning
    assert reasoning_peak_entropy(h, tokens) == pytest.approx(0.6)
    assert reasoning_peak_entropy(h, tokens, k=1) == pytest.approx(0.7)
    assert reasoning_peak_entropy(h, tokens, k=2) == pytest.approx(0.65)
    assert reasoning_peak_entropy(h, tokens, k=100) == pytest.approx(0.4)  # fewer tokens: mean of all 7


def test_reasoning_peak_entropy_finds_the_forking_token_a_sentence_mean_dilutes() -> None:
    """One forking token (2.0) among nine certain ones (0.0) in one sentence: the sentence mean is
    0.2, the peak with k = 3 is (2 + 0 + 0) / 3."""
    tokens = ["<think>", *[" a"] * 4, " so", *[" b"] * 4, ".", "</think>", "<answer>2</answer>"]
    h = torch.zeros(len(tokens))
    h[5] = 2.0  # " so"
    assert reasoning_sentence_entropy(h, tokens) == pytest.approx(0.2)
    assert reasoning_peak_entropy(h, tokens) == pytest.approx(2.0 / 3)


def test_reasoning_peak_entropy_merged_missing_and_bad_k() -> None:
    # "<think>A" starts before the reasoning but straddles into it: it counts (0.0), as " d</think>" (0.4).
    tokens = ["<think>A", " b.", " c", "?", " d</think>", "<answer>1</answer>"]
    assert reasoning_peak_entropy(_entropies(6), tokens, k=2) == pytest.approx(0.35)
    assert reasoning_peak_entropy(_entropies(3), ["<answer>", "1", "</answer>"]) is None  # no think block
    assert reasoning_peak_entropy(_entropies(2), ["<think>", "</think>"]) is None  # nothing inside
    assert reasoning_peak_entropy(_entropies(3), ["Hmm", ".", "</think>"], k=3) == pytest.approx(
        0.05
    )  # opened in the prompt
    with pytest.raises(ValueError):
        reasoning_peak_entropy(_entropies(3), ["<think>", "x", "</think>"], k=0)


# ----------------------------------------------------------------------------------------------
# Ranks, mixture, votes
# ----------------------------------------------------------------------------------------------


def test_percentile_rank_matches_scipy_average_ranks() -> None:
    values = torch.tensor([3.0, 1.0, 2.0, 2.0, 5.0])
    expected = (rankdata(values.numpy(), method="average") - 1) / (len(values) - 1)
    assert percentile_rank(values).tolist() == pytest.approx(expected.tolist())
    assert percentile_rank(torch.tensor([3.0, 1.0, 2.0])).tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert percentile_rank([4.0]).tolist() == [0.5]
    assert percentile_rank([]).shape == (0,)


def test_missing_values_rank_highest() -> None:
    """NaN and None count as +∞ (most uncertain) and tie with each other: ranks 1, 3.5, 3.5, 2."""
    assert percentile_rank([0.0, None, math.nan, 1.0]).tolist() == pytest.approx([0.0, 2.5 / 3, 2.5 / 3, 1 / 3])


def test_mixed_entropy_hand_computed() -> None:
    """answer ranks (0, 0.5, 1), sentence ranks (1, 0, 0.5); λ = 0.5 → (0.5, 0.25, 0.75)."""
    answer = torch.tensor([0.1, 0.2, 0.3])
    sentence = torch.tensor([9.0, 1.0, 5.0])
    assert mixed_entropy(answer, sentence).tolist() == pytest.approx([0.5, 0.25, 0.75])
    assert mixed_entropy(answer, sentence, lam=1.0).tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert mixed_entropy([None, 0.2, 0.3], sentence, lam=0.25).tolist() == pytest.approx(
        [0.25 * 1.0 + 0.75 * 1.0, 0.0, 0.25 * 0.5 + 0.75 * 0.5]
    )
    with pytest.raises(ValueError):
        mixed_entropy(answer, sentence[:2])
    with pytest.raises(ValueError):
        mixed_entropy(answer, sentence, lam=1.5)


def test_vote_entropy() -> None:
    assert vote_entropy([1, 1, 1, 1]) == 0.0
    assert vote_entropy([1]) == 0.0
    assert vote_entropy([1, 2, 1, 2]) == pytest.approx(math.log(2))
    assert vote_entropy([1, 1, None, None]) == pytest.approx(math.log(2))  # failures are an outcome
    assert vote_entropy([1, 2, None]) == pytest.approx(math.log(3))
    assert vote_entropy([1, 1, 1, 2]) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    with pytest.raises(ValueError):
        vote_entropy([])
