"""Fixtures of the entropy tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def loaded(tiny_judge_dir):
    """The tiny untrained judge, loaded in float32 on the CPU (one copy per test module: some tests mutate it)."""
    from egt.models.load import load_model

    return load_model(str(tiny_judge_dir), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def trained(trained_judge_dir):
    """The tiny judge after a few SFT steps (tests/conftest.py), float32 on the CPU: its rollouts
    end in parsable verdicts often enough that verdicts and entropies are numbers, not nulls."""
    from egt.models.load import load_model

    return load_model(str(trained_judge_dir), device="cpu", dtype="float32")


ENTROPY_KEYS = ("answer_entropies", "sentence_entropies", "peak_entropies")


def assert_informative(records: list[dict]) -> None:
    """Records whose comparison means something: at least half the rollouts parsed (each with a
    verdict and an answer, sentence and peak entropy), the verdicts are not all one response, and
    the entropies are not all one value."""
    verdicts = [v for r in records for v in r["verdicts"]]
    parsed = [v for v in verdicts if v is not None]
    assert 2 * len(parsed) >= len(verdicts), f"verdicts {verdicts}: most rollouts should parse"
    assert len(set(parsed)) == 2, f"verdicts {verdicts}: want both responses chosen somewhere"
    for key in ENTROPY_KEYS:
        values = [x for r in records for x in r[key]]
        assert sum(x is not None for x in values) >= len(parsed), (key, values)
        assert len({round(x, 3) for x in values if x is not None}) > 1, (key, values)


def assert_same_rollouts_close_entropies(a: list[dict], b: list[dict], atol: float) -> None:
    """Same items, verdicts and texts; each entropy null in both or within ``atol``. ``a`` must be
    informative (:func:`assert_informative`), or the comparison would be of nulls."""
    assert_informative(a)
    for x, y in zip(a, b, strict=True):
        assert x["id"] == y["id"] and x["verdicts"] == y["verdicts"] and x["texts"] == y["texts"]
        for key in ENTROPY_KEYS:
            for u, v in zip(x[key], y[key], strict=True):
                assert (u is None) == (v is None) and (u is None or abs(u - v) <= atol), (key, u, v)
