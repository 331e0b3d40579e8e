"""The judge's RL reward as TRL reward functions (R1-Reward arXiv 2505.02835 §3.2; EGT; docs/methods.md §4).

``R = w_f · format + accuracy · (1 + w_l · logic)`` with R1-Reward's ``w_f = 0.5``, ``w_l = 0.5``:

- ``format``   ∈ {0, 1}: exactly one well-formed ``<think>…</think><answer>1|2</answer>``, nothing
  outside (:func:`egt.judge.parse.parse_verdict`, no fallback).
- ``accuracy`` ∈ {0, 1}: the verdict, mapped back to the stored order when the item was shown
  swapped, equals the label.
- ``logic``    ∈ {−1, 0, +1}: does the conclusion of the reasoning (its last sentences) name the same
  response as the verdict (+1), the other one or both (−1), or cannot it be told (0).

TRL adds its reward functions linearly (``Σ_k weight_k · r_k``), so the product is split into three
functions with ``reward_weights = [w_f, 1, w_l]``::

    judge_format = f,  judge_accuracy = a,  judge_logic = a · l   ⇒   Σ = w_f·f + a·(1 + w_l·l) = R

and TRL logs each one's mean (``rewards/judge_format/mean`` …) beside the total (``reward``).
The ungated logic term is logged as ``rewards/logic_ungated/mean``.

Departure from R1-Reward: it asks an external LLM whether reasoning and answer agree; the default
here is the rule-based :class:`RuleLogicChecker`, and any ``(reasoning, verdict) -> -1|0|1``
callable replaces it (:class:`OpenAILogicChecker` calls an OpenAI-compatible endpoint).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from egt.errors import EgtError
from egt.judge.base import original_choice
from egt.judge.parse import parse_verdict

FORMAT_WEIGHT = 0.5  # R1-Reward / EGT
LOGIC_WEIGHT = 0.5  # R1-Reward / EGT
REWARD_NAMES = ("judge_format", "judge_accuracy", "judge_logic")  # TRL logs rewards/<name>/mean

LogicChecker = Callable[[str, int], int]  # (reasoning, verdict as presented: 0 | 1) -> -1 | 0 | +1


# --------------------------------------------------------------------------------------------
# Logic: which response does the conclusion name?
# --------------------------------------------------------------------------------------------

_ORDINALS = {"first": 1, "second": 2, "1": 1, "2": 2}
_NOUN = r"(?:response|answer|candidate|option|output|assistant)"
_MENTION = re.compile(rf"\b{_NOUN}\s*#?\s*([12])\b|\b(first|second)\s+{_NOUN}\b", re.IGNORECASE)
_POSITIVE = re.compile(
    r"\b(?:better|best|correct|accurate|preferred|preferable|superior|wins?|stronger|"
    r"more\s+(?:accurate|helpful|correct|faithful|consistent)|good|matches|consistent)\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"\b(?:worse|worst|wrong|incorrect|inaccurate|inferior|weaker|loses|fails?|false|mistaken|"
    r"hallucinat\w*|inconsistent|bad|less\s+(?:accurate|helpful|correct|faithful|consistent))\b",
    re.IGNORECASE,
)
_CHOOSE = re.compile(r"\b(?:prefer|choose|chose|pick|select|favou?r)\b", re.IGNORECASE)
_NEGATOR = re.compile(r"\b(?:not|never|no|neither|nor)\b|n't\b", re.IGNORECASE)
_UNDECIDED = re.compile(r"\b(?:both|equally|either|neither|tie|tied)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")

BOTH = "both"


def _polarity(window: str) -> int:
    """+1 if ``window`` praises, −1 if it criticises, 0 if neither; a negator flips the cue."""
    negative = _NEGATIVE.search(window)
    positive = _POSITIVE.search(window)
    if positive and negative:  # "correct … not wrong" style mixes: the first cue decides
        cue, sign = (positive, 1) if positive.start() < negative.start() else (negative, -1)
    elif positive:
        cue, sign = positive, 1
    elif negative:
        cue, sign = negative, -1
    else:
        return 0
    return -sign if _NEGATOR.search(window[: cue.start()]) else sign


def named_response(sentence: str) -> int | str | None:
    """The response (1 or 2) a sentence concludes for, :data:`BOTH` if it backs both or cannot
    separate them, ``None`` if it names no response.

    Each mention of a response gets a polarity from the words after it (up to the next mention)
    and a choice verb right before it ("prefer response 2 over …"). One mention: positive or
    neutral names it, negative names the other. Two responses: the one with the higher polarity,
    :data:`BOTH` when they tie or the sentence says "both", "equally", "either", "neither", "tie".
    """
    mentions = list(_MENTION.finditer(sentence))
    if not mentions:
        return None
    scores: dict[int, int] = {}
    for k, m in enumerate(mentions):
        index = _ORDINALS[(m.group(1) or m.group(2)).lower()]
        before = sentence[mentions[k - 1].end() if k else 0 : m.start()]
        after = sentence[m.end() : mentions[k + 1].start() if k + 1 < len(mentions) else len(sentence)]
        score = _polarity(after)
        chooser = _CHOOSE.search(before)
        if chooser and not _NEGATOR.search(before[: chooser.start()]):
            score = max(score, 1)
        scores[index] = max(scores[index], score) if index in scores else score
    if len(scores) == 1:
        ((index, score),) = scores.items()
        return 3 - index if score < 0 else index
    if scores[1] == scores[2] or _UNDECIDED.search(sentence):
        return BOTH
    return 1 if scores[1] > scores[2] else 2


class RuleLogicChecker:
    """Rule-based logic term: the last ``n_sentences`` sentences of the reasoning, read from the end;
    the first that names a response decides. Returns +1 (same as the verdict), −1 (the other or
    both), 0 (no sentence names a response)."""

    def __init__(self, n_sentences: int = 2):
        if n_sentences < 1:
            raise ValueError(f"n_sentences must be >= 1, got {n_sentences}")
        self.n_sentences = n_sentences

    def __call__(self, reasoning: str, verdict: int) -> int:
        sentences = [s for s in _SENTENCE.split(reasoning.strip()) if s.strip()]
        for sentence in reversed(sentences[-self.n_sentences :]):
            named = named_response(sentence)
            if named is None:
                continue
            return 1 if named == verdict + 1 else -1
        return 0


class OpenAILogicChecker:
    """Logic term from an OpenAI-compatible chat endpoint (R1-Reward's consistency judge), through
    the project's one client (:class:`egt.clients.ChatClient`: retries on 429 / 5xx / timeouts).

    ``base_url`` is the API root (``http://host:8000/v1``); the key is read from the environment
    variable ``api_key_env`` (may be unset for local servers). The reply's first ``+1``/``-1``/``0``
    is the answer; a failed request, an unreachable server or anything else is an error (``on_error="raise"``) or 0
    (``"zero"``). A wrong key or model name is always an error.
    """

    PROMPT = (
        "Below is the reasoning of a judge that compared Response 1 and Response 2, and the judge's final "
        "answer. Does the conclusion of the reasoning support the same response as the final answer? "
        "Reply with exactly one of: +1 (yes), -1 (it supports the other response, or both), 0 (cannot tell).\n\n"
        "Reasoning:\n{reasoning}\n\nFinal answer: Response {answer}"
    )

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 30.0,
        on_error: str = "raise",
        retries: int = 2,
    ):
        from egt.clients import ChatClient

        if on_error not in ("raise", "zero"):
            raise ValueError(f"on_error must be 'raise' or 'zero', got {on_error!r}")
        self.client = ChatClient(
            base_url, model, api_key_env=api_key_env, timeout=timeout, max_retries=retries, max_tokens=4
        )
        self.on_error = on_error

    def __call__(self, reasoning: str, verdict: int) -> int:
        from egt.clients import ChatFailed, ServerUnreachable

        prompt = self.PROMPT.format(reasoning=reasoning, answer=verdict + 1)
        try:
            reply = self.client.complete([{"role": "user", "content": prompt}])
        except ServerUnreachable as e:
            reply = ChatFailed(str(e))
        except EgtError as e:
            raise EgtError(f"logic checker: {e}") from None
        error = reply.error if isinstance(reply, ChatFailed) else None
        match = None if error else re.search(r"[+-]?1|0", reply.text)
        if match is not None:
            return int(match.group())
        if self.on_error == "zero":
            return 0
        raise EgtError(f"logic checker {self.client.base_url}: {error or f'unreadable reply {reply.text!r}'}")


def make_logic_checker(
    name: str, *, n_sentences: int = 2, endpoint: str = "", model: str = "", api_key_env: str = "OPENAI_API_KEY"
) -> LogicChecker | None:
    """``rule`` (default), ``none`` (logic term always 0) or ``openai`` (needs ``endpoint``, ``model``)."""
    if name == "rule":
        return RuleLogicChecker(n_sentences)
    if name == "none":
        return None
    if name == "openai":
        if not endpoint or not model:
            raise EgtError("logic_checker 'openai' needs logic_endpoint and logic_model")
        return OpenAILogicChecker(endpoint, model, api_key_env)
    raise EgtError(f"field 'logic_checker': unknown checker {name!r} (rule | none | openai)")


# --------------------------------------------------------------------------------------------
# The three terms, one completion at a time
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardTerms:
    format: float
    accuracy: float
    logic: float  # ungated; the reward uses accuracy · logic

    def total(self, format_weight: float = FORMAT_WEIGHT, logic_weight: float = LOGIC_WEIGHT) -> float:
        return format_weight * self.format + self.accuracy * (1.0 + logic_weight * self.logic)


def judge_reward_terms(
    text: str, preferred: int, swapped: bool, logic_checker: LogicChecker | None = None
) -> RewardTerms:
    """Format, accuracy and logic of one judge output. An unparsable output scores 0 on all three.

    ``preferred`` is the stored-order label (0 | 1); ``swapped`` says the responses were shown in
    the other order, so the verdict is mapped back before comparing.
    """
    verdict = parse_verdict(text)
    if verdict is None:
        return RewardTerms(0.0, 0.0, 0.0)
    accuracy = float(original_choice(verdict.choice, bool(swapped)) == int(preferred))
    logic = float(logic_checker(verdict.reasoning, verdict.choice)) if logic_checker is not None else 0.0
    if logic not in (-1.0, 0.0, 1.0):
        raise EgtError(f"logic checker returned {logic!r}; expected -1, 0 or +1")
    return RewardTerms(1.0, accuracy, logic)


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversational list whose last message is the reply."""
    if isinstance(completion, str):
        return completion
    content = completion[-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text") or "" for part in content if part.get("type") == "text")


def _columns(kwargs: dict, names: Sequence[str], func: str) -> list[list]:
    missing = [n for n in names if n not in kwargs]
    if missing:
        raise EgtError(f"reward {func!r} needs the dataset columns {list(names)}; missing {missing}")
    return [kwargs[n] for n in names]


def judge_reward_functions(
    format_weight: float = FORMAT_WEIGHT, logic_weight: float = LOGIC_WEIGHT, logic_checker: LogicChecker | None = None
) -> tuple[list[Callable], list[float]]:
    """TRL reward functions ``[judge_format, judge_accuracy, judge_logic]`` and their weights
    ``[w_f, 1, w_l]``; the weighted sum is R exactly (module docstring).

    Each is called by TRL as ``f(prompts, completions, **columns)`` and reads the dataset columns
    ``preferred`` (stored-order label) and ``swapped`` (presentation). The checker is called once
    per completion, in ``judge_logic``.
    """

    def terms(completions, kwargs, name, with_logic=False) -> list[RewardTerms]:
        preferred, swapped = _columns(kwargs, ("preferred", "swapped"), name)
        checker = logic_checker if with_logic else None
        return [
            judge_reward_terms(completion_text(c), p, s, checker)
            for c, p, s in zip(completions, preferred, swapped, strict=True)
        ]

    def judge_format(prompts, completions, **kwargs) -> list[float]:
        return [t.format for t in terms(completions, kwargs, "judge_format")]

    def judge_accuracy(prompts, completions, **kwargs) -> list[float]:
        return [t.accuracy for t in terms(completions, kwargs, "judge_accuracy")]

    def judge_logic(prompts, completions, **kwargs) -> list[float]:
        scored = terms(completions, kwargs, "judge_logic", with_logic=True)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None and scored:
            log_metric("rewards/logic_ungated/mean", sum(t.logic for t in scored) / len(scored))
        return [t.accuracy * t.logic for t in scored]

    return [judge_format, judge_accuracy, judge_logic], [float(format_weight), 1.0, float(logic_weight)]
