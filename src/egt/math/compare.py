"""Comparers for self-compare (docs/methods.md §7): compare a wrong attempt with the reference step by step,
name the first wrong step, write a corrected solution.

Three real comparers and one stand-in, all behind one call, ``compare(requests) -> list[str |
ComparerFailed]`` (one raw reply or one failure per request, never an exception for a bad reply):

- :class:`ModelComparer` — a local model (the policy itself = "self", or another checkpoint),
  greedy by default, prompted with :func:`comparison_prompt`.
- :class:`OpenAIComparer` — any OpenAI-compatible ``/chat/completions`` endpoint over plain
  ``urllib``: a timeout per request, retries with exponential backoff on timeouts, connection
  errors, 429 and 5xx; after the last retry the request is *recorded as failed* and the run goes
  on (a rerun retries it). The API key is read from an environment variable, never stored.
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

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
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

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIComparer:
    """An OpenAI-compatible chat endpoint (``{base_url}/chat/completions``) over ``urllib``.

    Each request gets ``timeout`` seconds; a timeout, a connection error, 429 or a 5xx is retried
    up to ``retries`` times after ``backoff * 2**attempt`` seconds (capped at ``max_backoff``).
    Other HTTP errors (400, 401, …) fail at once. Failures come back as :class:`ComparerFailed`.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        url = base_url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.name = f"openai:{model}"
        self.model, self.api_key_env, self.timeout = model, api_key_env, timeout
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.max_tokens, self.temperature, self.sleep = max_tokens, temperature, sleep

    def _post(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            payload = json.loads(response.read().decode("utf-8"))
        return payload["choices"][0]["message"]["content"]

    def compare_one(self, request: ComparisonRequest) -> str | ComparerFailed:
        body = json.dumps(
            {
                "model": self.model,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "messages": [
                    {"role": "user", "content": comparison_prompt(request.question, request.reference, request.attempt)}
                ],
            }
        ).encode("utf-8")
        last_error = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            try:
                return self._post(body)
            except urllib.error.HTTPError as e:
                last_error = f"HTTP {e.code}"
                if e.code not in RETRYABLE_STATUS:
                    break
            except TimeoutError:
                last_error = f"timed out after {self.timeout:g}s"
            except urllib.error.URLError as e:
                last_error = (
                    f"timed out after {self.timeout:g}s"
                    if isinstance(e.reason, TimeoutError)
                    else f"connection error ({e.reason})"
                )
            except (ValueError, KeyError, IndexError, TypeError) as e:  # a reply that is not a chat completion
                last_error = f"malformed reply ({type(e).__name__})"
            except (OSError, http.client.HTTPException) as e:
                last_error = f"connection error ({e})"
        return ComparerFailed(f"{self.url}: {last_error} ({attempt + 1} attempts)")

    def compare(self, requests: Sequence[ComparisonRequest]) -> list[str | ComparerFailed]:
        return [self.compare_one(r) for r in requests]


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
