"""Prefix sharing: the plan's index maths, and rewards equal to the unshared forward."""

from __future__ import annotations

import pytest
import torch

from egt.records import open_images, read_pairs
from egt.rm.collate import ScoreItem, encode_items
from egt.rm.head import HeadConfig
from egt.rm.model import RewardModel
from egt.rm.prefix import group_slots, packed_layout, plan_prefix, shared_prefix_rewards, split_masks, split_rows
from egt.rm.scoring import prompt_key, score_items


def right_padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def test_group_slots_in_first_seen_order():
    assert group_slots(["b", "a", "b", "c", "a"]).tolist() == [0, 1, 0, 2, 1]


def test_plan_finds_each_groups_common_prefix():
    rows = [[5, 6, 7, 8, 9], [5, 6, 7, 1], [3, 4], [5, 6, 2, 2, 2, 2], [3, 4, 4]]
    ids, mask = right_padded(rows)
    plan = plan_prefix(ids, mask, torch.tensor([0, 0, 1, 0, 1]))
    assert plan.leaders.tolist() == [0, 2]
    assert plan.slot.tolist() == [0, 0, 1, 0, 1]
    # group 0 shares [5, 6] (row 3 differs at its third token); group 1 shares [3] only, since row 2
    # ([3, 4]) must keep its last token to be pooled
    assert plan.prefix_len.tolist() == [2, 2, 1, 2, 1]
    assert plan.saved_tokens == 2 * 2 + 1  # rows 1 and 3 skip 2 tokens each, row 4 skips 1


def test_identical_rows_keep_their_last_token():
    ids, mask = right_padded([[1, 2, 3], [1, 2, 3]])
    plan = plan_prefix(ids, mask, torch.tensor([0, 0]))
    assert plan.prefix_len.tolist() == [2, 2]


def test_split_rows_and_masks_rebuild_every_row():
    rows = [[5, 6, 7, 8, 9], [5, 6, 7, 1], [3, 4], [5, 6, 2, 2, 2, 2], [3, 4, 4]]
    ids, mask = right_padded(rows)
    plan = plan_prefix(ids, mask, torch.tensor([0, 0, 1, 0, 1]))
    lengths = mask.sum(1)
    prefix, rest = split_rows(ids, plan, lengths, pad_value=-1)
    prefix_mask, rest_mask = split_masks(plan, lengths)
    assert prefix.tolist() == [[5, 6], [3, -1]]
    assert prefix_mask.tolist() == [[1, 1], [1, 0]]
    for i, row in enumerate(rows):
        head = prefix[plan.slot[i]][prefix_mask[plan.slot[i]].bool()].tolist()
        tail = rest[i][rest_mask[i].bool()].tolist()
        assert head + tail == row
        assert (rest[i][~rest_mask[i].bool()] == -1).all()
    positions = torch.arange(ids.shape[1]).expand(3, *ids.shape)  # [3, N, L] like M-RoPE positions
    _, rest_pos = split_rows(positions, plan, lengths)
    assert rest_pos.shape == (3, 5, rest.shape[1])
    assert rest_pos[0, 1, 0] == 2 and rest_pos[2, 3, :4].tolist() == [2, 3, 4, 5]  # positions continue the prefix


@pytest.fixture(scope="module")
def vl_model(vl_backbone):
    return RewardModel.from_backbone(vl_backbone, HeadConfig("mlp"), device="cpu", for_training=False)


def lab_items(lab, pairs, n):
    return [
        ScoreItem(p.question, r, images) for p in pairs[:n] for images in [open_images(p, lab)] for r in p.responses
    ]


@pytest.mark.parametrize("layout", ["packed", "cached"])
def test_shared_prefix_rewards_equal_the_plain_forward(lab, lab_pairs, vl_model, layout):
    model, processor = vl_model
    items = lab_items(lab, lab_pairs, 6)
    items.append(ScoreItem("How many squares are there?", "Two.", items[0].images))  # a singleton group
    items.insert(3, ScoreItem(items[2].question, "It is a much longer answer than the others.", items[2].images))
    enc = encode_items(processor, items, reads_images=True)
    slot = group_slots([prompt_key(it) for it in items])
    with torch.no_grad():
        plain = model(**enc)
        shared = shared_prefix_rewards(model, **enc, slot=slot, layout=layout)
    torch.testing.assert_close(shared, plain, atol=1e-5, rtol=1e-5)
    assert len(set(plain.tolist())) == len(items)  # distinct rewards, so a mix-up of rows would show
    plan = plan_prefix(enc["input_ids"], enc["attention_mask"], slot)
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert plan.saved_tokens > 6 * (enc["input_ids"][0] == image_token).sum()  # a pair shares more than its image


def test_score_items_shares_without_changing_rewards(lab, lab_pairs, vl_model):
    model, processor = vl_model
    items = lab_items(lab, lab_pairs, 8)
    plain = torch.tensor(score_items(model, processor, items, batch_size=16, share_prefix=False))
    shared = torch.tensor(score_items(model, processor, items, batch_size=16, min_shared_tokens=0))
    one = torch.tensor(score_items(model, processor, items, batch_size=2, min_shared_tokens=0))  # one pair a batch
    torch.testing.assert_close(shared, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(one, plain, atol=1e-5, rtol=1e-5)


def test_packed_layout_places_every_token_and_masks_other_rows():
    rows = [[5, 6, 7, 8], [5, 6, 1], [3, 4], [5, 6, 2, 2, 2]]
    ids, mask = right_padded(rows)
    plan = plan_prefix(ids, mask, torch.tensor([0, 0, 1, 0]))
    layout = packed_layout(plan, mask.sum(1))
    packed = layout.pack(ids, pad_value=-1)
    assert packed.tolist() == [[5, 6, 7, 8, 1, 2, 2, 2], [3, 4, -1, -1, -1, -1, -1, -1]]
    assert layout.segment.tolist() == [[0, 0, 1, 1, 2, 4, 4, 4], [0, 3, -1, -1, -1, -1, -1, -1]]
    for i, row in enumerate(rows):
        assert packed[plan.slot[i], layout.last[i]] == row[-1]
    allowed = layout.attention_mask(torch.float32)[:, 0] == 0  # [G, q, k]
    assert allowed[0, 3].tolist() == [True, True, True, True, False, False, False, False]  # row 0's last token
    assert allowed[0, 4].tolist() == [True, True, False, False, True, False, False, False]  # row 1 skips row 0's rest
    assert allowed[0, 7].tolist() == [True, True, False, False, False, True, True, True]
    assert allowed[1, 5].tolist() == [True] + [False] * 7  # padding sees one key, so its softmax is defined


def test_sharing_only_when_it_saves_enough(lab, lab_pairs, vl_model, monkeypatch):
    model, processor = vl_model
    items = lab_items(lab, lab_pairs, 2)
    enc = encode_items(processor, items, reads_images=True)
    slot = group_slots([prompt_key(it) for it in items])
    saved = plan_prefix(enc["input_ids"], enc["attention_mask"], slot).saved_tokens
    passes = []  # the shape of the input ids of each backbone pass
    run = model.run_base
    monkeypatch.setattr(model, "run_base", lambda ids, *a, **k: passes.append(tuple(ids.shape)) or run(ids, *a, **k))
    with torch.no_grad():
        shared_prefix_rewards(model, **enc, slot=slot, min_saved_tokens=saved)  # packed: one row per pair
        assert [rows for rows, _ in passes] == [2]
        passes.clear()
        shared_prefix_rewards(model, **enc, slot=slot, min_saved_tokens=saved, layout="cached")  # prefixes, then rests
        assert [rows for rows, _ in passes] == [2, 4]
        passes.clear()
        shared_prefix_rewards(model, **enc, slot=slot, min_saved_tokens=saved + 1)
        assert passes == [tuple(enc["input_ids"].shape)]  # the plain forward
        passes.clear()
        shared_prefix_rewards(model, **enc, slot=torch.arange(len(items)))  # no group of two: nothing to share
        assert passes == [tuple(enc["input_ids"].shape)]


def test_text_backbone_shares_too(text_backbone, text_pairs_file):
    model, processor = RewardModel.from_backbone(text_backbone, HeadConfig("linear"), device="cpu", for_training=False)
    items = [ScoreItem(p.question, r) for p in read_pairs(text_pairs_file)[:5] for r in p.responses]
    plain = torch.tensor(score_items(model, processor, items, batch_size=10, share_prefix=False))
    shared = torch.tensor(score_items(model, processor, items, batch_size=10, min_shared_tokens=0))
    torch.testing.assert_close(shared, plain, atol=1e-5, rtol=1e-5)
    enc = encode_items(processor, items, reads_images=False)
    with torch.no_grad():
        cached = shared_prefix_rewards(
            model, **enc, slot=group_slots([prompt_key(it) for it in items]), layout="cached"
        )
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=1e-5)


def varied_items(lab, pairs, with_images: bool) -> list[ScoreItem]:
    """Groups whose shared prefixes end at different places: a pair differing at its first answer
    word, one differing only at its last, a group of three, a text-only pair, and singletons."""
    images = [open_images(p, lab) if with_images else [] for p in pairs[:3]]
    long = "The square in the top left corner of the picture is"
    return [
        ScoreItem(pairs[0].question, "Red.", images[0]),
        ScoreItem(pairs[0].question, "Blue, I think.", images[0]),
        ScoreItem(pairs[1].question, f"{long} red.", images[1]),
        ScoreItem(pairs[1].question, f"{long} green.", images[1]),
        ScoreItem(pairs[2].question, "One.", images[2]),
        ScoreItem(pairs[2].question, "One or two.", images[2]),
        ScoreItem(pairs[2].question, "Three, surely.", images[2]),
        ScoreItem("A question without an image?", "Yes.", []),
        ScoreItem("A question without an image?", "No, not at all.", []),
        ScoreItem(pairs[3].question, "Alone.", open_images(pairs[3], lab) if with_images else []),
        ScoreItem("Another text-only question?", "Also alone."),
    ]


@pytest.mark.parametrize("layout", ["packed", "cached"])
@pytest.mark.parametrize("backbone", ["vl_backbone", "text_backbone"])
def test_shared_prefix_rewards_equal_unshared_on_varied_batches(request, lab, lab_pairs, backbone, layout, monkeypatch):
    """Prefixes of very different lengths, rows with and without images, groups of 1 to 3, in one
    batch: the shared passes run (and are smaller than the batch), and every reward equals the
    unshared forward's."""
    model, processor = RewardModel.from_backbone(
        request.getfixturevalue(backbone), HeadConfig("mlp"), device="cpu", for_training=False
    )
    items = varied_items(lab, lab_pairs, with_images=model.is_vision)
    enc = encode_items(processor, items, reads_images=model.is_vision)
    slot = group_slots([prompt_key(it) for it in items])
    plan = plan_prefix(enc["input_ids"], enc["attention_mask"], slot)
    group_lengths = plan.prefix_len[plan.leaders].tolist()
    assert len(set(group_lengths)) >= 4, group_lengths  # the groups share prefixes of different lengths
    passes = []
    run = model.run_base
    monkeypatch.setattr(model, "run_base", lambda ids, *a, **k: passes.append(ids.shape[0]) or run(ids, *a, **k))
    with torch.no_grad():
        plain = model(**enc)
        passes.clear()
        shared = shared_prefix_rewards(model, **enc, slot=slot, layout=layout)
    n_groups = len(plan.leaders)
    assert passes == ([n_groups] if layout == "packed" else [n_groups, len(items)])  # shared, not the fallback
    assert len(set(plain.tolist())) == len(items)  # distinct rewards, so a mix-up of rows would show
    torch.testing.assert_close(shared, plain, atol=1e-5, rtol=1e-5)
