"""Batched reward-model scoring: pairs/s at batch 16 vs batch 1 (issue 6 target: ratio ≥ 4).

Scores the same lab pairs (both responses, images included) with the tiny Qwen2.5-VL reward
model through ``egt.rm.scoring.score_items``, after a warm-up, at two batch units:

- responses: 16 responses per forward vs 1 response per forward;
- pairs: 16 pairs (32 responses) per forward vs 1 pair (its 2 responses) per forward — the unit
  of ``bench/benchmark_batching.py`` (issue 5).

``score_items`` shares a pair's prompt between its two responses (``egt.rm.prefix``) when a batch
saves at least ``MIN_SHARED_TOKENS`` token positions: at 16 pairs it does, at one pair it does not
(the second pass costs more than the ~40 shared tokens save). Each row also shows the other
choice, and each ratio divides the best batch-16 rate by the best batch-1 rate, so sharing cannot
flatter the baseline.

Timings are best-of-N with the settings interleaved (``bench/harness.py``), so a slow spell of the
shared machine hits all alike. Throughput does not depend on the weights, so a fresh (untrained) reward
model is used unless ``--model`` names a trained one.

    .venv/bin/python bench/rm_batching.py [--pairs 64] [--model DIR] [--repeats 15] [--breakdown] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

import harness
from egt.lab import LabConfig, make_lab
from egt.records import open_images, read_pairs
from egt.rm.backbones import build_tiny_backbone, pair_texts
from egt.rm.collate import ScoreItem
from egt.rm.model import HeadConfig, RewardModel
from egt.rm.scoring import score_items

SHARING = {"auto": {}, "never": {"share_prefix": False}, "always": {"min_shared_tokens": 0}}
TARGET = 4.0


def pairs_per_second(
    model, processor, items, sizes: tuple[int, ...], repeats: int, chunk: int = 32
) -> dict[tuple[int, str], float]:
    """Pairs/s for each batch size (responses per forward) and prefix-sharing setting.

    The items are timed in chunks of ``chunk`` responses (16 pairs), every setting on a chunk in
    turn, ``repeats`` rounds; a setting's time is the sum over chunks of its best time on each. Short
    timings, interleaved, keep a slow spell of the shared machine from deciding a ratio.
    """
    settings = [(size, share) for size in sizes for share in SHARING]
    for size, share in settings:
        score_items(model, processor, items[: 2 * size], batch_size=size, **SHARING[share])  # warm-up
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    best = {key: 0.0 for key in settings}  # sum over chunks of the best time on each
    for part in chunks:
        sides = {
            key: lambda part=part, size=key[0], share=key[1]: score_items(
                model, processor, part, batch_size=size, **SHARING[share]
            )
            for key in settings
        }
        samples, _ = harness.interleave(sides, repeats, warmup=0)
        for key, s in samples.items():
            best[key] += s.best()
    return {key: len(items) / 2 / seconds for key, seconds in best.items()}


@torch.no_grad()
def stage_breakdown(model, processor, items, sizes: tuple[int, ...], repeats: int) -> dict[int, dict[str, float]]:
    """Milliseconds per pair spent encoding (template, tokens, image preprocessing), in the vision
    tower, and in the language model over the full rows (no prefix sharing), for each batch size
    (best of ``repeats``, interleaved)."""
    from egt.models.qwen_vl import mrope_position_ids
    from egt.rm.collate import encode_items
    from egt.rm.encoding import encode_images_once

    base = model.base()
    best = {size: {"encode": float("inf"), "vision": float("inf"), "language model": float("inf")} for size in sizes}
    for _ in range(repeats):
        for size in sizes:
            spent = dict.fromkeys(best[size], 0.0)
            for start in range(0, len(items), size):
                t0 = time.perf_counter()
                enc = encode_items(processor, items[start : start + size], reads_images=True)
                t1 = time.perf_counter()
                inputs = encode_images_once(base, dict(enc), enc["image_sources"])
                t2 = time.perf_counter()
                embeds = base.get_input_embeddings()(enc["input_ids"])
                image_mask = (enc["input_ids"] == model.mrope["image_token_id"]).unsqueeze(-1)
                embeds = embeds.masked_scatter(
                    image_mask, torch.cat(inputs["mm_encoder_outputs"]["image"].pooler_output)
                )
                positions = mrope_position_ids(
                    enc["input_ids"],
                    enc["attention_mask"],
                    enc["image_grid_thw"],
                    image_token_id=model.mrope["image_token_id"],
                    spatial_merge_size=model.mrope["spatial_merge_size"],
                )
                base.language_model(
                    inputs_embeds=embeds, attention_mask=enc["attention_mask"], position_ids=positions, use_cache=False
                )
                t3 = time.perf_counter()
                for key, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2)):
                    spent[key] += seconds
            for key, seconds in spent.items():
                best[size][key] = min(best[size][key], 1e3 * seconds / (len(items) / 2))
    return best


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=15)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--model", default="", help="a trained reward model folder (default: a fresh tiny one)")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time encoding, vision tower and (unshared) language model"
    )
    args = harness.parse(parser, quick={"pairs": 16, "repeats": 1})
    with tempfile.TemporaryDirectory() as tmp:
        lab = Path(tmp) / "lab"
        make_lab(LabConfig(output_dir=str(lab), n_sft=args.pairs, n_rl_pool=1, n_test=1, seed=args.seed))
        pairs = read_pairs(lab / "sft.jsonl")
        if args.model:
            model, processor = RewardModel.from_pretrained(args.model, device="cpu")
        else:
            backbone = build_tiny_backbone("tiny", pair_texts(pairs), Path(tmp) / "backbone")
            model, processor = RewardModel.from_backbone(backbone, HeadConfig("mlp"), device="cpu", for_training=False)
        items = [
            ScoreItem(p.question, r, images) for p in pairs for images in [open_images(p, lab)] for r in p.responses
        ]  # a pair's responses share its opened image, as in the collator
        rates = pairs_per_second(model, processor, items, (1, 16, 2, 32), args.repeats)
        stages = stage_breakdown(model, processor, items, (2, 32), args.repeats) if args.breakdown else {}
    rows, checks, ratios = [], [], {}
    for unit, small, large in (("responses", 1, 16), ("pairs", 2, 32)):
        cells = {size: " / ".join(f"{rates[size, share]:5.1f}" for share in SHARING) for size in (small, large)}
        ratios[unit] = rates[large, "auto"] / max(rates[small, share] for share in SHARING)
        rows.append([unit, cells[small], cells[large], f"{ratios[unit]:.2f}"])
        checks.append(harness.Check(f"{unit}: batch 16 (auto) / best at batch 1", ratios[unit], TARGET, ">="))
    harness.print_table(
        f"reward-model scoring, {args.pairs} lab pairs (image + text), {args.threads} threads, best of {args.repeats}",
        ["unit", "batch 1 pairs/s", "batch 16 pairs/s", "ratio"],
        rows,
        caption="pairs/s by prefix sharing: auto (the default) / never / always; ratio: auto at 16 / best at 1",
    )
    if stages:
        harness.print_table(
            "ms per pair by stage (pairs unit)",
            ["", *stages[2]],
            [
                *(
                    [label, *(f"{v:.3f}" for v in stages[size].values())]
                    for size, label in ((2, "1 pair per forward"), (32, "16 pairs per forward"))
                ),
                ["ratio", *(f"{stages[2][k] / stages[32][k]:.2f}" for k in stages[2])],
            ],
        )
    results = {
        "pairs_per_second": {
            f"batch {size} ({'responses' if size in (1, 16) else 'pairs'} unit), {share}": rate
            for (size, share), rate in rates.items()
        },
        "ratios": ratios,
        "stages_ms_per_pair": stages,
    }
    return harness.finish(__file__, args, results, checks)


if __name__ == "__main__":
    sys.exit(main())
