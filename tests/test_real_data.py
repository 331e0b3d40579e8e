"""The real-data helper: a missing ../shared/data file skips a test, except under CI=true, where it fails it."""

from __future__ import annotations

import pytest

from real_data import SHARED_DATA, shared_data


def test_a_missing_file_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="real data not available: .*no_such_benchmark"):
        shared_data("no_such_benchmark", "data.jsonl")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(BaseException) as outcome:  # a skip is an outcome too: it must not be one
        shared_data("no_such_benchmark", "data.jsonl")
    assert outcome.type is pytest.fail.Exception, outcome
    assert "CI=true but real data not available" in str(outcome.value)
    if SHARED_DATA.is_dir():  # a present file is returned whatever CI says
        present = next(p for p in SHARED_DATA.rglob("*") if p.is_file())
        assert shared_data(*present.relative_to(SHARED_DATA).parts) == present
