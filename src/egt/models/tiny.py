"""A tiny Qwen2.5-VL (and its text-only twin) built fully offline: tokenizer, image processor and
model from a config.

This is the embedded default that lets every EGT capability run end to end on a laptop CPU. It
is a real ``Qwen2_5_VLForConditionalGeneration`` with real processor classes, so everything that
works on it works unchanged on Qwen2.5-VL-7B; it is just small and trained from scratch.

- Tokenizer: byte-level BPE trained on the task's own texts (no download), Qwen's special tokens
  and chat template. ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` are *normal* added
  tokens, because TRL decodes completions with ``skip_special_tokens=True``.
- Image processor: ``Qwen2VLImageProcessorPil`` (no torchvision). 56×56 images → 4×4 patches of
  14 px → 2×2 merge → 4 image tokens.
- Processor: :class:`TinyVLProcessor`, a ``Qwen2_5_VLProcessor`` without the video processor
  (whose Qwen implementation needs torchvision), registered with ``AutoProcessor``.
- Text model: :func:`build_text_model` / :func:`build_tiny_text_lm`, a ``Qwen2ForCausalLM`` with the
  same tokenizer recipe and the same decoder settings (:func:`decoder_settings`) as the VLM's text
  model — the reward models' ``tiny-text`` backbone and the math lab's model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoProcessor,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2VLImageProcessorPil,
)

from egt.data.atomic import atomic_path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
REASONING_TAGS = ["<think>", "</think>", "<answer>", "</answer>"]

# Qwen2.5-VL's chat template (image placeholders expanded by the processor), without the
# default system prompt: the tiny model is trained from scratch, so it would only cost tokens.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TinyVLProcessor(Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` for images and text only: no video processor, no torchvision."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        kwargs.pop("video_processor", None)
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    @classmethod
    def get_attributes(cls):
        return ["image_processor", "tokenizer"]


AutoProcessor.register("TinyVLProcessor", TinyVLProcessor, exist_ok=True)


@dataclass
class TinyTextConfig:
    """Sizes of a tiny text decoder (a real ``Qwen2ForCausalLM``, just small); the text model of
    :class:`TinyVLConfig` too. The defaults are the reward models' ``tiny-text`` backbone."""

    vocab_size: int = 2048
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 2048


@dataclass
class TinyVLConfig(TinyTextConfig):
    """Sizes of the tiny judge. The defaults learn the shapes lab in ~2 minutes on 2 CPU cores."""

    vocab_size: int = 1024
    vision_hidden_size: int = 64
    vision_depth: int = 2
    vision_heads: int = 2
    image_size: int = 56
    mrope_section: list[int] = field(default_factory=lambda: [4, 6, 6])  # sums to head_dim / 2


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``corpus`` with Qwen's special tokens and chat template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=2048,
    )
    fast.add_tokens(REASONING_TAGS, special_tokens=False)
    fast.image_token = "<|image_pad|>"
    fast.video_token = "<|video_pad|>"
    return fast


def build_processor(tokenizer: PreTrainedTokenizerFast, image_size: int = 56) -> TinyVLProcessor:
    pixels = image_size * image_size
    image_processor = Qwen2VLImageProcessorPil(min_pixels=pixels, max_pixels=pixels)
    return TinyVLProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)


def build_model(
    tokenizer: PreTrainedTokenizerFast, cfg: TinyVLConfig, seed: int = 0
) -> Qwen2_5_VLForConditionalGeneration:
    """A randomly initialised Qwen2.5-VL of the given sizes, matched to ``tokenizer``."""
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    if sum(cfg.mrope_section) * 2 != head_dim:
        raise ValueError(f"mrope_section {cfg.mrope_section} must sum to head_dim/2 = {head_dim // 2}")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = decoder_settings(tokenizer, cfg)
    config = Qwen2_5_VLConfig(
        text_config=dict(
            **text, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": cfg.mrope_section}
        ),
        vision_config=dict(
            depth=cfg.vision_depth,
            hidden_size=cfg.vision_hidden_size,
            intermediate_size=cfg.vision_hidden_size * 2,
            num_heads=cfg.vision_heads,
            out_hidden_size=cfg.hidden_size,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=list(range(cfg.vision_depth)),
            in_channels=3,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return _with_generation_tokens(Qwen2_5_VLForConditionalGeneration(config), text)


def decoder_settings(tokenizer: PreTrainedTokenizerFast, cfg: TinyTextConfig) -> dict:
    """The text decoder's config keywords (``Qwen2Config`` / Qwen2.5-VL's ``text_config``) for ``cfg``'s
    sizes, matched to ``tokenizer`` (its size and Qwen's special tokens; tied embeddings)."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )


def _with_generation_tokens(model: Any, settings: dict) -> Any:
    """``model`` with the pad / end / start tokens of its :func:`decoder_settings` in its generation config."""
    for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
        setattr(model.generation_config, key, settings[key])
    return model


def build_text_model(tokenizer: PreTrainedTokenizerFast, cfg: TinyTextConfig, seed: int = 0) -> Qwen2ForCausalLM:
    """A randomly initialised ``Qwen2ForCausalLM`` of ``cfg``'s sizes, matched to ``tokenizer``."""
    settings = decoder_settings(tokenizer, cfg)
    torch.manual_seed(seed)
    return _with_generation_tokens(Qwen2ForCausalLM(Qwen2Config(**settings)), settings)


def build_tiny_judge(
    corpus: Iterable[str], out_dir: str | Path, cfg: TinyVLConfig | None = None, seed: int = 0
) -> Path:
    """Train the tokenizer, build processor and model, and save all three to ``out_dir``."""
    cfg = cfg or TinyVLConfig()
    tokenizer = train_tokenizer(corpus, cfg.vocab_size)
    processor = build_processor(tokenizer, cfg.image_size)
    return save_together(out_dir, build_model(tokenizer, cfg, seed), processor)


def build_tiny_text_lm(
    corpus: Iterable[str], out_dir: str | Path, cfg: TinyTextConfig | None = None, seed: int = 0
) -> Path:
    """Train the tokenizer on ``corpus``, build a random Qwen2 LM of ``cfg``'s sizes, save both to ``out_dir``."""
    cfg = cfg or TinyTextConfig()
    tokenizer = train_tokenizer(corpus, cfg.vocab_size)
    return save_together(out_dir, build_text_model(tokenizer, cfg, seed), tokenizer)


def save_together(out_dir: str | Path, *parts: Any) -> Path:
    """``save_pretrained`` each of ``parts`` (model, processor, …) into ``out_dir``, which appears atomically."""
    with atomic_path(out_dir) as tmp:
        for part in parts:
            part.save_pretrained(tmp)
    return Path(out_dir)
