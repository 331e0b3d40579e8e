"""Backbones for reward models: a checkpoint, or a tiny model built offline from the data's own text.

``tiny`` is the tiny Qwen2.5-VL of :mod:`egt.models.tiny` (tokenizer trained on the training
texts); ``tiny-text`` is its text-only twin, a ``Qwen2ForCausalLM`` from a config with the same
tokenizer recipe (:func:`egt.models.tiny.build_tiny_text_lm`) — what the HH-RLHF smoke test
trains, no download anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from egt.models.tiny import TinyVLConfig, build_tiny_judge, build_tiny_text_lm
from egt.records import PreferencePair

TINY_KINDS = ("tiny", "tiny-text")


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
