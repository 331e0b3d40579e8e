"""Seed-level uncertainty for the experiment's differences: the hierarchical (two-stage) bootstrap.

lab_full's intervals resampled (test item × seed) units as if independent, which treats three seeds
of 500 items as 1,500 draws of one experiment: the spread between seeds — a different lab, SFT
judge and RL run each — never enters, and the intervals come out too narrow. Here the seeds are the
first stage: a resample draws S seeds with replacement, then for each drawn seed draws its items
with replacement (independently for each draw, even of the same seed), and the statistic is the
mean over the drawn seeds of their item means. Two limits check it: with one seed it is the item
bootstrap of that seed's mean; with every item of a seed equal, it is the bootstrap of the seed
means alone. The percentile interval is reported, with the per-seed means beside it, because with
three seeds an interval is coarse and a reader should see the three numbers (Davison & Hinkley
1997, §3.8; Field & Welsh 2007 on two-stage resampling).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def hierarchical_bootstrap(
    per_seed: Sequence[Sequence[float]], resamples: int = 2000, seed: int = 0, confidence: float = 0.95
) -> dict | None:
    """Mean of the per-seed means and its percentile CI, resampling seeds, then items within seeds.

    ``per_seed``: one array of per-item values per seed (``[S][n_s]``; e.g. the paired per-item
    accuracy differences of two arms on the clean test). Returns ``{"mean", "ci95", "per_seed",
    "n_seeds", "n_items"}``: ``mean`` weights every seed equally, ``ci95`` is ``(low, high)`` of
    the ``resamples`` bootstrap means (None when there is nothing to resample), ``per_seed`` the
    seeds' own means in input order. None when no seed has an item.
    """
    arrays = [np.asarray(x, dtype=float) for x in per_seed]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return None
    seed_means = np.array([a.mean() for a in arrays])  # [S]
    out = {
        "mean": float(seed_means.mean()),
        "ci95": None,
        "per_seed": [float(m) for m in seed_means],
        "n_seeds": len(arrays),
        "n_items": int(sum(a.size for a in arrays)),
    }
    if len(arrays) == 1 and arrays[0].size < 2:
        return out
    rng = np.random.default_rng(seed)
    n_seeds = len(arrays)
    picks = rng.integers(0, n_seeds, size=(resamples, n_seeds))  # [B, S]: which seed each draw is
    draw_means = np.empty((resamples, n_seeds))  # [B, S]: that draw's item-resampled mean
    for s, values in enumerate(arrays):
        where = picks == s
        count = int(where.sum())
        if count:
            items = rng.integers(0, values.size, size=(count, values.size))  # [count, n_s]
            draw_means[where] = values[items].mean(axis=1)
    stats = draw_means.mean(axis=1)  # [B]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(stats, [tail, 100 - tail])
    out["ci95"] = (float(low), float(high))
    return out


def paired_deltas(
    arm: dict[int, np.ndarray], base: dict[int, np.ndarray], mask: dict[int, np.ndarray] | None = None
) -> list[np.ndarray]:
    """Per seed present in both, the per-item differences ``arm − base`` (restricted to ``mask``)."""
    out = []
    for s in sorted(set(arm) & set(base)):
        d = np.asarray(arm[s], dtype=float) - np.asarray(base[s], dtype=float)
        if mask is not None:
            d = d[np.asarray(mask[s], dtype=bool)]
        out.append(d)
    return out
