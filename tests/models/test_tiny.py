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


def test_tiny_text_lm_is_the_vlm_text_decoder_without_eyes(tmp_path):
    """One decoder recipe for both tiny models: the text LM's config is the VLM's text config (same
    sizes), it saves and reloads through the Auto classes, and its weights depend on the seed only."""
    from dataclasses import asdict

    from egt.models.tiny import TinyTextConfig, TinyVLConfig, build_model, build_tiny_text_lm, train_tokenizer

    corpus = [f"Is {i} even? Yes, {i} is even. No, {i} is odd." for i in range(50)]
    vl_cfg = TinyVLConfig(hidden_size=32, intermediate_size=64, vision_hidden_size=32, mrope_section=[2, 1, 1])
    text_cfg = TinyTextConfig(**{k: v for k, v in asdict(vl_cfg).items() if k in asdict(TinyTextConfig())})
    vlm = build_model(train_tokenizer(corpus, vl_cfg.vocab_size), vl_cfg)
    build_tiny_text_lm(corpus, tmp_path / "a", text_cfg, seed=1)
    build_tiny_text_lm(corpus, tmp_path / "b", text_cfg, seed=1)
    build_tiny_text_lm(corpus, tmp_path / "c", text_cfg, seed=2)
    loaded = load_model(str(tmp_path / "a"), device="cpu", dtype="float32")
    assert not loaded.is_vision and type(loaded.model).__name__ == "Qwen2ForCausalLM"
    text, vision_text = loaded.model.config, vlm.config.text_config
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
        assert getattr(text, key) == getattr(vision_text, key), key
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(text, key) == getattr(vision_text, key) == getattr(loaded.model.generation_config, key)
    assert text.eos_token_id == loaded.tokenizer.convert_tokens_to_ids("<|im_end|>")
    weights = [(tmp_path / name / "model.safetensors").read_bytes() for name in "abc"]
    assert weights[0] == weights[1] != weights[2]


def test_vl_config_extends_the_text_config():
    from egt.models.tiny import TinyTextConfig, TinyVLConfig

    assert isinstance(TinyVLConfig(), TinyTextConfig)
    assert TinyVLConfig().vocab_size == 1024 and TinyTextConfig().vocab_size == 2048
    assert TinyVLConfig().hidden_size == TinyTextConfig().hidden_size == 128
