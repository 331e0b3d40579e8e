"""Fixture ``estimator_registry``: the advantage-estimator registry, restored in place after the test."""

from __future__ import annotations

import pytest

from egt.rl.estimators import ADVANTAGE_ESTIMATORS


@pytest.fixture
def estimator_registry():
    """The registry itself (every importer sees a toy estimator registered in it), restored afterwards."""
    saved = dict(ADVANTAGE_ESTIMATORS)
    yield ADVANTAGE_ESTIMATORS
    ADVANTAGE_ESTIMATORS.clear()
    ADVANTAGE_ESTIMATORS.update(saved)
