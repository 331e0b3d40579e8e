"""Fixtures ``pool`` and ``scores_file``: synthetic entropy scores (tests/synthetic_scores.py)."""

from synthetic_scores import pool, scores_file  # noqa: F401  (fixtures)
