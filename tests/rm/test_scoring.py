"""Batched scoring: length-ordered batches, a pair's responses kept together, rewards in input order."""

from __future__ import annotations

import torch

from egt.records import open_images
from egt.rm.collate import ScoreItem
from egt.rm.model import HeadConfig, RewardModel
from egt.rm.scoring import length_order, score_items


def test_length_order_sorts_and_keeps_shared_images_together():
    shared, other = object(), object()
    items = [
        ScoreItem("q", "a much longer response than the rest", [shared]),
        ScoreItem("q", "x", []),
        ScoreItem("q", "short", [shared]),
        ScoreItem("q", "mid length", [other]),
        ScoreItem("q", "yy", []),
    ]
    order = length_order(items)
    assert sorted(order) == list(range(5))
    assert abs(order.index(0) - order.index(2)) == 1  # the pair sharing an image stays adjacent …
    assert order.index(0) > order.index(3) and order.index(2) > order.index(3)  # … ranked by its longest response
    assert order[:2] == [1, 4]  # shortest first


def test_batched_rewards_come_back_in_input_order(lab, lab_pairs, vl_backbone):
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("mlp"), device="cpu", for_training=False)
    items = [
        ScoreItem(p.question, r, images) for p in lab_pairs[:6] for images in [open_images(p, lab)] for r in p.responses
    ][::-1]  # an order the length sort changes
    assert length_order(items) != list(range(len(items)))
    one_by_one = torch.tensor(score_items(model, processor, items, batch_size=1))
    batched = torch.tensor(score_items(model, processor, items, batch_size=5))
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-5)
    assert len(set(one_by_one.tolist())) == len(items)  # distinct rewards, so a permutation would show
