"""Shared fixtures of the math tests: the real GSM8K files (tests/real_data.py) and a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from real_data import shared_data


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny matrices: more threads only add contention on a shared machine (restored after each module)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def example_solutions() -> Path:
    return shared_data("gsm8k", "example_model_solutions.jsonl")


@pytest.fixture
def gsm8k_test() -> Path:
    return shared_data("gsm8k", "test.jsonl")


@pytest.fixture
def problems():
    """A few lab problems in GSM8K format."""
    from egt.math.problems import make_problems

    return make_problems(12, seed=7)


@pytest.fixture(scope="session")
def tiny_lab(tmp_path_factory):
    """An untrained tiny text model with the lab tokenizer, saved as a checkpoint folder."""
    from egt.math.lab import MathLabConfig, TinyTextConfig, make_lab

    out = tmp_path_factory.mktemp("math_lab")
    cfg = MathLabConfig(n_train=60, n_test=8, base_steps=0)
    model_cfg = TinyTextConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, intermediate_size=64
    )
    make_lab(cfg, model_cfg, seed=0, out=out)
    return out


@pytest.fixture(scope="session")
def tiny_loaded(tiny_lab):
    from egt.models.load import load_model

    return load_model(str(tiny_lab / "model"), device="cpu", dtype="float32")
