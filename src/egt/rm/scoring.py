"""Batched scoring with a reward model, and the reward model as a judge for the evaluation harness.

``score_items`` runs the model over :class:`~egt.rm.collate.ScoreItem` s in batches (one forward
per batch, no gradients). :class:`RewardModelJudge` scores both shown responses of each request
and prefers the higher reward; equal rewards are a tie (``status="tie"``), as the judge protocol
asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from egt.judge.base import OK, TIE, Judgement, JudgeRequest
from egt.rm.collate import ScoreItem, encode_items
from egt.rm.model import RewardModel
from egt.rm.prefix import group_slots, shared_prefix_rewards

# Sharing has costs of its own (the packed layout's 4-D mask and row bookkeeping; under flash
# attention, a second backbone pass), so a batch that would save fewer token positions than this
# runs as it is. On the tiny model on 2 CPU cores (bench/rm_batching.py) one lab pair (~40 shared
# tokens) gains nothing measurable and 16 pairs (~620) gain ~35%; a 7B VLM's image alone is
# hundreds to thousands of tokens.
MIN_SHARED_TOKENS = 256


@torch.inference_mode()
def score_items(
    model: RewardModel,
    processor: Any,
    items: Sequence[ScoreItem],
    *,
    batch_size: int = 16,
    max_length: int | None = None,
    share_prefix: bool = True,
    min_shared_tokens: int = MIN_SHARED_TOKENS,
) -> list[float]:
    """Rewards of ``items`` in order, ``batch_size`` responses per forward.

    Batches are cut from the items sorted by length (:func:`length_order`), so little of a forward
    is padding. With ``share_prefix``, items of one batch with the same question and images (the
    responses of a pair, the completions of a prompt) run their common prefix through the backbone
    once (:mod:`egt.rm.prefix`), when that saves at least ``min_shared_tokens`` token positions
    (0: whenever anything is shared). Rewards do not depend on the batching or the sharing (up to
    float rounding).
    """
    was_training = model.training
    model.eval()
    order = length_order(items)
    rewards = [0.0] * len(items)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = [items[i] for i in indices]
        enc = encode_items(processor, batch, reads_images=model.is_vision, max_length=max_length).to(model.device)
        if share_prefix:  # the one switch: shared_prefix_rewards falls back to model(**enc) by itself
            slot = group_slots([prompt_key(it) for it in batch])
            scores = shared_prefix_rewards(model, **enc, slot=slot, min_saved_tokens=min_shared_tokens)
        else:
            scores = model(**enc)
        for i, reward in zip(indices, scores.tolist(), strict=True):
            rewards[i] = reward
    model.train(was_training)
    return rewards


def prompt_key(item: ScoreItem) -> tuple:
    """Items with equal keys share their prompt: the same question and the same image objects."""
    return (item.question, *map(id, item.images))


def length_order(items: Sequence[ScoreItem]) -> list[int]:
    """Indices of ``items`` from shortest to longest text; items that share their image objects (the
    responses of a pair) stay together, ranked by the longest of them, so a batch encodes the image once."""
    group_of: dict[tuple[int, ...], int] = {}
    groups = [group_of.setdefault(tuple(map(id, it.images)), i) if it.images else i for i, it in enumerate(items)]
    longest: dict[int, int] = {}
    for g, it in zip(groups, items):
        longest[g] = max(longest.get(g, 0), len(it.question) + len(it.response))
    return sorted(range(len(items)), key=lambda i: (longest[groups[i]], groups[i], i))


def request_items(requests: Sequence[JudgeRequest]) -> list[ScoreItem]:
    """Two items per request, the responses in presented order."""
    return [ScoreItem(r.pair.question, response, r.images) for r in requests for response in r.shown]


def judgements_from_scores(scores: Sequence[float]) -> list[Judgement]:
    """Consecutive (Response 1, Response 2) rewards → one judgement per request."""
    out = []
    for r1, r2 in zip(scores[0::2], scores[1::2], strict=True):
        if r1 == r2:
            out.append(Judgement(choice=None, status=TIE, scores=(r1, r2)))
        else:
            out.append(Judgement(choice=0 if r1 > r2 else 1, status=OK, scores=(r1, r2)))
    return out


class RewardModelJudge:
    """A scalar reward model as a judge: higher reward wins, equal rewards tie."""

    def __init__(
        self,
        model: RewardModel,
        processor: Any,
        name: str = "reward-model",
        batch_size: int = 16,
        max_length: int | None = None,
        path: str | None = None,
    ):
        self.path = path  # the checkpoint folder, when loaded from one
        self.model = model
        self.processor = processor
        self.name = name
        self.batch_size = batch_size
        self.max_length = max_length
        self.reads_images = model.is_vision

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, batch_size: int = 16, dtype: str = "auto", device: str = "auto"
    ) -> RewardModelJudge:
        from egt.rm.checkpoint import read_reward_meta

        model, processor = RewardModel.from_pretrained(path, dtype=dtype, device=device)
        max_length = read_reward_meta(path).get("max_length")
        return cls(model, processor, name=Path(path).name, batch_size=batch_size, max_length=max_length, path=str(path))

    def score(self, items: Sequence[ScoreItem]) -> list[float]:
        return score_items(self.model, self.processor, items, batch_size=self.batch_size, max_length=self.max_length)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        return judgements_from_scores(self.score(request_items(requests)))
