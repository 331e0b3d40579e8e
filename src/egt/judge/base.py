"""What every judge is: something that, shown two responses in some order, picks one.

A judge sees :class:`JudgeRequest` s — a pair, whether its responses are shown swapped, and the
opened images — and returns one :class:`Judgement` per request, *in the presented order*.
Evaluation maps the choice back to the stored responses. Generative judges, scalar reward
models, ensembles and the sanity baselines (``random``, ``first``, ``longer``) all fit this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from egt.data.presentation import seeded_coin
from egt.records import PreferencePair

OK, TIE, PARSE_FAILURE = "ok", "tie", "parse_failure"


@dataclass
class JudgeRequest:
    pair: PreferencePair
    swapped: bool
    images: list[Any] = field(default_factory=list)  # PIL images, empty when the judge reads none

    @property
    def shown(self) -> tuple[str, str]:
        """The responses in presented order (Response 1, Response 2)."""
        a, b = self.pair.responses
        return (b, a) if self.swapped else (a, b)


@dataclass
class Judgement:
    """One verdict. ``choice`` is 0 (Response 1) or 1 (Response 2) as presented; None unless ok."""

    choice: int | None
    status: str = OK
    text: str | None = None
    scores: tuple[float, float] | None = None  # scalar judges: the two rewards, presented order


@runtime_checkable
class Judge(Protocol):
    name: str
    reads_images: bool

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]: ...


class RandomJudge:
    """Picks a response uniformly at random, seeded per item and order: the 50% floor."""

    name = "random"
    reads_images = False

    def __init__(self, seed: int = 0):
        self.seed = seed

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        return [Judgement(choice=int(seeded_coin(self.seed, r.pair.id, r.swapped))) for r in requests]


class FirstJudge:
    """Always prefers the response shown first: exposes benchmarks that store the winner first."""

    name = "first"
    reads_images = False

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        return [Judgement(choice=0) for _ in requests]


class LongerJudge:
    """Prefers the response with more characters; equal length is a tie (the length-bias floor)."""

    name = "longer"
    reads_images = False

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        out = []
        for r in requests:
            a, b = (len(s) for s in r.shown)
            out.append(Judgement(choice=None, status=TIE) if a == b else Judgement(choice=0 if a > b else 1))
        return out


BASELINES = {"random": RandomJudge, "first": FirstJudge, "longer": LongerJudge}


def make_baseline(name: str, seed: int = 0) -> Judge:
    return RandomJudge(seed) if name == "random" else BASELINES[name]()


def original_choice(choice: int | None, swapped: bool) -> int | None:
    """Map a presented-order choice back to the stored response index."""
    if choice is None:
        return None
    return 1 - choice if swapped else choice
