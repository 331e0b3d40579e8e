"""Math preference pairs: a right and a wrong solution of the same question (text-only records).

Every question with at least one right and one wrong solution gives pairs, one per (right,
wrong) combination of distinct solution texts (``max_per_question`` caps that). Right and wrong
come from our verifier (:func:`egt.math.answers.grade`) or, with ``labels="flags"``, from the
file's stored ``is_correct``. An unanswered solution counts as wrong. Which response is shown
first is a seeded per-pair coin (:func:`egt.data.presentation.seeded_coin`), so the preferred
side is not always position 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from egt.data.presentation import seeded_coin
from egt.errors import EgtError
from egt.math.answers import CORRECT, grade
from egt.math.data import SolutionSet
from egt.records import PreferencePair

LABELS = ("verifier", "flags")


def math_pairs(
    sets: Sequence[SolutionSet],
    labels: str = "verifier",
    max_per_question: int = 0,
    seed: int = 0,
    source_name: str = "gsm8k",
) -> tuple[list[PreferencePair], dict]:
    """Pairs and counts (questions, questions with both, pairs, solutions by status)."""
    if labels not in LABELS:
        raise EgtError(f"field 'labels': unknown {labels!r} (one of {', '.join(LABELS)})")
    pairs: list[PreferencePair] = []
    counts = {"questions": len(sets), "questions_with_both": 0, "right": 0, "wrong": 0, "unanswered": 0, "pairs": 0}
    for s in sets:
        right, wrong = [], []
        for solution, src, flag in zip(s.solutions, s.sources, s.flags, strict=True):
            g = grade(solution, s.item.reference)
            if labels == "flags":
                if flag is None:
                    raise EgtError(
                        f"question id={s.item.id!r}, source {src!r}: no is_correct flag (use --labels verifier)"
                    )
                is_right = flag
            else:
                is_right = g.status == CORRECT
            counts["unanswered"] += g.status == "unanswered"
            counts["right" if is_right else "wrong"] += 1
            bucket = right if is_right else wrong
            if all(solution.strip() != other.strip() for other, _, _ in bucket):
                bucket.append((solution, src, g))
        if not right or not wrong:
            continue
        counts["questions_with_both"] += 1
        made = 0
        for r_text, r_src, r_grade in right:
            for w_text, w_src, w_grade in wrong:
                if max_per_question and made >= max_per_question:
                    break
                pid = f"{s.item.id}:{r_src}>{w_src}"
                first = int(seeded_coin(seed, pid))  # position of the right solution
                responses = (r_text, w_text) if first == 0 else (w_text, r_text)
                pairs.append(
                    PreferencePair(
                        id=pid,
                        question=s.item.question,
                        responses=responses,
                        preferred=first,
                        category="math",
                        source=source_name,
                        meta={
                            "gold": s.item.gold,
                            "answers": [r_grade.answer, w_grade.answer][:: 1 if first == 0 else -1],
                            "sources": [r_src, w_src][:: 1 if first == 0 else -1],
                            "rejected_status": w_grade.status,
                        },
                    )
                )
                made += 1
    counts["pairs"] = len(pairs)
    return pairs, counts
