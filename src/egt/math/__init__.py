"""Math reasoning: answer verification, GSM8K evaluation, math preference pairs and SkyMath's
self-compare fine-tuning pipeline (docs/methods.md §7).

``from egt.math import verify`` is the one-call entry point: ``verify(solution, reference) -> bool``.
"""

from egt.math.answers import (
    CORRECT,
    UNANSWERED,
    WRONG,
    Grade,
    answers_match,
    extract_answer,
    grade,
    reference_answer,
    verify,
)
from egt.math.metrics import pass_at_k

__all__ = [
    "CORRECT",
    "WRONG",
    "UNANSWERED",
    "Grade",
    "answers_match",
    "extract_answer",
    "grade",
    "reference_answer",
    "verify",
    "pass_at_k",
]
