"""The transformers version guard on private APIs (:mod:`egt.models.compat`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import transformers

from egt.entropy.teacher_forced import completion_hidden, generation_processors
from egt.errors import EgtError
from egt.models import compat
from egt.models.compat import (
    ALLOW_UNTESTED_ENV,
    TRANSFORMERS_TESTED,
    require_tested_transformers,
    transformers_is_tested,
)


def test_the_installed_transformers_is_inside_the_tested_range():
    assert compat._installed() == transformers.__version__
    assert transformers_is_tested(), f"transformers {transformers.__version__} is outside {TRANSFORMERS_TESTED}"
    require_tested_transformers("anything")  # no error, no warning


@pytest.mark.parametrize(
    ("version", "tested"),
    [("5.23.0", True), ("5.23.9", True), ("5.23.0.dev0", True), ("5.23.0+local", True)]
    + [("5.22.2", False), ("5.24.0", False), ("5.25.0", False), ("6.0.0", False), ("4.57.6", False)],
)
def test_the_range_is_read_by_release(version, tested):
    assert transformers_is_tested(version) is tested


def test_an_untested_transformers_stops_the_private_calls_with_one_clear_error(monkeypatch):
    monkeypatch.delenv(ALLOW_UNTESTED_ENV, raising=False)
    monkeypatch.setattr(compat, "_installed", lambda: "5.24.0")
    with pytest.raises(EgtError, match=r"transformers 5\.24\.0 is installed.*EGT_ALLOW_UNTESTED_TRANSFORMERS=1"):
        require_tested_transformers("x")
    # both call sites check before touching the private API (the guard fires before any model is needed)
    with pytest.raises(EgtError, match="logits processors"):
        generation_processors(SimpleNamespace(model=None), {}, torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(EgtError, match="position ids"):
        completion_hidden(SimpleNamespace(base_model=object()), {"input_ids": torch.zeros(1, 1)}, None, None)


def test_the_escape_hatch_turns_the_error_into_a_warning(monkeypatch):
    monkeypatch.setattr(compat, "_installed", lambda: "5.25.0")
    monkeypatch.setenv(ALLOW_UNTESTED_ENV, "1")
    with pytest.warns(RuntimeWarning, match="transformers 5.25.0"):
        require_tested_transformers("x")
