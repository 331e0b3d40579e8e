"""Noise models of the lab's preference pool: who flips which labels (``egt lab make --noise``).

``random`` (the lab's default, unchanged): an annotator flips each label independently with the
perceptual confusion probability of ``egt.lab.items.confusion_probability`` (5% on clear hues rising
to 30% on the most ambiguous). The majority label is right everywhere, so such noise only slows
learning.

``systematic``: a biased annotator population that mislabels one region consistently. The
*biased region* is every item whose asked square is one of ``region_colours``, whose hue is at
least ``region_min_ambiguity`` of the way to the neighbouring colour, and whose flawed response
names that neighbour (``flaw == "neighbour"``): the annotators see the neighbour there and prefer
the flawed answer with probability ``region_flip`` (0.9). Everywhere else they flip at the flat
``base_flip`` rate. With the defaults (red, yellow, blue; ambiguity ≥ 0.5; 0.9; 0.06) the region
is ~8% of the pool and ~12.5% of all labels are flipped, about the random model's 12.7%.

The systematic labels are drawn from their own random stream (``[seed, split, index, 2]``) after
the item is made, so the items, the images and the true labels are those of the random lab: the
two noise models form a paired design (the same SFT judges and entropy scores serve both; entropy
does not read labels). Only the RL pool is relabelled: the SFT split (whose traces do not depend on
the label) and the clean test split stay byte-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from egt.records import PreferencePair

NOISE_MODELS = ("random", "systematic")
REGION_COLOURS = ("red", "yellow", "blue")
# the systematic model's defaults, shared by ``egt lab make`` and ``egt experiment``: ~9% of the pool in the
# region flipped at 0.9, the rest at 0.06 — about 1 label in 8 flipped overall, as the random model
REGION_MIN_AMBIGUITY = 0.5
REGION_FLIP = 0.9
BASE_FLIP = 0.06
SYSTEMATIC_STREAM = 2  # the label stream's tag: the item's stream is [seed, split, i], the teacher's [.., 1]


def in_region(meta: dict, colours: Sequence[str], min_ambiguity: float) -> bool:
    """Whether an item (its ``meta``) is in the biased region (module doc); a pure rule on the item."""
    return (
        meta.get("flaw") == "neighbour"
        and meta.get("colour") in set(colours)
        and float(meta.get("ambiguity", 0.0)) >= min_ambiguity
    )


def parse_colours(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"red,yellow,blue"`` (or a list) → the colour names, checked against the palette."""
    from egt.errors import EgtError
    from egt.lab.colours import NAMES

    names = tuple(c.strip() for c in (text.split(",") if isinstance(text, str) else text) if c.strip())
    unknown = [c for c in names if c not in NAMES]
    if unknown or not names:
        raise EgtError(f"region colours {names!r}: each must be one of {', '.join(NAMES)}")
    return names


def systematic_labels(
    pairs: Sequence[PreferencePair],
    seed: int,
    split_key: int,
    *,
    colours: Sequence[str] = REGION_COLOURS,
    min_ambiguity: float = 0.5,
    region_flip: float = 0.9,
    base_flip: float = 0.06,
) -> list[PreferencePair]:
    """The pairs relabelled by the biased annotators; ``meta`` gains ``region`` and a new ``flipped``.

    Item ``i`` (its position in ``pairs``, the index the lab made it with) draws one uniform from
    ``default_rng([seed, split_key, i, 2])`` and is flipped when it falls below ``region_flip`` in
    the region, ``base_flip`` elsewhere. The true label, responses and images are untouched.
    """
    out = []
    for i, pair in enumerate(pairs):
        region = in_region(pair.meta, colours, min_ambiguity)
        u = np.random.default_rng([seed, split_key, i, SYSTEMATIC_STREAM]).random()
        flipped = bool(u < (region_flip if region else base_flip))
        truth = pair.meta["true_preferred"]
        meta = {**pair.meta, "flipped": flipped, "region": region}
        out.append(replace(pair, preferred=1 - truth if flipped else truth, meta=meta))
    return out
