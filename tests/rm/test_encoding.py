"""Positions and image features of a reward batch: equal to what transformers computes itself."""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from egt.models.load import load_model
from egt.models.qwen_vl import encode_qwen_vl
from egt.rm.encoding import (
    encode_images_once,
    image_rows,
    images_of_rows,
    mrope_settings,
    position_ids,
    positions_from_mask,
)


@pytest.fixture(scope="module")
def loaded(vl_backbone):
    return load_model(str(vl_backbone), dtype="float32", device="cpu")


def varied_batch(processor, seed: int) -> tuple[list[str], list[Image.Image]]:
    """Rows with 0 to 3 images of four sizes (some shared between rows) and texts of varied length."""
    rng = random.Random(seed)
    sizes = [(56, 56), (84, 56), (56, 112), (112, 112)]
    pool = [Image.new("RGB", size, (40 * i, 255 - 40 * i, 90)) for i, size in enumerate(sizes)]
    texts, images = [], []
    for n_images in [0, 3, 1, 2, 0, 1, 3, 2]:
        shown = [rng.choice(pool) for _ in range(n_images)]
        words = " ".join(
            rng.choice(["red", "square", "left", "of", "the", "circle"]) for _ in range(rng.randint(1, 12))
        )
        user = [{"type": "image"}] * n_images + [{"type": "text", "text": words + "?"}]
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": words[: rng.randint(1, 30)]}]
        texts.append(processor.apply_chat_template(messages, tokenize=False).rstrip())
        images += shown
    return texts, images


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("side", ["left", "right"])
def test_mrope_positions_equal_get_rope_index(loaded, side, seed):
    """Several images per row, text-only rows, both padding sides: the reward model's positions are
    transformers' ``get_rope_index`` on the processor's own batch."""
    processor, model = loaded.processor, loaded.model
    texts, images = varied_batch(processor, seed)
    stock = processor(text=texts, images=images, padding=True, padding_side=side, return_tensors="pt")
    assert (stock["attention_mask"] == 0).any()  # padded
    expected, _ = model.model.get_rope_index(
        stock["input_ids"],
        stock["mm_token_type_ids"],
        image_grid_thw=stock["image_grid_thw"],
        attention_mask=stock["attention_mask"],
    )
    fast = encode_qwen_vl(processor, texts, images, padding_side=side)
    mrope = mrope_settings(model.config)
    got = position_ids(fast["input_ids"], fast["attention_mask"], fast["image_grid_thw"], mrope=mrope, is_vision=True)
    assert torch.equal(got, expected)
    assert not torch.equal(got[0], got[1])  # the images really give 3-D positions


def test_text_positions_and_dispatch():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]])
    assert positions_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 3]]
    ids = torch.ones_like(mask)
    assert torch.equal(position_ids(ids, mask, None, mrope=None, is_vision=False), positions_from_mask(mask))
    assert position_ids(ids, mask, None, mrope=None, is_vision=True) is None  # another VLM: its own positions
    assert mrope_settings(type("Config", (), {"model_type": "llama"})()) is None


def test_image_rows_maps_occurrences_to_rows():
    ids = torch.tensor([[1, 9, 9, 2, 0], [9, 9, 9, 9, 3], [4, 0, 0, 0, 0]])  # 9 = image token
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    assert image_rows(ids, mask, torch.tensor([2, 2, 2]), 9).tolist() == [0, 1, 1]


def test_images_of_rows_keeps_those_rows_features(loaded):
    """Each distinct image through the vision tower once; cutting to some rows keeps exactly their
    occurrences' features, in order, with their grids."""
    processor, model = loaded.processor, loaded.model
    texts, images = varied_batch(processor, 0)
    enc = encode_qwen_vl(processor, texts, images)
    base, mrope = model.model, mrope_settings(model.config)
    with torch.no_grad():
        every = encode_images_once(base, dict(enc), enc["image_sources"])
        stock = base.get_image_features(
            processor.image_processor(images=images, return_tensors="pt")["pixel_values"], enc["image_grid_thw"]
        ).pooler_output  # every occurrence through the tower, transformers' way
        rows = torch.tensor([1, 3, 6])
        some = images_of_rows(base, dict(enc), enc["input_ids"], enc["attention_mask"], rows, mrope)
    features = every["mm_encoder_outputs"]["image"].pooler_output
    assert len(features) == len(images) and "pixel_values" not in every
    for a, b in zip(features, stock, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    tokens = enc["image_grid_thw"].prod(-1) // mrope["spatial_merge_size"] ** 2
    occurrence_rows = image_rows(enc["input_ids"], enc["attention_mask"], tokens, mrope["image_token_id"]).tolist()
    keep = [i for i, r in enumerate(occurrence_rows) if r in rows.tolist()]
    assert len(keep) == 3 + 2 + 3  # rows 1, 3, 6 show 3, 2 and 3 images
    kept = some["mm_encoder_outputs"]["image"].pooler_output
    assert len(kept) == len(keep)
    for i, feature in zip(keep, kept, strict=True):
        assert torch.equal(feature, features[i])
    assert torch.equal(some["image_grid_thw"], enc["image_grid_thw"][keep])
