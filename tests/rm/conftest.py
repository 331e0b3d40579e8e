"""Shared fixtures: a small shapes lab and tiny backbones, built once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egt.lab import LabConfig, make_lab
from egt.models.tiny import TinyTextConfig, build_tiny_text_lm
from egt.records import read_pairs
from egt.rm.backbones import build_tiny_backbone, pair_texts
from egt.rm.collate import RewardExample


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rm") / "lab"
    make_lab(LabConfig(output_dir=str(out), n_sft=24, n_rl_pool=16, n_test=16))
    return out


@pytest.fixture(scope="session")
def lab_pairs(lab):
    return read_pairs(lab / "sft.jsonl")


@pytest.fixture(scope="session")
def text_pairs_file(tmp_path_factory) -> Path:
    """Text-only pairs in the EGT record format (no images)."""
    path = tmp_path_factory.mktemp("rm") / "text.jsonl"
    rows = [
        {
            "id": f"t{i}",
            "question": f"Is {i} even?",
            "responses": [f"Yes, {i} is even.", f"No, {i} is odd."],
            "preferred": i % 2,
        }
        for i in range(12)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def vl_backbone(tmp_path_factory, lab_pairs, text_pairs_file) -> Path:
    texts = list(pair_texts(lab_pairs)) + list(pair_texts(read_pairs(text_pairs_file)))
    return build_tiny_backbone("tiny", texts, tmp_path_factory.mktemp("rm") / "vl")


@pytest.fixture(scope="session")
def text_backbone(tmp_path_factory, lab_pairs, text_pairs_file) -> Path:
    texts = list(pair_texts(lab_pairs)) + list(pair_texts(read_pairs(text_pairs_file)))
    cfg = TinyTextConfig(vocab_size=512, hidden_size=64, intermediate_size=128)
    return build_tiny_text_lm(texts, tmp_path_factory.mktemp("rm") / "text", cfg)


@pytest.fixture()
def lab_examples(lab, lab_pairs):
    return [RewardExample(p, lab, "lab") for p in lab_pairs]
