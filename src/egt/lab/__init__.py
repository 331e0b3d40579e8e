"""The shapes lab: a deterministic synthetic multimodal preference task with known noise.

``make_lab(LabConfig(output_dir=out_dir, ...))`` writes::

    out_dir/images/<id>.png
    out_dir/sft.jsonl       teacher traces in meta["traces"] (one per presentation order)
    out_dir/rl_pool.jsonl   noisy labels, as a real preference pool has
    out_dir/test.jsonl      clean labels, for evaluation
    out_dir/lab.json        the config, the split sizes and the realised noise rates

Every item keeps its ground truth in ``meta``: ``true_preferred``, ``flipped``, ``difficulty``,
``hard``, ``ambiguity``, ``flaw``. The same seed gives byte-identical files.

The annotator flips labels, and the trace teacher misperceives colours, as ``egt.lab.items``
describes. ``teacher="scripted"`` (default) misnames only hues past ambiguity 0.5, up to
``teacher_error_hard``; ``teacher="annotator"`` perceives through the annotators' own confusion
model (``confusion_probability``: ``noise_easy`` up to ambiguity 0.4, rising linearly to
``noise_hard`` at 0.9), from a separate random stream, so the items, images and labels are the
scripted lab's and only the traces differ. With it, sft items also record in ``meta`` what the
teacher saw (``teacher_colour``) and whether that was wrong (``teacher_erred``); the default lab's
files are unchanged (a scripted teacher's view is the colour after "image" in its traces).

``noise="systematic"`` relabels the RL pool with a biased annotator population instead
(:mod:`egt.lab.noise`): one region is mislabelled consistently. Its items and images are the random
lab's (a paired design); its pool items record ``meta.region``, and ``lab.json`` the region's share
and flip rates. The default (``noise="random"``) writes exactly the files it always has.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from egt.data.atomic import atomic_path, atomic_write_json
from egt.errors import EgtError
from egt.lab.items import TEACHERS, sample_item, teacher_trace
from egt.lab.noise import (
    BASE_FLIP,
    NOISE_MODELS,
    REGION_COLOURS,
    REGION_FLIP,
    REGION_MIN_AMBIGUITY,
    parse_colours,
    systematic_labels,
)
from egt.lab.scenes import render
from egt.records import PreferencePair, write_pairs

SPLITS = ("sft", "rl_pool", "test")


@dataclass
class LabConfig:
    """Shapes-lab generator settings (``egt lab make``)."""

    output_dir: str = field(default="runs/lab", metadata={"help": "Output folder."})
    seed: int = field(default=0, metadata={"help": "Seed; the same seed gives byte-identical files."})
    n_sft: int = field(default=5000, metadata={"help": "Items with teacher traces for stage-1 SFT."})
    n_rl_pool: int = field(default=2000, metadata={"help": "Noisy-label pool to score, curate and train RL on."})
    n_test: int = field(default=500, metadata={"help": "Clean-label test items."})
    image_size: int = field(default=56, metadata={"help": "Image side in pixels (56 → 4 tokens in the tiny VLM)."})
    noise_easy: float = field(
        default=0.05,
        metadata={
            "help": "Label-flip rate of the easiest items (ambiguity ≤ 0.4); the annotator teacher misperceives at it."
        },
    )
    noise_hard: float = field(
        default=0.30,
        metadata={
            "help": "Label-flip rate of the hardest items (ambiguity ≥ 0.9); the annotator teacher misperceives at it."
        },
    )
    teacher_error_hard: float = field(
        default=0.3,
        metadata={
            "help": "Rate at which the scripted trace teacher misnames the most ambiguous colours (unused by the "
            "annotator teacher)."
        },
    )
    hard_threshold: float = field(default=0.5, metadata={"help": "Items with difficulty ≥ this are 'hard'."})
    teacher: str = field(
        default="scripted",
        metadata={
            "choices": list(TEACHERS),
            "help": "Trace teacher. scripted: misnames a colour as its confusable neighbour with probability "
            "teacher_error_hard·max(0, (a−0.5)/0.5) at ambiguity a. annotator: perceives like the "
            "annotators, the neighbour with probability noise_easy up to a = 0.4, rising linearly to "
            "noise_hard at a = 0.9 (the label-flip curve); its traces reason from what it saw, and "
            "sft meta records teacher_colour and teacher_erred. Items, images and labels are the same "
            "for both.",
        },
    )
    noise: str = field(
        default="random",
        metadata={
            "choices": list(NOISE_MODELS),
            "help": "Noise model of the RL pool's labels. random: independent flips at the confusion curve "
            "(noise_easy → noise_hard). systematic: biased annotators flip the region (region_colours, ambiguity "
            "≥ region_min_ambiguity, flaw naming the neighbour) with probability region_flip and everything else "
            "with base_flip, from their own random stream: items, images, sft and test are the random lab's.",
        },
    )
    region_colours: str = field(
        default=",".join(REGION_COLOURS),
        metadata={"help": "systematic: the asked colours of the biased region, comma-separated."},
    )
    region_min_ambiguity: float = field(
        default=REGION_MIN_AMBIGUITY, metadata={"help": "systematic: the region's hues are at least this ambiguous."}
    )
    region_flip: float = field(default=REGION_FLIP, metadata={"help": "systematic: label-flip rate inside the region."})
    base_flip: float = field(
        default=BASE_FLIP,
        metadata={
            "help": "systematic: label-flip rate outside the region "
            "(0.06: about 1 in 8 labels flipped overall, as random)."
        },
    )


NOISE_FIELDS = ("noise", "region_colours", "region_min_ambiguity", "region_flip", "base_flip")
"""Fields of the noise model: absent from ``lab.json`` for the random model, whose files stay as they were."""


def make_split(cfg: LabConfig, split: str, n: int, images_dir: Path) -> list[PreferencePair]:
    """Generate one split; each item has its own RNG stream so splits are independent."""
    split_key = SPLITS.index(split)
    check_teacher(cfg.teacher)
    pairs = []
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_key, i])
        # the annotator teacher's perception has its own stream: the item's stream stays the scripted lab's
        teacher_rng = np.random.default_rng([cfg.seed, split_key, i, 1]) if cfg.teacher == "annotator" else None
        spec = sample_item(
            rng,
            noise_easy=cfg.noise_easy,
            noise_hard=cfg.noise_hard,
            teacher_error_hard=cfg.teacher_error_hard,
            apply_noise=split != "test",
            teacher=cfg.teacher,
            teacher_rng=teacher_rng,
        )
        item_id = f"{split}-{i:05d}"
        image = render(list(spec.squares), cfg.image_size, rng)
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=False)
        (images_dir / f"{item_id}.png").write_bytes(buf.getvalue())
        meta = {
            "true_preferred": spec.true_preferred,
            "flipped": spec.flipped,
            "difficulty": spec.difficulty,
            "hard": spec.difficulty >= cfg.hard_threshold,
            "ambiguity": spec.ambiguity,
            "flaw": spec.flaw,
            "position": spec.position,
            "colour": spec.correct,
            "n_squares": len(spec.squares),
        }
        if split == "sft":
            meta["traces"] = [teacher_trace(spec, swapped=False), teacher_trace(spec, swapped=True)]
            if cfg.teacher != "scripted":  # (absent by default: the default lab's files stay as they were)
                meta["teacher_colour"] = spec.teacher_colour
                meta["teacher_erred"] = spec.teacher_colour != spec.correct
        pairs.append(
            PreferencePair(
                id=item_id,
                question=spec.question,
                responses=spec.responses,
                preferred=spec.preferred,
                images=[f"images/{item_id}.png"],
                category="hard" if meta["hard"] else "easy",
                source="shapes-lab",
                meta=meta,
            )
        )
    return pairs


def make_lab(cfg: LabConfig) -> dict:
    """Write the three splits and ``lab.json`` atomically under ``cfg.output_dir``; return the summary."""
    check_teacher(cfg.teacher)
    check_noise(cfg)
    out = Path(cfg.output_dir)
    # files do not depend on where they land; the random model's lab.json stays as it always was
    skip = {"output_dir", *(NOISE_FIELDS if cfg.noise == "random" else ())}
    config = {k: v for k, v in asdict(cfg).items() if k not in skip}
    summary: dict = {"config": config, "splits": {}}
    with atomic_path(out) as tmp:
        (tmp / "images").mkdir(parents=True)
        for split, n in zip(SPLITS, (cfg.n_sft, cfg.n_rl_pool, cfg.n_test)):
            pairs = make_split(cfg, split, n, tmp / "images")
            if split == "rl_pool" and cfg.noise == "systematic":
                pairs = relabel_systematic(cfg, pairs)
            write_pairs(pairs, tmp / f"{split}.jsonl")
            summary["splits"][split] = split_stats(pairs)
        atomic_write_json(tmp / "lab.json", summary)
    return summary


def relabel_systematic(cfg: LabConfig, pairs: list[PreferencePair]) -> list[PreferencePair]:
    """The RL pool's labels from the biased annotators (:mod:`egt.lab.noise`); items and images unchanged."""
    return systematic_labels(
        pairs,
        cfg.seed,
        SPLITS.index("rl_pool"),
        colours=parse_colours(cfg.region_colours),
        min_ambiguity=cfg.region_min_ambiguity,
        region_flip=cfg.region_flip,
        base_flip=cfg.base_flip,
    )


def check_noise(cfg: LabConfig) -> None:
    if cfg.noise not in NOISE_MODELS:
        raise EgtError(f"field 'noise': unknown noise model {cfg.noise!r} ({' | '.join(NOISE_MODELS)})")
    if cfg.noise == "systematic":
        parse_colours(cfg.region_colours)
        for name in ("region_flip", "base_flip", "region_min_ambiguity"):
            if not 0.0 <= getattr(cfg, name) <= 1.0:
                raise EgtError(f"field {name!r}: must be in [0, 1], got {getattr(cfg, name)}")


def check_teacher(teacher: str) -> None:
    if teacher not in TEACHERS:
        raise EgtError(f"field 'teacher': unknown teacher {teacher!r} ({' | '.join(TEACHERS)})")


def split_stats(pairs: list[PreferencePair]) -> dict:
    n = len(pairs)
    hard = [p for p in pairs if p.meta["hard"]]
    easy = [p for p in pairs if not p.meta["hard"]]

    def flip_rate(ps: list[PreferencePair]) -> float:
        return round(sum(p.meta["flipped"] for p in ps) / len(ps), 4) if ps else 0.0

    stats = {
        "n": n,
        "n_hard": len(hard),
        "flip_rate": flip_rate(pairs),
        "flip_rate_easy": flip_rate(easy),
        "flip_rate_hard": flip_rate(hard),
    }
    if pairs and "region" in pairs[0].meta:  # the systematic noise model's biased region
        region = [p for p in pairs if p.meta["region"]]
        rest = [p for p in pairs if not p.meta["region"]]
        stats["region_share"] = round(len(region) / n, 4)
        stats["flip_rate_region"] = flip_rate(region)
        stats["flip_rate_rest"] = flip_rate(rest)
    if pairs and "teacher_erred" in pairs[0].meta:  # the annotator teacher's realised misperception rate
        stats["teacher_error_rate"] = round(sum(p.meta["teacher_erred"] for p in pairs) / n, 4)
    return stats
