"""Multimodal RewardBench (Yasunaga et al., 2025; facebookresearch/multimodal_rewardbench).

Release format: ``data/all_data.json``, a JSON list (JSONL and parquet are read too) of
``ID``, ``Text`` (prompt), ``Image`` (path relative to the data folder, e.g.
``images/nocaps/13062.jpg``), ``Output1``, ``Output2``, ``Better`` (``"Output1"`` or ``"Output2"``)
and ``Category`` (top level, or ``Meta.Category`` as in the official outputs). The release ships
no images: ``scripts/0_download_data.py`` fetches them from each source dataset, except Hateful
Memes (its licence forbids redistribution), so its rows name images that are absent — a judge that
reads images stops there unless ``--skip_missing_images``; the baselines run on every row.

Repeated ids (rule ``keep``): the official ``2_get_accuracy.py`` scores every line of the answers
file on its own (the ID only picks the math/coding and bias/toxicity splits), so a repeated ``ID``
is another item: its rows get the keys ``{ID}#0``, ``{ID}#1``… and keep the ``ID`` as
``original_id``.

Categories as the official ``scripts/2_get_accuracy.py`` forms them: ``open_generation/
correctness_task`` → correctness, ``open_generation/preference_task`` → preference, knowledge,
reasoning, safety, vqa; reasoning splits into ``reasoning/math`` (ID starts with ``math``,
case-insensitively) and ``reasoning/coding``, safety into ``safety/bias`` (ID starts with ``pairs``)
and ``safety/toxicity``. An unknown category string is kept as given.

Metrics: ``overall`` = micro accuracy over all items, plus accuracy per category and per split.

Tie / parse-failure rule (default ``half``): 0.5. The official script replaces a verdict it cannot
parse by a seeded coin flip (``random.seed(123)``); 0.5 is that flip's expected score, without
the luck of one seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from egt.benchmarks.base import adapter_benchmark
from egt.benchmarks.common import (
    Rows,
    grouped_accuracy,
    image_cell,
    key_rows,
    mean,
    nonempty,
    require_id,
    require_row,
    require_str,
    scored,
)
from egt.data.readers import field_error, read_records
from egt.evaluation.runner import Prediction
from egt.records import PreferencePair

NAME = "multimodal_rewardbench"
CATEGORY_NAMES = {
    "open_generation/correctness_task": "correctness",
    "open_generation/preference_task": "preference",
    "correctness": "correctness",
    "preference": "preference",
    "knowledge": "knowledge",
    "reasoning": "reasoning",
    "safety": "safety",
    "vqa": "vqa",
}
CATEGORIES = ("correctness", "preference", "knowledge", "reasoning", "safety", "vqa")
SPLITS = ("reasoning/math", "reasoning/coding", "safety/bias", "safety/toxicity")
TIE_POLICY = "half"
RULE = "the official 2_get_accuracy.py replaces an unparsable verdict by a seeded coin flip (expected score 0.5)"
REPEATED_IDS_RULE = "the official 2_get_accuracy.py scores every line on its own"


def split_of(record_id: str, category: str) -> str | None:
    """The official finer split of reasoning and safety items, from the ID's prefix."""
    rid = record_id.lower()
    if category == "reasoning":
        return "reasoning/math" if rid.startswith("math") else "reasoning/coding"
    if category == "safety":
        return "safety/bias" if rid.startswith("pairs") else "safety/toxicity"
    return None


def load(path: str | Path, images_dir: str | Path | None = None) -> list[PreferencePair]:
    pairs = Rows()
    for loc, row in read_records(path):
        row = require_row(loc, row)
        rid = require_id(loc, row, "ID")
        question = require_str(loc, row, "Text")
        out1, out2 = require_str(loc, row, "Output1"), require_str(loc, row, "Output2")
        better = row.get("Better")
        if better not in ("Output1", "Output2"):
            raise field_error(loc, row, "Better", f"must be 'Output1' or 'Output2', got {better!r}")
        raw = row.get("Category")
        if raw is None and isinstance(row.get("Meta"), dict):
            raw = row["Meta"].get("Category")
        if not isinstance(raw, str) or not raw:
            raise field_error(loc, row, "Category", f"missing or not a string (got {raw!r})")
        category = CATEGORY_NAMES.get(raw.lower(), raw)
        images = [image_cell(loc, row, "Image")] if row.get("Image") else []
        meta = {"raw_category": raw}
        split = split_of(rid, category)
        if split:
            meta["split"] = split
        pairs.append(
            PreferencePair(
                id=rid,
                question=question,
                responses=(out1, out2),
                preferred=0 if better == "Output1" else 1,
                images=images,
                category=category,
                meta=meta,
            )
        )
    return nonempty(key_rows(pairs, "keep", path), path)


def score_view(predictions: Sequence[Prediction], pairs: Mapping[str, PreferencePair], tie_policy: str) -> dict:
    items = scored(predictions, tie_policy)
    categories = grouped_accuracy(items, lambda p: pairs[p.id].category, order=CATEGORIES)
    categories.update(grouped_accuracy(items, lambda p: pairs[p.id].meta.get("split"), order=SPLITS))
    return {"metrics": {"overall": mean([s for _, s in items])}, "categories": categories}


BENCHMARK = adapter_benchmark(
    globals(),
    title="Multimodal RewardBench",
    headline="{overall} overall",
    headline_metrics=("overall",),
    columns=(
        ("Overall", "metrics.overall"),
        ("Correctness", "categories.correctness"),
        ("Preference", "categories.preference"),
        ("Knowledge", "categories.knowledge"),
        ("Math", "categories.reasoning/math"),
        ("Coding", "categories.reasoning/coding"),
        ("Bias", "categories.safety/bias"),
        ("Toxicity", "categories.safety/toxicity"),
        ("VQA", "categories.vqa"),
    ),
    repeated_ids="keep",
)
