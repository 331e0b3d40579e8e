"""The multimodal collator: chosen first, image and text-only pairs in one batch, pixel layout."""

from __future__ import annotations

import torch

from egt.records import read_pairs
from egt.rm.collate import RewardCollator, RewardExample, ScoreItem, encode_items, render_text
from egt.rm.model import HeadConfig, RewardModel


def test_mixed_image_and_text_pairs_in_one_batch(lab, lab_pairs, text_pairs_file, vl_backbone):
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("mlp"), device="cpu", for_training=False)
    text_pairs = read_pairs(text_pairs_file)
    examples = [
        RewardExample(lab_pairs[0], lab),
        RewardExample(text_pairs[0]),
        RewardExample(lab_pairs[1], lab),
        RewardExample(text_pairs[1]),
    ]
    batch = RewardCollator(processor, reads_images=True)(examples)
    assert batch["input_ids"].shape[0] == 8  # 2B sequences
    # every image pair appears twice (chosen and rejected): 4 image placeholders, 2 distinct images
    # of 56×56 px → 16 patches each, preprocessed once
    assert batch["image_grid_thw"].tolist() == [[1, 4, 4]] * 4
    assert batch["image_sources"].tolist() == [0, 1, 0, 1]
    assert batch["pixel_values"].shape[0] == 2 * 16
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    has_image = (batch["input_ids"] == image_token).any(dim=1).tolist()
    assert has_image == [True, False, True, False] * 2
    # chosen first: row i holds pair i's preferred response, row B + i its rejected one
    tok = processor.tokenizer
    for i, ex in enumerate(examples):
        chosen = tok.decode(batch["input_ids"][i], skip_special_tokens=True)
        rejected = tok.decode(batch["input_ids"][4 + i], skip_special_tokens=True)
        assert ex.pair.responses[ex.pair.preferred] in chosen and ex.pair.responses[ex.pair.rejected] in rejected
    with torch.no_grad():
        rewards = model(**batch)
    assert rewards.shape == (8,) and torch.isfinite(rewards).all()


def test_text_only_batch_has_no_pixels(text_pairs_file, vl_backbone):
    _, processor = RewardModel.from_backbone(vl_backbone, device="cpu", for_training=False)
    batch = RewardCollator(processor, reads_images=True)([RewardExample(p) for p in read_pairs(text_pairs_file)[:3]])
    assert "pixel_values" not in batch and batch["input_ids"].shape[0] == 6


def test_sequences_end_on_the_turn_end_token(vl_backbone, text_backbone):
    for path in (vl_backbone, text_backbone):
        _, processor = RewardModel.from_backbone(path, device="cpu", for_training=False)
        is_vision = hasattr(processor, "image_processor")
        text = render_text(processor, ScoreItem("Q?", "A."), reads_images=is_vision)
        assert text.endswith("A.<|im_end|>")
        enc = encode_items(
            processor, [ScoreItem("Q?", "A."), ScoreItem("A longer question?", "B.")], reads_images=is_vision
        )
        tok = getattr(processor, "tokenizer", processor)
        last = enc["input_ids"][0, enc["attention_mask"][0].sum() - 1]
        assert last.item() == tok.convert_tokens_to_ids("<|im_end|>")


def test_text_truncation_keeps_the_response_end(text_backbone):
    _, tokenizer = RewardModel.from_backbone(text_backbone, device="cpu", for_training=False)
    item = ScoreItem("word " * 200, "Final answer.")
    enc = encode_items(tokenizer, [item], reads_images=False, max_length=16)
    assert enc["input_ids"].shape[1] == 16
    assert tokenizer.decode(enc["input_ids"][0]).endswith("Final answer.<|im_end|>")


def test_lm_labels_cover_the_chosen_response_or_its_differing_span(lab, lab_pairs, text_pairs_file, vl_backbone):
    _, processor = RewardModel.from_backbone(vl_backbone, device="cpu", for_training=False)
    tok = processor.tokenizer
    examples = [RewardExample(lab_pairs[0], lab), RewardExample(read_pairs(text_pairs_file)[0])]
    for span in ("response", "differing"):
        batch = RewardCollator(processor, reads_images=True, lm_labels=span)(examples)
        labels = batch["lm_labels"]
        assert labels.shape == (2, batch["input_ids"].shape[1])
        for row, ex in zip(labels, examples):
            kept = tok.decode(row[row != -100])
            chosen, rejected = ex.pair.responses[ex.pair.preferred], ex.pair.responses[ex.pair.rejected]
            if span == "response":
                assert kept == chosen + "<|im_end|>"
            else:
                assert kept.strip() and kept.strip() in chosen and kept.strip() not in rejected


def test_keep_differing_span_by_hand():
    from egt.rm.collate import keep_differing_span

    # chosen rows: [5 6 7 8], [5 9 0 0]; rejected rows: [5 6 3 8], [5 9 4 0] (0 = pad)
    ids = torch.tensor([[5, 6, 7, 8], [5, 9, 0, 0], [5, 6, 3, 8], [5, 9, 4, 0]])
    mask = (ids != 0).long()
    mask[1] = torch.tensor([1, 1, 0, 0])
    labels = ids[:2].clone()
    out = keep_differing_span(labels, ids, mask)
    assert out.tolist() == [
        [-100, -100, 7, -100],
        [-100, 9, -100, -100],
    ]  # row 2, a prefix of the rejected: its last token
