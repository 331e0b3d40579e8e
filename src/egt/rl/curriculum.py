"""Entropy curriculum for RL of the judge: a sampler over the curation manifest (EGT arXiv 2602.01884).

See docs/methods.md §3. The manifest is written and read by :mod:`egt.curation.manifest` (one line
per pool item: ``{"id", "scores": {...}, "kept", "rank", "selector", "by", "reason"}``). Only
``kept`` items are trained on, in the curation order (:func:`egt.curation.manifest.kept_order_keys`,
i.e. :func:`egt.curation.selectors.entropy_key`): items with format failures after every item
without, then ``scores[by]`` ascending with a missing entropy last, the vote entropy's ties broken
by sentence entropy, then the id. ``by`` defaults to the manifest's own ``by`` field (else
``answer``). This module only orders the rows it is given:

- ``sorted``  low → high entropy, the same order every epoch;
- ``staged``  the sorted order cut into S quantile stages of (nearly) equal size, shuffled inside each
  stage with a seed derived from ``(seed, epoch, stage)`` — EGT's S-stage curriculum;
- ``reverse`` high → low entropy (missing entropies first): the anti-curriculum, EGT's ablation;
- ``off``     TRL's default: a uniform permutation per epoch, bit-identical to ``RepeatSampler``'s
  (``torch.randperm`` from a generator seeded with ``seed``, advanced once per epoch).

When the step budget covers the subset more than once, ``repeat`` (``--curriculum_repeat``) says what
the passes after the first are (the first pass is always the curriculum; ``off`` has no curriculum
to repeat):

- ``hold`` (default) the curriculum's end state held: the whole subset, a fresh uniform permutation
  per pass (``numpy.random.default_rng([seed, epoch])``). Why the default: after one pass the easiest
  items are those the judge already gets right, whose rollouts agree — groups with no GRPO signal,
  the starvation this option exists for; replaying them first spends the next steps on them again.
  Curriculum learning's pacing functions likewise stay on the full set once they reach it
  (Hacohen & Weinshall 2019, arXiv 1904.03626).
- ``restart`` every pass replays the curriculum from its start (``sorted``: easiest first again;
  ``staged`` reshuffles inside its stages per pass).
- ``shuffle`` every pass replays the curriculum's progression but shuffled inside its S quantile
  stages (``curriculum_stages``), with a generator seeded by ``(seed, epoch, stage)``: easy → hard
  again, not in the same sequence (``staged`` is this already, so there it equals ``restart``).

:class:`CurriculumSampler` is TRL's ``RepeatSampler`` with only the index order replaced: each prompt
is still repeated ``num_generations`` times (mini-repeat), each generation batch ``repeat_count``
times, and an incomplete last batch is dropped (so with a curriculum the highest-entropy remainder
of the pool is the part dropped). The order is a pure function of ``(scores, mode, stages, seed,
epoch)``: every rank computes the same order without communicating, and a resumed run (which
starts at its epoch through ``set_epoch``) sees the same order as the uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from trl.trainer.utils import RepeatSampler

from egt.errors import EgtError

CURRICULA = ("sorted", "staged", "reverse", "off")
REPEATS = ("hold", "restart", "shuffle")


@dataclass(frozen=True)
class Curriculum:
    """What the trainer's sampler needs: per-row scores and ids (dataset order) and how to order them.

    A score of None (or NaN) sorts last; ``ids`` break ties (row order when empty); ``repeat`` is what
    the passes after the first are (module docstring).
    """

    mode: str = "sorted"
    scores: Sequence[float | None] = field(default_factory=list)
    stages: int = 4
    ids: Sequence[str] = field(default_factory=list)
    repeat: str = "hold"

    def __post_init__(self):
        if self.mode not in CURRICULA:
            raise EgtError(f"field 'curriculum': unknown curriculum {self.mode!r} ({' | '.join(CURRICULA)})")
        if self.repeat not in REPEATS:
            raise EgtError(f"field 'curriculum_repeat': unknown value {self.repeat!r} ({' | '.join(REPEATS)})")
        if self.mode == "staged" and self.stages < 1:
            raise EgtError(f"field 'curriculum_stages': must be >= 1, got {self.stages}")


# --------------------------------------------------------------------------------------------
# Order
# --------------------------------------------------------------------------------------------


def stage_bounds(n: int, stages: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each of ``stages`` quantile stages over ``n`` sorted items (sizes differ by ≤ 1)."""
    stages = max(1, min(stages, n)) if n else 1
    edges = [round(k * n / stages) for k in range(stages + 1)]
    return list(zip(edges[:-1], edges[1:]))


def curriculum_order(
    scores: Sequence[float | None],
    mode: str,
    stages: int = 4,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    ids: Sequence[str] = (),
    repeat: str = "hold",
) -> list[int]:
    """The visiting order of rows ``0 … n−1`` for one epoch (a permutation).

    ``sorted``: ascending score, None / NaN last, ties by ``ids`` (if given) then row.
    ``reverse``: exactly the ``sorted`` order reversed (highest entropy first).
    ``staged``: that order cut by :func:`stage_bounds`,
    each stage permuted by ``numpy.random.default_rng([seed, epoch, stage])``. ``off``: TRL's
    ``RepeatSampler`` order for this epoch (``range(n)`` when ``shuffle`` is False).
    Epochs after the first follow ``repeat`` (module docstring): ``hold`` permutes the sorted order by
    ``numpy.random.default_rng([seed, epoch])``; ``shuffle`` orders as ``staged`` (``reverse``: the
    reversed order cut and shuffled the same way); ``restart`` as epoch 0.
    """
    n = len(scores)
    if mode == "off":
        if not shuffle:
            return list(range(n))
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epoch):  # RepeatSampler's generator has drawn one permutation per earlier epoch
            torch.randperm(n, generator=generator)
        return torch.randperm(n, generator=generator).tolist()

    def key(i: int):
        if isinstance(scores[i], tuple):  # a curation sort key (egt.curation.manifest.kept_order_keys): total
            return (scores[i], i)
        missing = scores[i] is None or math.isnan(scores[i])
        return (missing, 0.0 if missing else scores[i], ids[i] if ids else "", i)

    if mode not in CURRICULA:
        raise EgtError(f"unknown curriculum {mode!r} ({' | '.join(CURRICULA)})")
    if repeat not in REPEATS:
        raise EgtError(f"unknown curriculum repeat {repeat!r} ({' | '.join(REPEATS)})")
    ranked = sorted(range(n), key=key)
    if epoch > 0 and repeat == "hold":
        return [ranked[j] for j in np.random.default_rng([seed, epoch]).permutation(n)]
    if mode == "reverse":
        ranked = ranked[::-1]
    if mode == "staged" or (epoch > 0 and repeat == "shuffle"):
        order = []
        for stage, (start, end) in enumerate(stage_bounds(n, stages)):
            block = ranked[start:end]
            perm = np.random.default_rng([seed, epoch, stage]).permutation(len(block))
            order.extend(block[j] for j in perm)
        return order
    return ranked


class CurriculumSampler(RepeatSampler):
    """TRL's ``RepeatSampler`` with the index order replaced by :func:`curriculum_order`.

    ``on_order(epoch, order)`` (optional) is called each time an epoch's order is computed, e.g.
    to write it to a file. The trainer (through accelerate) calls :meth:`set_epoch` before each
    epoch, including the one a resumed run starts in.
    """

    def __init__(
        self,
        data_source,
        curriculum: Curriculum,
        mini_repeat_count: int,
        batch_size: int = 1,
        repeat_count: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        on_order: Callable[[int, list[int]], None] | None = None,
    ):
        super().__init__(data_source, mini_repeat_count, batch_size, repeat_count, shuffle=False, seed=seed)
        if curriculum.mode != "off" and len(curriculum.scores) != self.num_samples:
            raise EgtError(f"curriculum has {len(curriculum.scores)} scores for {self.num_samples} training rows")
        self.curriculum, self.curriculum_seed, self.curriculum_shuffle = curriculum, seed, shuffle
        self.on_order = on_order
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> list[int]:
        epoch = self.epoch if epoch is None else epoch
        scores = self.curriculum.scores if self.curriculum.mode != "off" else [0.0] * self.num_samples
        return curriculum_order(
            scores,
            self.curriculum.mode,
            self.curriculum.stages,
            self.curriculum_seed,
            epoch,
            self.curriculum_shuffle,
            self.curriculum.ids,
            self.curriculum.repeat,
        )

    def __iter__(self):
        order = self.order()
        if self.on_order is not None:
            self.on_order(self.epoch, order)
        for position in super().__iter__():  # RepeatSampler over range(n), unshuffled
            yield order[position]


class PromptStream:
    """The sampler's prompts as one stream of generation batches, for dynamic sampling's refill.

    Pass e is :func:`curriculum_order` for epoch e (the curriculum's, with its ``repeat``; TRL's
    permutation when ``curriculum`` is None), cut into batches of ``batch_size`` prompts with an
    incomplete last batch dropped — the distinct batches a :class:`CurriculumSampler` (or TRL's
    ``RepeatSampler``) yields, one after the other, passes concatenated. ``cursor`` counts the
    batches taken; it is all the state there is (a checkpoint stores it), and every rank computes the
    same stream.
    """

    def __init__(self, curriculum: Curriculum | None, n_rows: int, batch_size: int, seed: int, shuffle: bool = True):
        if curriculum is None:
            curriculum = Curriculum("off")
        if curriculum.mode != "off" and len(curriculum.scores) != n_rows:
            raise EgtError(f"curriculum has {len(curriculum.scores)} scores for {n_rows} training rows")
        self.curriculum, self.n_rows, self.batch_size = curriculum, n_rows, batch_size
        self.seed, self.shuffle = seed, shuffle
        self.batches_per_pass = n_rows // batch_size
        if self.batches_per_pass < 1:
            raise EgtError(f"{n_rows} training rows hold no full generation batch of {batch_size} prompts")
        self.cursor = 0
        self._orders: dict[int, list[int]] = {}

    def order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            c = self.curriculum
            scores = c.scores if c.mode != "off" else [0.0] * self.n_rows
            self._orders = {
                epoch: curriculum_order(scores, c.mode, c.stages, self.seed, epoch, self.shuffle, c.ids, c.repeat)
            }
        return self._orders[epoch]

    def position(self, cursor: int | None = None) -> tuple[int, int]:
        """``(epoch, prompts of that pass consumed)`` after ``cursor`` batches (default: now)."""
        cursor = self.cursor if cursor is None else cursor
        if cursor == 0:
            return 0, 0
        epoch, within = divmod(cursor - 1, self.batches_per_pass)
        return epoch, (within + 1) * self.batch_size

    def take(self) -> list[int]:
        """The next batch's row indices (``batch_size`` distinct prompts); advances ``cursor``."""
        epoch, within = divmod(self.cursor, self.batches_per_pass)
        start = within * self.batch_size
        self.cursor += 1
        return self.order(epoch)[start : start + self.batch_size]
