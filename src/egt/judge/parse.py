"""Strict parser for judge outputs (docs/methods.md §1).

A well-formed output is exactly one ``<think>…</think>`` block followed by exactly one
``<answer>1</answer>`` or ``<answer>2</answer>``, with only whitespace around them. Anything
else is a format failure: no block, two blocks, text outside the blocks, a tag inside the
reasoning, a digit other than 1/2. There is no silent fallback; ``lenient_verdict`` exists for
evaluation reports that want to show a fallback parse *separately*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STRICT = re.compile(r"\s*<think>(?P<think>.*?)</think>\s*<answer>\s*(?P<answer>[12])\s*</answer>\s*", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


@dataclass(frozen=True)
class Verdict:
    """A parsed judge output. ``choice`` is 0 for Response 1, 1 for Response 2 (as presented)."""

    choice: int
    reasoning: str


def parse_verdict(text: str) -> Verdict | None:
    """Return the verdict of an exactly well-formed judge output, else None."""
    m = _STRICT.fullmatch(text)
    if m is None:
        return None
    think = m.group("think")
    if any(tag in think for tag in _TAGS):
        return None
    return Verdict(choice=int(m.group("answer")) - 1, reasoning=think.strip())


def lenient_verdict(text: str) -> int | None:
    """Fallback for reports only: the last ``<answer>`` digit, or the last standalone 1/2."""
    answers = re.findall(r"<answer>\s*([12])\s*</answer>", text)
    if answers:
        return int(answers[-1]) - 1
    digits = re.findall(r"(?<!\d)([12])(?!\d)", text)
    return int(digits[-1]) - 1 if digits else None
