"""Run a judge over pairs in a chosen presentation order and keep every prediction.

Orders (docs/methods.md §8; :mod:`egt.data.presentation`): ``stored`` shows responses as stored —
never enough on its own for a benchmark that stores the winner first; ``random`` swaps each item by
a seeded coin; ``both`` judges every item in both orders (2 predictions per item).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from egt.data.presentation import presentations
from egt.judge.base import Judge, JudgeRequest, original_choice
from egt.judge.parse import lenient_verdict
from egt.records import PreferencePair, open_images
from egt.report import progress


@dataclass
class Prediction:
    """One judgement of one item in one order, mapped back to the stored responses."""

    id: str
    swapped: bool
    status: str  # ok | tie | parse_failure
    predicted: int | None  # stored index of the preferred response
    preferred: int  # the label
    category: str | None = None
    text: str | None = None
    lenient_predicted: int | None = None  # fallback parse of a failed output, reported separately
    scores: tuple[float, float] | None = None  # stored order
    votes: list[int | None] | None = None  # voting@k: each sample's choice, stored index (None = unparsable)

    @property
    def correct(self) -> bool:
        return self.predicted == self.preferred

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def build_requests(
    pairs: Sequence[PreferencePair], order: str, seed: int, images_root: str | Path | None, load_images: bool
) -> list[JudgeRequest]:
    requests = []
    cache: dict[int, list] = {}
    for i, swapped in presentations(pairs, order, seed):
        if load_images and i not in cache:
            cache[i] = open_images(pairs[i], images_root)
        requests.append(JudgeRequest(pair=pairs[i], swapped=swapped, images=cache.get(i, [])))
    return requests


def run_judge(
    judge: Judge, requests: Sequence[JudgeRequest], batch_size: int = 32, desc: str = "judging"
) -> list[Prediction]:
    """Judge all requests in batches (with a progress bar) and map verdicts back."""
    predictions: list[Prediction] = []
    bar = progress(range(0, len(requests), batch_size), desc=desc, unit="batch")
    for start in bar:
        batch = requests[start : start + batch_size]
        for req, j in zip(batch, judge.judge(batch), strict=True):
            scores = None
            status, choice = j.status, j.choice
            if j.scores is not None:
                scores = (j.scores[1], j.scores[0]) if req.swapped else tuple(j.scores)
                if status == "ok" and j.scores[0] == j.scores[1]:  # equal rewards are a tie, whatever the choice
                    status, choice = "tie", None
            lenient = None
            if status == "parse_failure" and j.text is not None:
                lenient = original_choice(lenient_verdict(j.text), req.swapped)
            votes = getattr(j, "votes", None)
            predictions.append(
                Prediction(
                    id=req.pair.id,
                    swapped=req.swapped,
                    status=status,
                    predicted=original_choice(choice, req.swapped),
                    preferred=req.pair.preferred,
                    category=req.pair.category,
                    text=j.text,
                    lenient_predicted=lenient,
                    scores=scores,
                    votes=[original_choice(v, req.swapped) for v in votes] if votes else None,
                )
            )
    return predictions


def evaluate(
    judge: Judge,
    pairs: Sequence[PreferencePair],
    *,
    order: str = "both",
    seed: int = 0,
    images_root: str | Path | None = None,
    batch_size: int = 32,
    tie_policy: str = "wrong",
) -> tuple[dict, list[Prediction]]:
    """Evaluate ``judge`` on ``pairs``; returns the report dict and the per-item predictions."""
    from egt.evaluation.metrics import aggregate

    start = time.perf_counter()
    requests = build_requests(pairs, order, seed, images_root, load_images=judge.reads_images)
    predictions = run_judge(judge, requests, batch_size=batch_size)
    report = {
        "judge": judge.name,
        "n_items": len(pairs),
        "order": order,
        "seed": seed,
        "tie_policy": tie_policy,
        **aggregate(predictions, tie_policy=tie_policy),
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    return report, predictions
