"""Dynamic sampling's pure pieces: uniform groups to a tolerance, the fill plan, rows split and merged."""

from __future__ import annotations

import pytest
import torch

from egt.rl.dynamic_sampling import fill_plan, merge_rows, split_rows, uniform_groups


def test_uniform_groups_to_a_tolerance():
    """G = 3. Composite rewards 0.5·format + accuracy·(1 + 0.5·logic): group 0 all 1.5 (one computed as
    0.5 + 1.0000000001) is uniform; group 1 (0, 0.5, 0: accuracy agrees, format differs) is not; group 2
    all 0 is."""
    rewards = torch.tensor([1.5, 1.5, 0.5 + 1.0000000001, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0])
    assert uniform_groups(rewards, 3).tolist() == [True, False, True]
    accuracy = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert uniform_groups(accuracy, 3).tolist() == [True, True, True]  # the format-only group drops under accuracy
    assert uniform_groups(torch.tensor([0.0, float("nan")]), 2).tolist() == [False]
    with pytest.raises(ValueError, match="divisible"):
        uniform_groups(torch.zeros(5), 2)


def test_fill_plan_takes_kept_groups_in_order_then_pads_with_uniform_ones():
    T, F = True, False
    assert fill_plan([[T, F, T], [F, T, T]], 2) == [(0, 1, True), (1, 0, True)]
    assert fill_plan([[F, F, F], [F, F, F]], 2) == [(0, 0, True), (0, 1, True)]  # round 1 unused
    # rounds ran out with 2 kept of 3: the earliest uniform group pads the batch, masked
    assert fill_plan([[T, F, T], [F, T, T]], 3) == [(0, 0, False), (0, 1, True), (1, 0, True)]
    assert fill_plan([[T, T]], 2) == [(0, 0, False), (0, 1, False)]
    with pytest.raises(ValueError, match="fewer"):
        fill_plan([[F]], 2)


def test_rows_from_two_rounds_merge_with_prompts_padded_left_and_completions_right():
    pad = 7
    first = {
        "prompt_ids": torch.tensor([[7, 1], [2, 3]]),
        "prompt_mask": torch.tensor([[0, 1], [1, 1]]),
        "completion_ids": torch.tensor([[4, 7, 7], [5, 6, 7]]),
        "completion_mask": torch.tensor([[1, 0, 0], [1, 1, 0]]),
        "advantages": torch.tensor([0.5, -0.5]),
        "token_type_ids": torch.tensor([[0, 0, 0, 0, 0], [1, 0, 0, 0, 0]]),
        "num_images": [1, 2],
        "num_items_in_batch": torch.tensor(3),
    }
    second = {
        "prompt_ids": torch.tensor([[8, 8, 9]]),
        "prompt_mask": torch.tensor([[1, 1, 1]]),
        "completion_ids": torch.tensor([[6]]),
        "completion_mask": torch.tensor([[1]]),
        "advantages": torch.tensor([1.0]),
        "token_type_ids": torch.tensor([[1, 1, 0, 0]]),
        "num_images": [3],
        "num_items_in_batch": torch.tensor(1),
    }
    rows = split_rows(second) + split_rows(first)[::-1]  # any rounds, any order
    batch = merge_rows(rows, pad)
    assert batch["prompt_ids"].tolist() == [[8, 8, 9], [7, 2, 3], [7, 7, 1]]
    assert batch["prompt_mask"].tolist() == [[1, 1, 1], [0, 1, 1], [0, 0, 1]]
    assert batch["completion_ids"].tolist() == [[6, 7, 7], [5, 6, 7], [4, 7, 7]]
    assert batch["completion_mask"].tolist() == [[1, 0, 0], [1, 1, 0], [1, 0, 0]]
    assert batch["advantages"].tolist() == [1.0, -0.5, 0.5]
    assert batch["token_type_ids"].tolist() == [[1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]
    assert batch["num_images"] == [3, 2, 1] and "num_items_in_batch" not in batch


def test_rows_of_groups_out_of_the_plan_are_freed_between_rounds():
    """Rank 1 of 2, G = 2, one group per rank per round: rank 1 holds group 1 of each round. The plan
    (0,1) kept + (1,0) kept leaves round 1's group 1 out: its rows are freed, round 0's stay."""
    from types import SimpleNamespace

    from egt.rl.trainer import JudgeGRPOTrainer

    rank1 = SimpleNamespace(accelerator=SimpleNamespace(process_index=1), num_generations=2)
    rows = [["r0a", "r0b"], ["r1a", "r1b"]]
    JudgeGRPOTrainer._free_unplanned_rows(rank1, rows, fill_plan([[True, False], [False, False]], 2), local=2)
    assert rows == [["r0a", "r0b"], [None, None]]
