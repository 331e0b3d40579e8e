"""The real data files of ../shared/data (its README lists them) for the tests that read them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason; under ``CI=true`` a missing
    file fails the test (CI provides the data: its absence is a broken setup, not a skip)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        reason = f"real data not available: {path} (see shared/data/README.md)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path
