"""Reading math questions and solutions: GSM8K's format, its example model solutions, a simple one.

Questions (``--data``): one JSON object a line with ``question`` and ``answer`` (GSM8K's worked
solution ending ``#### N``; ``reference`` or ``ground_truth`` are accepted too, as is a bare
answer), optional ``id``. Without an ``id`` an item is named by its position, ``"00042"``, so
``gsm8k/test.jsonl`` and ``gsm8k/example_model_solutions.jsonl`` (same questions, same order) get
the same ids.

Solutions (``--solutions``), two formats, detected per line:

- the GSM8K example model solutions: ``question``, ``ground_truth`` and one object per model
  (``"6b_finetuning": {"is_correct": false, "solution": "…\\nA: 26"}``); each model is a *source*.
- simple: ``{"id", "question", "solution"}`` (optionally ``answer``/``reference``); several lines
  with the same id are several solutions of one question. A missing reference is looked up in
  the questions file by id, then by question text.

Every error names the file and line; nothing is written before the whole input has been read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egt.data.readers import iter_jsonl
from egt.errors import EgtError
from egt.math.answers import reference_answer

REFERENCE_FIELDS = ("answer", "reference", "ground_truth")


@dataclass
class MathItem:
    """One question with its reference solution (or bare answer) and the extracted gold answer."""

    id: str
    question: str
    reference: str
    gold: str


@dataclass
class SolutionSet:
    """The existing solutions of one question, with where each came from and its stored flag."""

    item: MathItem
    solutions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    flags: list[bool | None] = field(default_factory=list)  # the file's is_correct, when it has one


def _require_str(obj: dict, key: str, loc: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise EgtError(f"{loc}: field {key!r}: missing or not a non-empty string")
    return value


def _record_id(obj: dict, index: int, loc: str) -> str:
    rid = obj.get("id")
    if rid is None:
        return f"{index:05d}"
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or str(rid) == "":
        raise EgtError(f"{loc}: field 'id': must be a non-empty string or an integer")
    return str(rid)


def _reference_of(obj: dict, loc: str) -> tuple[str, str] | None:
    """``(reference, gold)`` from the first reference field present, or None."""
    for key in REFERENCE_FIELDS:
        if key in obj:
            ref = obj[key]
            if not isinstance(ref, (str, int, float)) or isinstance(ref, bool):
                raise EgtError(f"{loc}: field {key!r}: must be a string (a worked solution or the answer)")
            ref = str(ref)
            try:
                return ref, reference_answer(ref)
            except EgtError as e:
                raise EgtError(f"{loc}: field {key!r}: {e}") from None
    return None


def _check_object(obj: Any, loc: str) -> dict:
    if not isinstance(obj, dict):
        raise EgtError(f"{loc}: expected a JSON object, got {type(obj).__name__}")
    return obj


def read_items(path: str | Path, limit: int = 0) -> list[MathItem]:
    """Questions with references from a GSM8K-format JSONL file (``limit`` > 0 keeps the first N)."""
    path = Path(path)
    if not path.is_file():
        raise EgtError(f"{path}: no such file")
    items: list[MathItem] = []
    seen: set[str] = set()
    for index, (lineno, obj) in enumerate(iter_jsonl(path)):
        loc = f"{path}: line {lineno}"
        obj = _check_object(obj, loc)
        question = _require_str(obj, "question", loc)
        found = _reference_of(obj, loc)
        if found is None:
            raise EgtError(f"{loc}: no reference: expected one of the fields {', '.join(REFERENCE_FIELDS)}")
        rid = _record_id(obj, index, loc)
        if rid in seen:
            raise EgtError(f"{loc}: field 'id': duplicate id {rid!r}")
        seen.add(rid)
        items.append(MathItem(id=rid, question=question, reference=found[0], gold=found[1]))
        if limit and len(items) >= limit:
            break
    if not items:
        raise EgtError(f"{path}: no questions")
    return items


def is_example_format(obj: dict) -> bool:
    """A line of GSM8K's example_model_solutions.jsonl: per-model objects holding a ``solution``."""
    return any(isinstance(v, dict) and "solution" in v for v in obj.values())


def read_solutions(path: str | Path, items: Sequence[MathItem] | None = None, limit: int = 0) -> list[SolutionSet]:
    """Existing solutions grouped by question, in first-seen order (``limit`` > 0 keeps N questions)."""
    path = Path(path)
    if not path.is_file():
        raise EgtError(f"{path}: no such file")
    by_id = {it.id: it for it in items or ()}
    by_question = {it.question.strip(): it for it in items or ()}
    sets: dict[str, SolutionSet] = {}
    for index, (lineno, obj) in enumerate(iter_jsonl(path)):
        loc = f"{path}: line {lineno}"
        obj = _check_object(obj, loc)
        question = _require_str(obj, "question", loc)
        rid = _record_id(obj, index, loc)
        if is_example_format(obj):
            found = _reference_of(obj, loc)
            if found is None:
                raise EgtError(f"{loc}: no reference: expected one of the fields {', '.join(REFERENCE_FIELDS)}")
            item = MathItem(rid, question, *found)
            solution_set = SolutionSet(item)
            for source, value in obj.items():
                if not (isinstance(value, dict) and "solution" in value):
                    continue
                if not isinstance(value["solution"], str):
                    raise EgtError(f"{loc}: field '{source}.solution': must be a string")
                flag = value.get("is_correct")
                if flag is not None and not isinstance(flag, bool):
                    raise EgtError(f"{loc}: field '{source}.is_correct': must be true or false")
                solution_set.solutions.append(value["solution"])
                solution_set.sources.append(source)
                solution_set.flags.append(flag)
            if rid in sets:
                raise EgtError(f"{loc}: field 'id': duplicate id {rid!r}")
            sets[rid] = solution_set
        else:
            solution = obj.get("solution")
            if not isinstance(solution, str):
                raise EgtError(f"{loc}: field 'solution': missing or not a string")
            rid = str(obj["id"]) if obj.get("id") is not None else rid
            if rid not in sets:
                found = _reference_of(obj, loc)
                known = by_id.get(rid) or by_question.get(question.strip())
                if found is not None:
                    item = MathItem(rid, question, *found)
                elif known is not None:
                    item = MathItem(rid, question, known.reference, known.gold)
                else:
                    raise EgtError(
                        f"{loc}: no reference for id {rid!r}: give an 'answer' field or --data with this question"
                    )
                sets[rid] = SolutionSet(item)
            flag = obj.get("is_correct")
            sets[rid].solutions.append(solution)
            sets[rid].sources.append(str(obj.get("source", len(sets[rid].solutions) - 1)))
            sets[rid].flags.append(flag if isinstance(flag, bool) else None)
        if limit and len(sets) > limit:
            sets.pop(rid)
            break
    if not sets:
        raise EgtError(f"{path}: no solutions")
    return list(sets.values())
