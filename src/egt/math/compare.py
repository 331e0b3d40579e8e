"""Comparers for self-compare (docs/methods.md §7): compare a wrong attempt with the reference step by step,
name the first wrong step, write a corrected solution.

Three real comparers and one stand-in, all behind one call, ``compare(requests) -> list[str |
ComparerFailed]`` (one raw reply or one failure per request, never an exception for a bad reply):

- :class:`ModelComparer` — a local model (the policy itself = "self", or another checkpoint),
  greedy by default, prompted with :func:`comparison_prompt`.
- :class:`OpenAIComparer` — any OpenAI-compatible ``/chat/completions`` endpoint through the
  project's one client (:class:`egt.clients.ChatClient`, the ``openai`` package): a timeout per
  request, retries with backoff on timeouts, connection errors, 429 and 5xx; after the last retry
  the request is *recorded as failed* and the run goes on (a rerun retries it). A wrong key or
  model name stops the run with one line. The API key is read from an environment variable.
- :class:`ReferenceComparer` — a scripted stand-in for a strong comparer model, used by the CPU
  lab where a tiny model cannot write a verifying correction. It aligns the attempt's steps with
  the reference's line by line, names the first step that does not match (``match="numbers"``:
  the same numbers in the same order, so ``7 * 2 = 14`` must match both operands and result;
  ``match="text"``: the same text up to whitespace), and corrects by keeping the matching steps
  and continuing with the reference's. It exercises the pipeline's mechanics; it is not a model.

The reply format every comparer is asked for, parsed by :func:`parse_comparison`::

    Step 1: … agrees with the reference.
    Step 2: … wrong: …
    First wrong step: 2
    Corrected solution:
    …
    #### 18
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from egt.math.answers import clean_answer

if TYPE_CHECKING:
    from egt.models.load import LoadedModel

COMPARE_INSTRUCTIONS = (
    "Compare the student's solution with the reference solution step by step. For each step of the "
    "student's solution write one line 'Step i: …' saying whether it agrees with the reference and, if "
    "not, what is wrong. Then write 'First wrong step: i' (the number of the first wrong step), then "
    "'Corrected solution:' on its own line followed by a complete corrected solution that ends with a "
    "line '#### <final answer>'."
)
SELF_CHECK_INSTRUCTIONS = (
    "Check this attempt step by step, name the first wrong step and write a corrected solution that "
    "ends with a line '#### <final answer>'."
)


@dataclass(frozen=True)
class ComparisonRequest:
    question: str
    reference: str
    attempt: str


@dataclass(frozen=True)
class Comparison:
    """A parsed comparer reply."""

    analysis: str  # the step-by-step part
    first_wrong_step: int | None
    corrected: str


class ComparerFailed(Exception):
    """A comparison that could not be obtained (timeouts, HTTP errors); recorded, retried on rerun."""


def comparison_prompt(question: str, reference: str, attempt: str) -> str:
    """What the comparer sees: question, reference, the wrong attempt, the reply format."""
    return (
        f"Question:\n{question}\n\nReference solution:\n{reference}\n\nStudent's solution:\n{attempt}\n\n"
        f"{COMPARE_INSTRUCTIONS}"
    )


def self_check_prompt(question: str, attempt: str) -> str:
    """The SFT input of a comparison record: the question and the model's own attempt, no reference."""
    return f"{question}\n\nAttempt:\n{attempt}\n\n{SELF_CHECK_INSTRUCTIONS}"


_FIRST_WRONG = re.compile(
    r"^[ \t]*First wrong step[ \t]*:[ \t]*(?:step[ \t]*)?(?P<step>\d+|none)\b[^\n]*$", re.IGNORECASE | re.MULTILINE
)
_CORRECTED = re.compile(r"^[ \t]*Corrected solution[ \t]*:[ \t]*\n?", re.IGNORECASE | re.MULTILINE)


def parse_comparison(text: str) -> Comparison | None:
    """Split a reply into analysis, first wrong step and corrected solution; None if malformed."""
    corrected = list(_CORRECTED.finditer(text))
    if not corrected:
        return None
    head, solution = text[: corrected[-1].start()], text[corrected[-1].end() :].strip()
    if not solution:
        return None
    steps = list(_FIRST_WRONG.finditer(head))
    step = None
    if steps:
        raw = steps[-1].group("step").lower()
        step = None if raw == "none" else int(raw)
        analysis = head[: steps[-1].start()].strip()
    else:
        analysis = head.strip()
    return Comparison(analysis=analysis, first_wrong_step=step, corrected=solution)


def format_comparison(c: Comparison) -> str:
    """The canonical SFT target of a comparison record."""
    parts = [c.analysis] if c.analysis else []
    parts.append(f"First wrong step: {c.first_wrong_step if c.first_wrong_step is not None else 'none'}")
    parts.append(f"Corrected solution:\n{c.corrected}")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# local model


class ModelComparer:
    """A local causal (V)LM as comparer: the policy itself or another checkpoint."""

    def __init__(
        self,
        loaded: LoadedModel,
        name: str,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        seed: int = 0,
        batch_size: int = 8,
    ):
        self.loaded, self.name = loaded, name
        self.max_new_tokens, self.temperature, self.seed, self.batch_size = (
            max_new_tokens,
            temperature,
            seed,
            batch_size,
        )

    def compare(self, requests: Sequence[ComparisonRequest]) -> list[str | ComparerFailed]:
        from egt.math.generate import generate_texts, render_prompts

        out: list[str | ComparerFailed] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            prompts = render_prompts(
                self.loaded,
                [[{"role": "user", "content": comparison_prompt(r.question, r.reference, r.attempt)}] for r in batch],
            )
            texts = generate_texts(
                self.loaded,
                prompts,
                n=1,
                temperature=self.temperature,
                max_new_tokens=self.max_new_tokens,
                seed=self.seed + start,
            )
            out += [t[0] for t in texts]
        return out


# --------------------------------------------------------------------------------------------
# OpenAI-compatible endpoint


class OpenAIComparer:
    """An OpenAI-compatible chat endpoint (``{base_url}/chat/completions``) through :class:`egt.clients.ChatClient`.

    ``client_options`` are :class:`~egt.clients.ChatClient`'s: each attempt gets ``timeout``
    seconds; a timeout, a connection error, 429 or a 5xx is retried up to ``max_retries`` times
    with the ``openai`` package's backoff (0.5 s doubling to 8 s, or the server's ``Retry-After``);
    ``concurrency`` requests run at once. A request still failing comes back as :class:`ComparerFailed`."""

    def __init__(self, base_url: str, model: str, **client_options):
        from egt.clients import ChatClient

        self.client = ChatClient(base_url, model, **client_options)
        self.name = self.client.name

    @staticmethod
    def messages(request: ComparisonRequest) -> list[dict]:
        return [{"role": "user", "content": comparison_prompt(request.question, request.reference, request.attempt)}]

    @staticmethod
    def outcome(reply) -> str | ComparerFailed:
        from egt.clients import ChatFailed

        return ComparerFailed(reply.error) if isinstance(reply, ChatFailed) else reply.text

    def compare_one(self, request: ComparisonRequest) -> str | ComparerFailed:
        return self.outcome(self.client.complete(self.messages(request)))

    def compare(self, requests: Sequence[ComparisonRequest]) -> list[str | ComparerFailed]:
        replies = dict(self.client.map(range(len(requests)), lambda i: self.messages(requests[i])))
        return [self.outcome(replies[i]) for i in range(len(requests))]


# --------------------------------------------------------------------------------------------
# scripted stand-in for the CPU lab

_CALCULATOR = re.compile(r"<<[^<>]*>>")
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
MATCH_MODES = ("numbers", "text")


def solution_steps(solution: str) -> list[str]:
    """The working lines of a solution: non-empty lines before the final-answer line."""
    lines = [ln.strip() for ln in solution.strip().splitlines() if ln.strip()]
    return [ln for ln in lines if not re.match(r"^(####|A:|Answer:)", ln)]


def step_numbers(step: str) -> list[str]:
    """The numbers a step writes, in order (calculator annotations and thousands commas dropped)."""
    return [clean_answer(n) for n in _NUMBER.findall(_CALCULATOR.sub("", step))]


def steps_match(step: str, reference_step: str, match: str = "numbers") -> bool:
    if match == "text":
        return " ".join(step.split()) == " ".join(reference_step.split())
    numbers = step_numbers(step)
    return bool(numbers) and numbers == step_numbers(reference_step)


class ReferenceComparer:
    """Scripted comparer (lab stand-in for a strong comparer model): line-by-line step matching."""

    name = "reference-script"

    def __init__(self, match: str = "numbers"):
        if match not in MATCH_MODES:
            raise ValueError(f"match must be one of {MATCH_MODES}, got {match!r}")
        self.match = match

    def compare(self, requests: Sequence[ComparisonRequest]) -> list[str | ComparerFailed]:
        return [self.compare_one(r) for r in requests]

    def compare_one(self, request: ComparisonRequest) -> str:
        from egt.math.answers import reference_answer

        attempt, reference = solution_steps(request.attempt), solution_steps(request.reference)
        lines, first_wrong = [], None
        for i, step in enumerate(attempt, start=1):
            ref = reference[i - 1] if i <= len(reference) else None
            if ref is not None and steps_match(step, ref, self.match):
                lines.append(f"Step {i}: {step} — agrees with the reference.")
                continue
            why = f"the reference has: {ref}" if ref else "the reference has no such step"
            lines.append(f"Step {i}: {step} — wrong: {why}")
            first_wrong = i
            break
        if first_wrong is None:  # every step agreed: the error is missing steps or the final answer
            first_wrong = len(attempt) + 1
            lines.append(f"Step {first_wrong}: the final answer does not follow the reference's remaining steps.")
        corrected = attempt[: first_wrong - 1] + reference[first_wrong - 1 :]
        corrected.append(f"#### {reference_answer(request.reference)}")
        return format_comparison(Comparison("\n".join(lines), first_wrong, "\n".join(corrected)))
