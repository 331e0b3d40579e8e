"""The tiny offline Qwen2.5-VL: forward, generate, save / reload through the Auto classes."""

from __future__ import annotations

import torch
from PIL import Image

from egt.models.load import load_model
from egt.models.tiny import REASONING_TAGS


def _batch(loaded):
    from egt.judge.base import JudgeRequest
    from egt.judge.generative import encode_batch
    from egt.records import PreferencePair

    pair = PreferencePair(
        id="x",
        question="What colour is the square at the top?",
        responses=("It is red.", "It is blue."),
        preferred=0,
        images=["-"],
    )
    img = Image.new("RGB", (56, 56), (200, 30, 30))
    reqs = [JudgeRequest(pair, False, [img]), JudgeRequest(pair, True, [img])]
    return encode_batch(loaded, reqs, "compact")


def test_reload_forward_and_generate(tiny_judge_dir):
    loaded = load_model(str(tiny_judge_dir), device="cpu")
    assert loaded.is_vision and type(loaded.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    enc = _batch(loaded)
    image_token = loaded.model.config.image_token_id
    assert (enc["input_ids"] == image_token).sum(dim=1).tolist() == [4, 4]  # 56×56 → 4 tokens
    with torch.no_grad():
        logits = loaded.model(**enc).logits
    assert logits.shape[:2] == enc["input_ids"].shape and torch.isfinite(logits).all()
    out = loaded.model.generate(**enc, max_new_tokens=5, do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id)
    assert out.shape == (2, enc["input_ids"].shape[1] + 5) or out.shape[1] <= enc["input_ids"].shape[1] + 5


def test_save_reload_gives_identical_logits(tiny_judge_dir, tmp_path):
    a = load_model(str(tiny_judge_dir), device="cpu")
    a.model.save_pretrained(tmp_path / "copy")
    a.processor.save_pretrained(tmp_path / "copy")
    b = load_model(str(tmp_path / "copy"), device="cpu")
    enc = _batch(a)
    with torch.no_grad():
        assert torch.equal(a.model(**enc).logits, b.model(**enc).logits)
    assert (tmp_path / "copy" / "model.safetensors").is_file()


def test_reasoning_tags_are_single_normal_tokens(tiny_judge_dir):
    tok = load_model(str(tiny_judge_dir), device="cpu").tokenizer
    for tag in REASONING_TAGS:
        ids = tok.encode(tag, add_special_tokens=False)
        assert len(ids) == 1
        assert tok.decode(ids, skip_special_tokens=True) == tag  # survives TRL's decoding


def test_unknown_model_path_is_a_user_error(tmp_path):
    import pytest

    from egt.errors import EgtError

    with pytest.raises(EgtError, match="not a model folder"):
        load_model(str(tmp_path / "nope"))
