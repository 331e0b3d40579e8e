"""Shared fixtures: an offline environment, a small shapes lab, a tiny untrained judge and the same
judge after a few SFT steps (trained once per test session, shared by the xdist workers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("EGT_PROGRESS", "0")


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


def _session_root(tmp_path_factory) -> Path:
    """A folder every xdist worker of this run shares (pytest's base temp folder of the run)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def trained_judge_dir(tmp_path_factory, small_lab) -> Path:
    """The tiny judge after a few SFT steps (tests/trained_judge.py); trained by the first worker that
    asks, under a file lock, and reused by the others (the lab is the same seeded lab in each)."""
    from filelock import FileLock

    from trained_judge import train_judge

    root = _session_root(tmp_path_factory)
    out = root / "trained-judge"
    with FileLock(str(root / "trained-judge.lock")):
        if not (out / "sft_summary.json").is_file():  # the judge folder appears atomically
            train_judge(small_lab / "sft.jsonl", out)
    return out
