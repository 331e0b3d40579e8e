"""VL-RewardBench (Li et al., 2024; MMInstruction/VL-RewardBench): 1,250 pairs in three categories.

Release formats read here:

- JSONL (the GitHub release, ``data/data.jsonl``): ``id``, ``query``, ``response`` (2 strings),
  ``human_ranking`` (the rank of each response, 0 = best: ``[0, 1]`` means ``response[0]`` is
  preferred; read from text too, ``"[0, 1]"``, as copies derived from the TSV store it),
  ``image_path`` (``images/<subset>/<file>``, relative to the release folder), ``models``,
  ``judge``, ``rationale`` (may be null), ``meta``, ``human_error_analysis``; ``query_source`` (the
  prompt's original dataset: COCO, TextVQA, …; absent from the reasoning rows) and
  ``ground_truth`` (reasoning rows). ``models`` and ``ground_truth`` are kept in ``meta``.
- HF parquet (or a snapshot folder of parquet files / a saved ``datasets`` folder): the same
  fields with ``image`` an embedded ``{bytes, path}`` cell.

Repeated ids (rule ``keep``): the release repeats 18 ids — one WildVision question judged for two
model pairs (same id and image, different responses and models). Both rows are items; a repeated
id's rows get the keys ``{id}#0``, ``{id}#1`` in file order, and the release's id stays in
``predictions.jsonl`` as ``original_id``. The official ``cal.py`` keys its items by id + query +
responses for the same reason.

Category (general / hallucination / reasoning), as the official ``cal.py`` forms it: from the
image's subset folder (``images/<subset>/``): vlfeedback, wildvision-battle → general; povid,
rlhf-v, rlaif-v → hallucination; reasoning_tasks → reasoning. Without a known folder (the parquet
release embeds its images) from ``id`` and ``query_source`` together, case-insensitively:
``mmmu`` or ``mathverse`` → reasoning; ``hallucination`` (POVID's ``hallucination_pair-*`` ids),
``povid``, ``rlhf`` or ``rlaif`` → hallucination; anything else → general. R1-Reward's
``get_acc.py`` matches the same keywords on the id alone and case-sensitively, so an ``RLAIF-V…``
id lands in general there; here it does not. The full release holds 183 / 749 / 318.

Metrics: ``overall`` = accuracy over all pairs (micro), ``macro`` = mean of the accuracies of the
categories present (the paper's "macro average"), accuracy per category, per subset folder (when
the images name one) and per source (sources grouped case-insensitively, named in lower case).

Tie / parse-failure rule (default ``wrong``): both score 0. VLMEvalKit's evaluator scores an
unparsable judgement 0 and R1-Reward's ``get_acc.py`` counts a pair correct only when the chosen
response's reward is strictly greater. The release stores the preferred response first in 1,245
of 1,250 rows, so the harness never judges the stored order alone (docs/methods.md §8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from egt.benchmarks.base import adapter_benchmark
from egt.benchmarks.common import (
    Rows,
    grouped_accuracy,
    image_cell,
    key_rows,
    mean,
    nonempty,
    optional_str,
    require_id,
    require_row,
    require_str,
    scored,
)
from egt.data.readers import field_error, read_records
from egt.evaluation.runner import Prediction
from egt.records import PreferencePair

NAME = "vl_rewardbench"
CATEGORIES = ("general", "hallucination", "reasoning")
REASONING_KEYS = ("mmmu", "mathverse")
HALLUCINATION_KEYS = ("hallucination", "povid", "rlhf", "rlaif")
TIE_POLICY = "wrong"
RULE = "VLMEvalKit scores an unparsable verdict 0 and R1-Reward's get_acc.py needs the chosen reward strictly greater"
# the official cal.py's group_mapping: image subset folder → category
SUBSET_CATEGORIES = {
    "vlfeedback": "general",
    "wildvision-battle": "general",
    "povid": "hallucination",
    "rlhf-v": "hallucination",
    "rlaif-v": "hallucination",
    "reasoning_tasks": "reasoning",
}
RELEASE_COUNTS = (("general", 183), ("hallucination", 749), ("reasoning", 318))
REPEATED_IDS_RULE = (
    "the release asks one WildVision question of two model pairs under one id; "
    "the official cal.py keys items by id + query + responses"
)


def subset_of(image_ref: object) -> str | None:
    """The release's subset folder of an image path (``images/povid/x.jpg`` → ``povid``), if known."""
    if isinstance(image_ref, dict):
        image_ref = image_ref.get("path")
    if not isinstance(image_ref, str):
        return None
    folder = PurePosixPath(image_ref.replace("\\", "/")).parent.name.lower()
    return folder if folder in SUBSET_CATEGORIES else None


def category_of(record_id: str, source: str | None, image_ref: object = None) -> str:
    """general / hallucination / reasoning: from the image's subset folder when it names one (the
    official rule), else from the id and the source, case-insensitively."""
    subset = subset_of(image_ref)
    if subset is not None:
        return SUBSET_CATEGORIES[subset]
    text = f"{record_id} {source or ''}".lower()
    if any(k in text for k in REASONING_KEYS):
        return "reasoning"
    if any(k in text for k in HALLUCINATION_KEYS):
        return "hallucination"
    return "general"


def preferred_from_ranking(loc: str, row: Mapping) -> int:
    ranking = row.get("human_ranking")
    if isinstance(ranking, str):  # the TSV-derived releases store it as text, e.g. "[0, 1]"
        import json

        try:
            ranking = json.loads(ranking)
        except ValueError:
            raise field_error(loc, row, "human_ranking", f"not a list: {ranking!r}") from None
    if (
        not isinstance(ranking, (list, tuple))
        or len(ranking) != 2
        or not all(isinstance(r, int) and not isinstance(r, bool) for r in ranking)
    ):
        raise field_error(loc, row, "human_ranking", f"expected 2 integer ranks, got {ranking!r}")
    if ranking[0] == ranking[1]:
        raise field_error(loc, row, "human_ranking", f"equal ranks {list(ranking)}: no preferred response")
    return 0 if ranking[0] < ranking[1] else 1


def load(path: str | Path, images_dir: str | Path | None = None) -> list[PreferencePair]:
    """Read the JSONL or parquet release; images stay relative paths or embedded PIL images."""
    pairs = Rows()
    for loc, row in read_records(path):
        row = require_row(loc, row)
        rid = require_id(loc, row)
        question = require_str(loc, row, "query")
        responses = row.get("response")
        if (
            not isinstance(responses, (list, tuple))
            or len(responses) != 2
            or not all(isinstance(r, str) for r in responses)
        ):
            raise field_error(loc, row, "response", f"expected a list of 2 strings, got {responses!r:.80}")
        preferred = preferred_from_ranking(loc, row)
        if row.get("image") is not None:
            images, image_ref = [image_cell(loc, row, "image")], row["image"]
        elif row.get("image_path") is not None:
            images, image_ref = [image_cell(loc, row, "image_path")], row["image_path"]
        else:
            raise field_error(loc, row, "image_path", "missing (neither 'image_path' nor an embedded 'image')")
        source = optional_str(loc, row, "query_source")
        meta = {
            "human_ranking": list(row["human_ranking"])
            if not isinstance(row["human_ranking"], str)
            else row["human_ranking"]
        }
        for key in ("models", "ground_truth"):
            if row.get(key) is not None:
                meta[key] = row[key]
        if subset_of(image_ref) is not None:
            meta["subset"] = subset_of(image_ref)
        pairs.append(
            PreferencePair(
                id=rid,
                question=question,
                responses=(responses[0], responses[1]),
                preferred=preferred,
                images=images,
                category=category_of(rid, source, image_ref),
                source=source,
                meta=meta,
            )
        )
    return nonempty(key_rows(pairs, "keep", path), path)


def score_view(predictions: Sequence[Prediction], pairs: Mapping[str, PreferencePair], tie_policy: str) -> dict:
    items = scored(predictions, tie_policy)
    categories = grouped_accuracy(items, lambda p: pairs[p.id].category, order=CATEGORIES)
    sources = grouped_accuracy(items, lambda p: (pairs[p.id].source or "").lower() or None)  # "POVID" = "povid"
    subsets = grouped_accuracy(items, lambda p: pairs[p.id].meta.get("subset"), order=tuple(SUBSET_CATEGORIES))
    return {
        "metrics": {
            "overall": mean([s for _, s in items]),
            "macro": mean([c["accuracy"] for c in categories.values()]),
        },
        "categories": categories,
        "subsets": subsets,
        "sources": sources,
    }


BENCHMARK = adapter_benchmark(
    globals(),
    title="VL-RewardBench",
    headline="{overall} overall / {macro} macro",
    headline_metrics=("overall", "macro"),
    columns=(
        ("General", "categories.general"),
        ("Hallucination", "categories.hallucination"),
        ("Reasoning", "categories.reasoning"),
        ("Overall Accuracy", "metrics.overall"),
        ("Macro Average Accuracy", "metrics.macro"),
    ),
    extra_tables=("subsets", "sources"),
    repeated_ids="keep",
)
