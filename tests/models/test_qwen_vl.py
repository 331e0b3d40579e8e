"""Vectorised Qwen2.5-VL batch encoding and 3-D positions equal the transformers implementations."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from egt.models.load import load_model
from egt.models.qwen_vl import distinct_images, encode_qwen_vl, is_qwen_vl_processor, mrope_position_ids, vision_layout


@pytest.fixture(scope="module")
def loaded(tiny_judge_dir):
    return load_model(str(tiny_judge_dir), dtype="float32", device="cpu")


def _messages(n_images: int, question: str, response: str) -> list[dict]:
    user = [{"type": "image"}] * n_images + [{"type": "text", "text": question}]
    return [{"role": "user", "content": user}, {"role": "assistant", "content": [{"type": "text", "text": response}]}]


def _batch(processor):
    red, wide, tall = (
        Image.new("RGB", size, colour)
        for size, colour in [((56, 56), (255, 0, 0)), ((84, 56), (0, 255, 0)), ((56, 112), (0, 0, 255))]
    )
    rows = [
        (1, "What colour?", "Red.", [red]),
        (1, "What colour?", "A red square, surely.", [red]),
        (0, "A question without an image", "Fine.", []),
        (2, "Two images?", "Yes.", [wide, tall]),
        (1, "Tall?", "It is tall.", [tall]),
    ]
    texts = [processor.apply_chat_template(_messages(n, q, r), tokenize=False).rstrip() for n, q, r, _ in rows]
    return texts, [im for *_, images in rows for im in images]


def test_distinct_images_by_identity():
    a, b = Image.new("RGB", (2, 2)), Image.new("RGB", (2, 2))  # equal pixels, different objects
    assert distinct_images([a, a, b, a]) == ([a, b], [0, 0, 1, 0])


@pytest.mark.parametrize("side", ["right", "left"])
def test_encoding_and_positions_equal_the_processor_and_get_rope_index(loaded, side):
    processor, model = loaded.processor, loaded.model
    assert is_qwen_vl_processor(processor)
    texts, images = _batch(processor)
    stock = processor(text=texts, images=images, padding=True, padding_side=side, return_tensors="pt")
    fast = encode_qwen_vl(processor, texts, images, padding_side=side)
    for key in ("input_ids", "attention_mask", "image_grid_thw"):
        assert torch.equal(fast[key], stock[key]), key
    assert fast["image_sources"].tolist() == [0, 0, 1, 2, 2]
    per_image = stock["pixel_values"].split(stock["image_grid_thw"].prod(-1).tolist())
    distinct = fast["pixel_values"].split(fast["image_grid_thw"][[0, 2, 3]].prod(-1).tolist())
    for occurrence, source in enumerate(fast["image_sources"].tolist()):
        assert torch.equal(per_image[occurrence], distinct[source])
    expected, _ = model.model.get_rope_index(
        stock["input_ids"],
        stock["mm_token_type_ids"],
        image_grid_thw=stock["image_grid_thw"],
        attention_mask=stock["attention_mask"],
    )
    positions = mrope_position_ids(
        fast["input_ids"],
        fast["attention_mask"],
        fast["image_grid_thw"],
        image_token_id=processor.image_token_id,
        spatial_merge_size=model.config.vision_config.spatial_merge_size,
    )
    assert positions.shape == (3, len(texts), stock["input_ids"].shape[1])
    assert torch.equal(positions, expected)


def test_text_only_positions_count_real_tokens():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]])
    positions = mrope_position_ids(torch.ones_like(mask), mask, None, image_token_id=7, spatial_merge_size=2)
    assert positions[0].tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 0]]
    assert torch.equal(positions[0], positions[1]) and torch.equal(positions[0], positions[2])


def test_mismatched_grids_and_placeholders_are_refused(loaded):
    processor = loaded.processor
    texts, images = _batch(processor)
    with pytest.raises(ValueError, match="image placeholders"):
        encode_qwen_vl(processor, texts, images[:-1])
    enc = encode_qwen_vl(processor, texts, images)
    with pytest.raises(ValueError, match="image tokens"):
        mrope_position_ids(
            enc["input_ids"],
            enc["attention_mask"],
            enc["image_grid_thw"][:-1],
            image_token_id=processor.image_token_id,
            spatial_merge_size=2,
        )


def test_vision_layout_equals_transformers_per_image_loops(loaded):
    from transformers.vision_utils import get_vision_position_ids, get_vision_window_index

    vision = loaded.model.config.vision_config
    grid = torch.tensor([[1, 4, 4], [1, 6, 4], [1, 4, 8], [1, 4, 4], [1, 16, 12]])  # the last spans 2×2 windows
    layout = vision_layout(grid, vision)
    index, cu = get_vision_window_index(
        grid, spatial_merge_size=vision.spatial_merge_size, window_size=vision.window_size, patch_size=vision.patch_size
    )
    assert torch.equal(layout["image_position_ids"], get_vision_position_ids(grid, vision.spatial_merge_size))
    assert torch.equal(layout["image_window_index"], index)
    assert torch.equal(layout["image_cu_window_seqlens"], cu) and len(cu) > len(grid) + 1
    base = loaded.model.model
    pixels = torch.randn(int(grid.prod(-1).sum()), base.visual.patch_embed.proj.weight[0].numel())
    with torch.no_grad():
        stock = base.get_image_features(pixels, grid, return_dict=True).pooler_output
        fast = base.get_image_features(pixels, grid, return_dict=True, **layout).pooler_output
    for a, b in zip(stock, fast, strict=True):
        assert torch.equal(a, b)


def test_preprocess_images_equals_the_processor():
    import numpy as np
    from transformers import Qwen2VLImageProcessorPil

    from egt.models.qwen_vl import preprocess_images

    rng = np.random.default_rng(0)

    def noise(height, width, mode="RGB"):
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)

    processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    stackable = [noise(56, 56), noise(56, 112), noise(56, 56), noise(112, 56), noise(56, 56)]  # three sizes, mixed
    others = [noise(50, 60), noise(56, 56, "L")]  # one the processor resizes, one it converts to RGB
    for images in (stackable, stackable + others, stackable[:1]):
        expected = processor(images=images, return_tensors="pt")
        got = preprocess_images(processor, images)
        assert torch.equal(got["image_grid_thw"], expected["image_grid_thw"])
        assert torch.equal(got["pixel_values"], expected["pixel_values"])  # bit for bit, in input order
