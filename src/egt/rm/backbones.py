"""Backbones for reward models: a checkpoint, or a tiny model built offline from the data's own text.

``tiny`` is the tiny Qwen2.5-VL of :mod:`egt.models.tiny` (tokenizer trained on the training
texts); ``tiny-text`` is its text-only twin, a ``Qwen2ForCausalLM`` from a config with the same
tokenizer recipe — what the HH-RLHF smoke test trains, no download anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from egt.io import atomic_path
from egt.models.tiny import SPECIAL_TOKENS, TinyVLConfig, build_tiny_judge, train_tokenizer
from egt.records import PreferencePair

TINY_KINDS = ("tiny", "tiny-text")


@dataclass
class TinyTextConfig:
    """Sizes of the tiny text backbone (a Qwen2 decoder)."""

    vocab_size: int = 2048
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 2048


def build_tiny_text_lm(
    corpus: Iterable[str], out_dir: str | Path, cfg: TinyTextConfig | None = None, seed: int = 0
) -> Path:
    """Train a BPE tokenizer on ``corpus``, build a random Qwen2 LM of ``cfg``'s sizes, save both."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = cfg or TinyTextConfig()
    tokenizer = train_tokenizer(corpus, cfg.vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2Config(
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
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)


def pair_texts(pairs: Iterable[PreferencePair]) -> Iterable[str]:
    """The texts a tiny tokenizer is trained on: every question and response."""
    for p in pairs:
        yield p.question
        yield from p.responses


def build_tiny_backbone(kind: str, corpus: Iterable[str], out_dir: str | Path, seed: int = 0) -> Path:
    """Build ``tiny`` (Qwen2.5-VL) or ``tiny-text`` (Qwen2) under ``out_dir``."""
    if kind == "tiny":
        return build_tiny_judge(list(corpus), out_dir, TinyVLConfig(), seed=seed)
    if kind == "tiny-text":
        return build_tiny_text_lm(list(corpus), out_dir, seed=seed)
    raise ValueError(f"unknown tiny backbone {kind!r}; known: {TINY_KINDS}")
