"""Final-answer extraction and verification for GSM8K-style math (docs/methods.md §7).

Two steps, kept apart so each can be tested and reported on its own:

1. :func:`extract_answer` finds the *marked* final answer of a text: ``\\boxed{…}``, a ``#### N``
   line (GSM8K references), an ``A: N`` / ``Answer: N`` line (the GSM8K example model solutions),
   or ``The (final) answer is N``. When several are present the last one wins. There is no
   "last number in the text" fallback: a solution that never states a final answer is
   *unanswered* (``None``), which callers count separately and score as wrong.
2. :func:`verify` compares the two answers with the ``math-verify`` library (``math_verify.parse``
   + ``math_verify.verify``; gold first, the library is not symmetric). Before parsing we only
   clean the answer string: calculator annotations ``<<…>>``, currency signs, thousands commas,
   a trailing full stop, and ``%`` (GSM8K writes percentages as bare numbers: ``#### 50`` for
   "50%"). Units and words around the number are left for math-verify's own extraction.

Timeouts: math-verify guards parsing and comparison with ``signal.alarm``, which only works in the
main thread. We keep that guard in the main thread and switch it off elsewhere (threads, HTTP
handlers, data-loader workers); there the input is bounded instead (answers longer than
:data:`MAX_ANSWER_CHARS` are not parsed and score as wrong), so no pathological expression reaches
sympy. A reference without a final answer is a user error, not a wrong solution.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from dataclasses import dataclass

import math_verify

from egt.errors import EgtError

MAX_ANSWER_CHARS = 120  # longer "answers" are not parsed (no GSM8K answer comes close)
TIMEOUT_SECONDS = 5  # math-verify's per-call guard, main thread only

CORRECT, WRONG, UNANSWERED = "correct", "wrong", "unanswered"


class _DropTimeoutNotice(logging.Filter):
    """math-verify logs a warning whenever its timeout is off; we switch it off on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutNotice())


# --------------------------------------------------------------------------------------------
# extraction

_HASH_LINE = re.compile(r"^[ \t]*####[ \t]*(?P<ans>[^\n]*)$", re.MULTILINE)
_ANSWER_LINE = re.compile(
    r"^[ \t]*(?:\*\*)?(?:A|Answer|Final answer)(?:\*\*)?[ \t]*[:：](?:\*\*)?[ \t]*(?P<ans>[^\n]*)$",
    re.MULTILINE | re.IGNORECASE,
)
_ANSWER_IS = re.compile(r"\b(?:the )?(?:final )?answer is[ \t]*[:：]?[ \t]*(?P<ans>[^\n]*)", re.IGNORECASE)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_CALCULATOR = re.compile(r"<<[^<>]*>>")


def _boxed_spans(text: str) -> list[tuple[int, str]]:
    """``(start, content)`` of every ``\\boxed{…}`` with balanced braces."""
    spans = []
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            spans.append((m.start(), text[m.end() : i - 1]))
    return spans


def _trim_sentence(ans: str) -> str:
    """Cut ``The answer is 18. She …`` after the first sentence (a full stop not inside a number)."""
    m = re.search(r"\.(?!\d)", ans)
    return ans[: m.start()] if m else ans


def extract_answer(text: str) -> str | None:
    """The marked final answer of ``text`` as written (stripped), or None when there is none.

    >>> extract_answer("She makes 9 * 2 = $18.\\n#### 18")
    '18'
    >>> extract_answer("So the total is 5.\\nA: 1,250") is not None
    True
    """
    if not isinstance(text, str):
        return None
    candidates: list[tuple[int, str]] = _boxed_spans(text)
    candidates += [(m.start(), m.group("ans")) for m in _HASH_LINE.finditer(text)]
    candidates += [(m.start(), m.group("ans")) for m in _ANSWER_LINE.finditer(text)]
    candidates += [(m.start(), _trim_sentence(m.group("ans"))) for m in _ANSWER_IS.finditer(text)]
    for _, ans in sorted(candidates, key=lambda c: c[0], reverse=True):
        ans = ans.strip().strip("*").strip()
        if ans and any(ch.isalnum() for ch in ans):
            return ans
    return None


def reference_answer(reference: str) -> str:
    """The gold answer of a reference: its marked answer, or the whole text when it is a bare answer."""
    ans = extract_answer(reference)
    if ans is None and isinstance(reference, str):
        bare = reference.strip()
        if bare and "\n" not in bare and len(bare) <= MAX_ANSWER_CHARS:
            ans = bare
    if ans is None:
        preview = reference[:60] + ("…" if len(reference) > 60 else "") if isinstance(reference, str) else reference
        raise EgtError(f"reference has no final answer ('#### N', 'A: N', \\boxed{{N}} or a bare answer): {preview!r}")
    return ans


# --------------------------------------------------------------------------------------------
# verification


def clean_answer(ans: str) -> str:
    """Strip what GSM8K answers carry around the number and math-verify does not expect."""
    ans = _CALCULATOR.sub("", ans)
    ans = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", ans)  # 1,234,567 -> 1234567
    ans = ans.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    ans = re.sub(r"[€£¥]", "", ans)
    ans = ans.strip().rstrip(".").strip()
    return ans


def _timeout() -> int | None:
    return TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=65536)
def _parse_cached(cleaned: str, timeout: int | None) -> tuple:
    looks_latex = "\\" in cleaned or "^" in cleaned or "{" in cleaned
    text = f"${cleaned}$" if looks_latex else cleaned
    return tuple(math_verify.parse(text, parsing_timeout=timeout))


def parse_answer(ans: str) -> list:
    """math-verify's parse of a cleaned answer (``[]`` when it finds nothing or the answer is too long)."""
    cleaned = clean_answer(ans)
    if not cleaned or len(cleaned) > MAX_ANSWER_CHARS:
        return []
    return list(_parse_cached(cleaned, _timeout()))


def answers_match(predicted: str, gold: str) -> bool:
    """True when two extracted answers are mathematically equal according to math-verify."""
    gold_parsed, pred_parsed = parse_answer(gold), parse_answer(predicted)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(math_verify.verify(gold_parsed, pred_parsed, timeout_seconds=_timeout()))


@dataclass(frozen=True)
class Grade:
    """The verdict on one solution: ``status`` is correct | wrong | unanswered."""

    status: str
    answer: str | None  # the solution's extracted answer
    gold: str  # the reference's extracted answer

    @property
    def correct(self) -> bool:
        return self.status == CORRECT


@functools.lru_cache(maxsize=32768)
def grade(solution: str, reference: str) -> Grade:
    """Grade ``solution`` against ``reference`` (a worked reference or a bare gold answer); cached."""
    gold = reference_answer(reference)
    answer = extract_answer(solution)
    if answer is None:
        return Grade(UNANSWERED, None, gold)
    return Grade(CORRECT if answers_match(answer, gold) else WRONG, answer, gold)


def verify(solution: str, reference: str) -> bool:
    """True when the final answer of ``solution`` equals that of ``reference``.

    An unanswered solution is wrong; a reference without a final answer raises :class:`EgtError`.
    """
    return grade(solution, reference).correct
