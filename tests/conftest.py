"""Shared fixtures: an offline environment, a small shapes lab, a tiny untrained judge."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("EGT_PROGRESS", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (see shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def small_lab(tmp_path_factory) -> Path:
    from egt.lab import LabConfig, make_lab

    out = tmp_path_factory.mktemp("lab") / "lab"
    make_lab(LabConfig(output_dir=str(out), n_sft=64, n_rl_pool=32, n_test=16, seed=3))
    return out


@pytest.fixture(scope="session")
def tiny_judge_dir(tmp_path_factory, small_lab) -> Path:
    from egt.models.tiny import build_tiny_judge
    from egt.records import read_pairs
    from egt.train.sft import lab_corpus

    out = tmp_path_factory.mktemp("judge") / "tiny"
    build_tiny_judge(lab_corpus(read_pairs(small_lab / "sft.jsonl"), "compact"), out)
    return out
