"""Voting@k for generative judges (R1-Reward §4.3): the majority over k sampled verdicts.

:class:`VotingJudge` wraps a :class:`egt.judge.generative.GenerativeJudge` and draws the k samples
of a request in one ``generate`` call (``num_return_sequences=k``), at a temperature above 0.
Unparsable samples abstain; the majority of the valid votes wins; an even split is a tie and no
valid vote at all is a parse failure. The judgement keeps every vote (presented order) and the
text of the first sample that agrees with the majority.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from egt.errors import EgtError
from egt.judge.base import OK, PARSE_FAILURE, TIE, Judge, Judgement, JudgeRequest
from egt.judge.parse import parse_verdict

DEFAULT_VOTE_TEMPERATURE = 1.0  # used when voting is asked for with greedy decoding (temperature 0)


@dataclass
class VotedJudgement(Judgement):
    votes: list[int | None] = field(default_factory=list)  # each sample's choice (presented order); None = unparsable


def majority(votes: Sequence[int | None], texts: Sequence[str]) -> VotedJudgement:
    valid = [v for v in votes if v is not None]
    if not valid:
        return VotedJudgement(choice=None, status=PARSE_FAILURE, text=texts[0] if texts else None, votes=list(votes))
    ones = sum(valid)
    zeros = len(valid) - ones
    if ones == zeros:
        return VotedJudgement(choice=None, status=TIE, text=texts[votes.index(valid[0])], votes=list(votes))
    winner = int(ones > zeros)
    return VotedJudgement(choice=winner, status=OK, text=texts[list(votes).index(winner)], votes=list(votes))


class VotingJudge:
    """Majority over ``k`` samples of a generative judge."""

    def __init__(self, inner, k: int, seed: int = 0):
        from egt.judge.generative import GenerativeJudge

        if not isinstance(inner, GenerativeJudge):
            raise EgtError(f"--votes: voting@k needs a generative judge, not {getattr(inner, 'name', inner)!r}")
        if k < 1:
            raise EgtError(f"--votes: must be ≥ 1, got {k}")
        self.inner = inner
        self.k = k
        self.seed = seed
        self.settings = inner.settings
        if self.settings.temperature <= 0:
            self.settings = dataclasses.replace(self.settings, temperature=DEFAULT_VOTE_TEMPERATURE)
        self.name = f"{inner.name}@vote{k}"
        self.reads_images = inner.reads_images
        self._calls = 0

    @property
    def temperature(self) -> float:
        return self.settings.temperature

    @torch.no_grad()
    def sample(self, requests: Sequence[JudgeRequest]) -> list[list[str]]:
        """``k`` completions per request, grouped per request."""
        from egt.judge.generative import encode_batch, generation_kwargs

        loaded = self.inner.loaded
        enc = encode_batch(loaded, requests, self.inner.style)
        out = loaded.model.generate(**enc, **generation_kwargs(loaded, self.settings, num_return_sequences=self.k))
        texts = loaded.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        # generate repeats each input k times in a row: request i owns texts[i·k : (i+1)·k]
        return [texts[i * self.k : (i + 1) * self.k] for i in range(len(requests))]

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        torch.manual_seed(self.seed + self._calls)  # reproducible for a given seed and batching
        self._calls += 1
        out: list[Judgement] = []
        for start in range(0, len(requests), self.inner.batch_size):
            for texts in self.sample(requests[start : start + self.inner.batch_size]):
                votes = [v.choice if (v := parse_verdict(t)) is not None else None for t in texts]
                out.append(majority(votes, texts))
        return out


def with_votes(judge: Judge, k: int, seed: int = 0) -> Judge:
    """``judge`` itself for k = 1, else a :class:`VotingJudge` around it."""
    return judge if k == 1 else VotingJudge(judge, k, seed=seed)
