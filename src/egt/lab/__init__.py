"""The shapes lab: a deterministic synthetic multimodal preference task with known noise.

``make_lab(LabConfig(...), out_dir)`` writes::

    out_dir/images/<id>.png
    out_dir/sft.jsonl       teacher traces in meta["traces"] (one per presentation order)
    out_dir/rl_pool.jsonl   noisy labels, as a real preference pool has
    out_dir/test.jsonl      clean labels, for evaluation
    out_dir/lab.json        the config, the split sizes and the realised noise rates

Every item keeps its ground truth in ``meta``: ``true_preferred``, ``flipped``, ``difficulty``,
``hard``, ``ambiguity``, ``flaw``. The same seed gives byte-identical files.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from egt.io import atomic_path, atomic_write_json
from egt.lab.items import sample_item, teacher_trace
from egt.lab.scenes import render
from egt.records import PreferencePair, write_pairs

SPLITS = ("sft", "rl_pool", "test")


@dataclass
class LabConfig:
    """Shapes-lab generator settings (``egt lab make``)."""

    out: str = field(default="runs/lab", metadata={"help": "Output folder."})
    seed: int = field(default=0, metadata={"help": "Seed; the same seed gives byte-identical files."})
    n_sft: int = field(default=5000, metadata={"help": "Items with teacher traces for stage-1 SFT."})
    n_rl_pool: int = field(default=2000, metadata={"help": "Noisy-label pool to score, curate and train RL on."})
    n_test: int = field(default=500, metadata={"help": "Clean-label test items."})
    image_size: int = field(default=56, metadata={"help": "Image side in pixels (56 → 4 tokens in the tiny VLM)."})
    noise_easy: float = field(default=0.05, metadata={"help": "Label-flip rate of the easiest items."})
    noise_hard: float = field(default=0.30, metadata={"help": "Label-flip rate of the hardest items."})
    teacher_error_hard: float = field(
        default=0.3, metadata={"help": "Rate at which the trace teacher misnames the most ambiguous colours."}
    )
    hard_threshold: float = field(default=0.5, metadata={"help": "Items with difficulty ≥ this are 'hard'."})


def make_split(cfg: LabConfig, split: str, n: int, images_dir: Path) -> list[PreferencePair]:
    """Generate one split; each item has its own RNG stream so splits are independent."""
    split_key = SPLITS.index(split)
    pairs = []
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_key, i])
        spec = sample_item(
            rng, noise_easy=cfg.noise_easy, noise_hard=cfg.noise_hard,
            teacher_error_hard=cfg.teacher_error_hard, apply_noise=split != "test",
        )
        item_id = f"{split}-{i:05d}"
        image = render(list(spec.squares), cfg.image_size, rng)
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=False)
        (images_dir / f"{item_id}.png").write_bytes(buf.getvalue())
        meta = {
            "true_preferred": spec.true_preferred, "flipped": spec.flipped, "difficulty": spec.difficulty,
            "hard": spec.difficulty >= cfg.hard_threshold, "ambiguity": spec.ambiguity, "flaw": spec.flaw,
            "position": spec.position, "colour": spec.correct, "n_squares": len(spec.squares),
        }
        if split == "sft":
            meta["traces"] = [teacher_trace(spec, swapped=False), teacher_trace(spec, swapped=True)]
        pairs.append(PreferencePair(
            id=item_id, question=spec.question, responses=spec.responses, preferred=spec.preferred,
            images=[f"images/{item_id}.png"], category="hard" if meta["hard"] else "easy",
            source="shapes-lab", meta=meta,
        ))
    return pairs


def make_lab(cfg: LabConfig) -> dict:
    """Write the three splits and ``lab.json`` atomically under ``cfg.out``; return the summary."""
    out = Path(cfg.out)
    config = {k: v for k, v in asdict(cfg).items() if k != "out"}  # files do not depend on where they land
    summary: dict = {"config": config, "splits": {}}
    with atomic_path(out) as tmp:
        (tmp / "images").mkdir(parents=True)
        for split, n in zip(SPLITS, (cfg.n_sft, cfg.n_rl_pool, cfg.n_test)):
            pairs = make_split(cfg, split, n, tmp / "images")
            write_pairs(pairs, tmp / f"{split}.jsonl")
            summary["splits"][split] = split_stats(pairs)
        atomic_write_json(tmp / "lab.json", summary)
    return summary


def split_stats(pairs: list[PreferencePair]) -> dict:
    n = len(pairs)
    hard = [p for p in pairs if p.meta["hard"]]
    easy = [p for p in pairs if not p.meta["hard"]]

    def flip_rate(ps: list[PreferencePair]) -> float:
        return round(sum(p.meta["flipped"] for p in ps) / len(ps), 4) if ps else 0.0

    return {
        "n": n, "n_hard": len(hard), "flip_rate": flip_rate(pairs),
        "flip_rate_easy": flip_rate(easy), "flip_rate_hard": flip_rate(hard),
    }
