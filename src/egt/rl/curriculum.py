"""Entropy curriculum for RL of the judge: a sampler over the curation manifest (EGT arXiv 2602.01884; docs/methods.md §3).

The manifest (``egt curate``, :mod:`egt.curation.manifest`) has one line per pool item: ``{"id",
"scores": {"answer", "sentence", "mixed", "vote", "peak", "accuracy", "format_failures"}, "kept",
"rank", "selector", "by", "reason"}``. Only ``kept`` items are trained on, in the curation order
(:func:`kept_order_keys`, i.e. :func:`egt.curation.selectors.entropy_key`): items with format
failures after every item without, then ``scores[by]`` ascending with a missing entropy last, the
vote entropy's ties broken by sentence entropy, then the id. ``by`` defaults to the manifest's own
``by`` field (else ``answer``).

- ``sorted``  low → high entropy, the same order every epoch;
- ``staged``  the sorted order cut into S quantile stages of (nearly) equal size, shuffled inside each
  stage with a seed derived from ``(seed, epoch, stage)`` — EGT's S-stage curriculum;
- ``reverse`` high → low entropy (missing entropies first): the anti-curriculum, EGT's ablation;
- ``off``     TRL's default: a uniform permutation per epoch, bit-identical to ``RepeatSampler``'s
  (``torch.randperm`` from a generator seeded with ``seed``, advanced once per epoch).

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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from trl.trainer.utils import RepeatSampler

from egt.errors import EgtError
from egt.records import iter_jsonl

CURRICULA = ("sorted", "staged", "reverse", "off")
MANIFEST_FILE = "manifest.jsonl"


@dataclass(frozen=True)
class ManifestEntry:
    """One pool item of a curation manifest."""

    id: str
    scores: dict[str, float | None]
    kept: bool
    rank: int | None = None
    selector: str | None = None
    by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Curriculum:
    """What the trainer's sampler needs: per-row scores and ids (dataset order) and how to order them.

    A score of None (or NaN) sorts last; ``ids`` break ties (row order when empty).
    """

    mode: str = "sorted"
    scores: Sequence[float | None] = field(default_factory=list)
    stages: int = 4
    ids: Sequence[str] = field(default_factory=list)

    def __post_init__(self):
        if self.mode not in CURRICULA:
            raise EgtError(f"field 'curriculum': unknown curriculum {self.mode!r} ({' | '.join(CURRICULA)})")
        if self.mode == "staged" and self.stages < 1:
            raise EgtError(f"field 'curriculum_stages': must be >= 1, got {self.stages}")


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------


def manifest_path(path: str | Path) -> Path:
    """``DIR`` → ``DIR/manifest.jsonl``; a file path is kept."""
    path = Path(path)
    return path / MANIFEST_FILE if path.is_dir() else path


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read a curation manifest; every error names the file, the line and the field."""
    path = manifest_path(path)
    if not path.is_file():
        raise EgtError(f"{path}: curation manifest not found")
    entries, seen = [], set()
    for lineno, obj in iter_jsonl(path):
        here = f"{path}: line {lineno}"
        if not isinstance(obj, dict):
            raise EgtError(f"{here}: expected a JSON object")
        rid = obj.get("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid) == "":
            raise EgtError(f"{here}: field 'id': missing or empty")
        rid = str(rid)
        if rid in seen:
            raise EgtError(f"{here} (id={rid!r}): field 'id': duplicate id")
        seen.add(rid)
        scores = obj.get("scores")
        if not isinstance(scores, dict):
            raise EgtError(f"{here} (id={rid!r}): field 'scores': missing or not an object")
        kept = obj.get("kept")
        if not isinstance(kept, bool):
            raise EgtError(f"{here} (id={rid!r}): field 'kept': must be true or false")
        entries.append(
            ManifestEntry(
                id=rid,
                scores=scores,
                kept=kept,
                rank=obj.get("rank"),
                selector=obj.get("selector"),
                by=obj.get("by"),
                reason=obj.get("reason"),
            )
        )
    if not entries:
        raise EgtError(f"{path}: the manifest is empty")
    return entries


def _some(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f", … ({len(ids)} in all)" if len(ids) > limit else "")


def kept_items(
    entries: Sequence[ManifestEntry], data_ids: Sequence[str], by: str = "", source: str = "manifest"
) -> tuple[list[int], list[float | None]]:
    """Align a manifest with a dataset: positions in ``data_ids`` of the kept items, and their ``scores[by]``.

    Positions follow the dataset order; ``by=""`` takes each line's own ``by`` (else ``answer``).
    A ``null`` score is kept as None (it sorts last). Errors (before any training): kept ids absent
    from the data, a score that is not a number or null, nothing kept — each listing offending ids.
    """
    position = {rid: i for i, rid in enumerate(data_ids)}
    kept = [e for e in entries if e.kept]
    if not kept:
        raise EgtError(f"{source}: no item is kept")
    missing = [e.id for e in kept if e.id not in position]
    if missing:
        raise EgtError(f"{source}: {len(missing)} kept id(s) are not in the training data: {_some(missing)}")
    keys = {e.id: by or e.by or "answer" for e in kept}
    absent = [e.id for e in kept if keys[e.id] not in e.scores]
    if absent:
        raise EgtError(f"{source}: field 'scores.{keys[absent[0]]}': missing for id(s) {_some(absent)}")
    bad = [e.id for e in kept if not _number_or_null(e.scores[keys[e.id]])]
    if bad:
        raise EgtError(f"{source}: field 'scores.{keys[bad[0]]}': not a number or null for id(s) {_some(bad)}")
    pairs = sorted((position[e.id], e.scores[keys[e.id]]) for e in kept)
    return [p for p, _ in pairs], [None if s is None else float(s) for _, s in pairs]


def kept_order_keys(
    entries: Sequence[ManifestEntry], data_ids: Sequence[str], by: str = "", source: str = "manifest"
) -> tuple[list[int], list[tuple]]:
    """:func:`kept_items` with each kept item's curation sort key instead of its bare score.

    The key is :func:`egt.curation.selectors.entropy_key` — format failures first, then the entropy
    (missing last), the tie-break entropy of coarse kinds (vote → sentence), then the id — so the
    trainer visits items in exactly the order ``egt curate`` documents (``curriculum_order``).
    """
    from egt.curation.selectors import entropy_key

    positions, _ = kept_items(entries, data_ids, by, source)  # checks everything first
    index = {rid: i for i, rid in enumerate(data_ids)}
    entry_at = {index[e.id]: e for e in entries if e.kept}
    return positions, [
        entropy_key(entry_at[p].scores, by or entry_at[p].by or "answer", entry_at[p].id) for p in positions
    ]


def _number_or_null(x: Any) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


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
) -> list[int]:
    """The visiting order of rows ``0 … n−1`` for one epoch (a permutation).

    ``sorted``: ascending score, None / NaN last, ties by ``ids`` (if given) then row.
    ``reverse``: exactly the ``sorted`` order reversed (highest entropy first).
    ``staged``: that order cut by :func:`stage_bounds`,
    each stage permuted by ``numpy.random.default_rng([seed, epoch, stage])``. ``off``: TRL's
    ``RepeatSampler`` order for this epoch (``range(n)`` when ``shuffle`` is False).
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
        if isinstance(scores[i], tuple):  # a curation sort key (kept_order_keys): already total
            return (scores[i], i)
        missing = scores[i] is None or math.isnan(scores[i])
        return (missing, 0.0 if missing else scores[i], ids[i] if ids else "", i)

    ranked = sorted(range(n), key=key)
    if mode == "sorted":
        return ranked
    if mode == "reverse":
        return ranked[::-1]
    if mode == "staged":
        order = []
        for stage, (start, end) in enumerate(stage_bounds(n, stages)):
            block = ranked[start:end]
            perm = np.random.default_rng([seed, epoch, stage]).permutation(len(block))
            order.extend(block[j] for j in perm)
        return order
    raise EgtError(f"unknown curriculum {mode!r} ({' | '.join(CURRICULA)})")


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
        )

    def __iter__(self):
        order = self.order()
        if self.on_order is not None:
            self.on_order(self.epoch, order)
        for position in super().__iter__():  # RepeatSampler over range(n), unshuffled
            yield order[position]
