"""Scalar reward model in the evaluation harness: pairs/s batched at 16 vs one pair at a time.

What is measured: the harness's own path, ``egt.evaluation.runner.run_judge`` over requests that
carry opened images, with a scalar judge that scores both responses of every pair. Batched, one
forward pass covers 16 pairs (32 sequences; each pair's shared prompt runs once, see
``egt.rm.prefix``); unbatched, one forward pass per pair (its 2 sequences; too little to share for
``score_items`` to bother, see ``MIN_SHARED_TOKENS``). Same requests, same model, same scored
sequences; the rewards of the two runs must agree (max |Δ| is printed), so the speed-up is not
bought with different results.

The judge: the project's scalar reward model, ``egt.rm`` (``RewardModel`` = backbone → last
non-pad token → two-layer head, wrapped by ``RewardModelJudge``), on an untrained tiny
Qwen2.5-VL backbone. Timings are best-of-N with the two batch sizes interleaved (``bench/harness.py``), so
a slow spell of the shared machine hits both alike.

Items: ``--pairs`` pairs (default 64) of the shapes lab's test split, the data the tiny model is
made for (a 56×56 image, a one-line question, responses of about five words). ``--long`` uses
synthetic responses of 20–80 words instead: the sequences are then long enough that the tiny
model's forward is compute-bound even for one pair, and batching gains less (padding also costs
more). Target: ratio ≥ 4 at batch 16 on the lab items.

Run: ``.venv/bin/python bench/benchmark_batching.py [--pairs 64] [--repeats 7] [--long] [--quick]``.
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

from PIL import Image

import harness
from egt.evaluation.runner import build_requests, run_judge
from egt.records import PreferencePair

WORDS = (
    "the red square sits left of a blue circle while green triangles gather near the top edge of the "
    "picture and one small yellow star hides below them all"
).split()
TARGET = 4.0


def lab_pairs(n: int, out: Path, seed: int) -> tuple[list[PreferencePair], Path]:
    """The first ``n`` pairs of a freshly generated shapes-lab test split, and its images root."""
    from egt.lab import LabConfig, make_lab
    from egt.records import read_pairs

    make_lab(LabConfig(output_dir=str(out / "lab"), n_sft=8, n_rl_pool=8, n_test=n, seed=seed))
    return read_pairs(out / "lab" / "test.jsonl")[:n], out / "lab"


def make_pairs(n: int, seed: int = 0) -> list[PreferencePair]:
    """Synthetic pairs with long responses (20–80 words), images in memory."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        colour = tuple(rng.randrange(256) for _ in range(3))
        image = Image.new("RGB", (56, 56), colour)
        question = " ".join(rng.choices(WORDS, k=16)) + "?"
        responses = tuple(" ".join(rng.choices(WORDS, k=rng.randint(20, 80))) for _ in range(2))
        pairs.append(
            PreferencePair(id=f"b{i}", question=question, responses=responses, preferred=i % 2, images=[image])
        )
    return pairs


def make_judge(model_dir: Path, pairs_per_forward: int):
    """egt.rm's ``RewardModelJudge`` on the tiny backbone, scoring ``pairs_per_forward`` pairs per forward."""
    from egt.rm.model import RewardModel
    from egt.rm.scoring import RewardModelJudge

    model, processor = RewardModel.from_backbone(model_dir, dtype="float32", device="cpu", for_training=False)
    return RewardModelJudge(model.eval(), processor, name="egt.rm tiny", batch_size=2 * pairs_per_forward)


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=7)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16, help="pairs per forward pass in the batched run")
    parser.add_argument("--long", action="store_true", help="synthetic 20–80-word responses instead of lab items")
    args = harness.parse(parser, quick={"pairs": 32, "repeats": 3})

    from egt.models.tiny import build_tiny_judge

    with tempfile.TemporaryDirectory() as tmp:
        if args.long:
            pairs, root = make_pairs(args.pairs, args.seed), None
        else:
            pairs, root = lab_pairs(args.pairs, Path(tmp), args.seed)
        model_dir = build_tiny_judge([t for p in pairs for t in (p.question, *p.responses)], Path(tmp) / "tiny")
        requests = build_requests(pairs, "stored", 0, root, load_images=True)
        judges = {b: make_judge(model_dir, b) for b in (args.batch, 1)}
        run_judge(judges[1], requests[:4], batch_size=1)  # warm up kernels and the processor
        sides = {
            "batched": lambda: run_judge(judges[args.batch], requests, batch_size=args.batch),
            "one at a time": lambda: run_judge(judges[1], requests, batch_size=1),
        }
        samples, preds = harness.interleave(sides, args.repeats, warmup=0)

    delta = max(
        abs(a - b) for x, y in zip(preds["batched"], preds["one at a time"]) for a, b in zip(x.scores, y.scores)
    )
    rates = {name: len(pairs) / s.best() for name, s in samples.items()}
    ratio = rates["batched"] / rates["one at a time"]
    data = "synthetic 20-80-word responses" if args.long else "shapes-lab test items"
    harness.print_table(
        f"judge: egt.rm.RewardModelJudge (tiny Qwen2.5-VL backbone, 2-layer head); {len(pairs)} pairs ({data}, "
        f"one 56x56 image each); {args.threads} threads; best of {args.repeats}",
        ["mode", "pairs per forward", "seconds", "pairs/s"],
        [
            [name, per_forward, f"{samples[name].best():.2f}", f"{rates[name]:.1f}"]
            for name, per_forward in (("batched", args.batch), ("one at a time", 1))
        ],
        caption=f"max |reward difference| batched vs unbatched: {delta:.2e}",
    )
    results = {
        "pairs": len(pairs),
        "data": data,
        "timings": {name: s.summary() for name, s in samples.items()},
        "pairs_per_second": rates,
        "speedup": ratio,
        "max_abs_reward_difference": delta,
    }
    checks = [harness.Check("speed-up, batched / one at a time (pairs/s)", ratio, TARGET, ">=")]
    return harness.finish(__file__, args, results, checks)


if __name__ == "__main__":
    sys.exit(main())
