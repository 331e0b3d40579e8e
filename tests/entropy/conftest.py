"""Fixtures of the entropy tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def loaded(tiny_judge_dir):
    """The tiny untrained judge, loaded in float32 on the CPU (one copy per test module: some tests mutate it)."""
    from egt.models.load import load_model

    return load_model(str(tiny_judge_dir), device="cpu", dtype="float32")
