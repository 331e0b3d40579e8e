"""MM-RLHF-RewardBench (Zhang et al., 2025, MM-RLHF): 170 pairs over 46 questions.

Release format (``mm_reward_bench.jsonl``, as shipped in yfzhang114/r1_reward): ``id``, ``image``
(e.g. ``mcq/073712.png``) or ``video`` (a frame folder, ``video/<id>``), ``prompt``, ``chosen``,
``rejected``, ``chosen_reason``, ``rejected_reason``; paths are relative to the benchmark's image
root.

Repeated ids (rule ``group``): the pairs of one question share its ``id`` on purpose (170 pairs
over 46 ids), and Acc+ is computed over them. Each pair gets the item key ``{id}#{k}`` (k = 0, 1, …
in file order) and keeps the question's id in ``meta["question_id"]`` (and as ``original_id`` in
``predictions.jsonl``). Ids may hold ``/`` (``cauldron/dvqa/images/…png_2406708``) and a video's
folder is not its id (``video/-77dfCjTbSc`` for ``-77dfCjTbSc_2_94421``): both are read as given.

Category: the first path component among mcq / long / short / safety / video (else the first
such component anywhere in the path). A video item's images are the image files of its frame
folder in natural order (``2.jpg`` before ``10.jpg``); an absent or empty folder stays as the one
path ``video/<id>`` so the missing-image check reports it.

Metrics: ``acc`` = pair accuracy (chosen strictly preferred); ``acc_plus`` = fraction of question
ids all of whose pairs are correct; both per category. A pair that scores 0.5 under
``--tie_policy half`` is not "correct" for Acc+.

Tie / parse-failure rule (default ``wrong``): both score 0, as R1-Reward's ``get_acc.py`` counts a
pair correct only when ``reward_chosen > reward_rejected``. The chosen response is always
stored first, so the stored order alone would reward a judge that always says "1".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from egt.benchmarks.base import adapter_benchmark
from egt.benchmarks.common import (
    Rows,
    frame_paths,
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

NAME = "mm_rlhf_rewardbench"
CATEGORIES = ("mcq", "long", "short", "safety", "video")
TIE_POLICY = "wrong"
RULE = "R1-Reward's get_acc.py counts a pair correct only when reward_chosen > reward_rejected"
RELEASE_COUNTS = (("mcq", 42), ("long", 37), ("short", 34), ("safety", 32), ("video", 25))
REPEATED_IDS_RULE = "the pairs of one question share its id; Acc+ needs all of them right"


def category_of(media_path: str) -> str | None:
    parts = [p.lower() for p in PurePosixPath(media_path.replace("\\", "/")).parts]
    if parts and parts[0] in CATEGORIES:
        return parts[0]
    return next((p for p in parts if p in CATEGORIES), None)


def load(path: str | Path, images_dir: str | Path | None = None) -> list[PreferencePair]:
    """Read the JSONL release; video frame folders are listed under ``images_dir``."""
    pairs = Rows()
    for loc, row in read_records(path):
        row = require_row(loc, row)
        qid = require_id(loc, row)
        prompt = require_str(loc, row, "prompt")
        chosen, rejected = require_str(loc, row, "chosen"), require_str(loc, row, "rejected")
        image, video = row.get("image"), row.get("video")
        media_field = "image" if image else "video"
        media = image or video
        if not isinstance(media, str) or not media:
            raise field_error(loc, row, "image", "missing: each record needs an 'image' path or a 'video' frame folder")
        category = category_of(media)
        if category is None:
            raise field_error(
                loc, row, media_field, f"{media!r} names no category folder (one of {', '.join(CATEGORIES)})"
            )
        meta = {}
        if media_field == "video":
            frames = frame_paths(media, images_dir, record_id=qid)
            images = frames or [media]
            meta.update(video=media, frames=len(frames))
        else:
            images = [media]
        pairs.append(
            PreferencePair(
                id=qid,
                question=prompt,
                responses=(chosen, rejected),
                preferred=0,
                images=images,
                category=category,
                meta=meta,
            )
        )
    return nonempty(key_rows(pairs, "group", path), path)


def score_view(predictions: Sequence[Prediction], pairs: Mapping[str, PreferencePair], tie_policy: str) -> dict:
    items = scored(predictions, tie_policy)
    question_ok: dict[str, bool] = {}
    question_category: dict[str, str] = {}
    by_category: dict[str, list[float]] = defaultdict(list)
    for p, s in items:
        pair = pairs[p.id]
        qid = pair.meta.get("question_id", pair.id)
        question_ok[qid] = question_ok.get(qid, True) and s == 1.0
        question_category[qid] = pair.category
        by_category[pair.category].append(s)
    categories = {}
    for c in [c for c in CATEGORIES if c in by_category] + sorted(c for c in by_category if c not in CATEGORIES):
        qids = [q for q, qc in question_category.items() if qc == c]
        categories[c] = {
            "n": len(by_category[c]),
            "n_questions": len(qids),
            "accuracy": mean(by_category[c]),
            "acc_plus": mean([float(question_ok[q]) for q in qids]),
        }
    return {
        "metrics": {"acc": mean([s for _, s in items]), "acc_plus": mean([float(v) for v in question_ok.values()])},
        "categories": categories,
    }


BENCHMARK = adapter_benchmark(
    globals(),
    title="MM-RLHF-RewardBench",
    headline="{acc} Acc / {acc_plus} Acc+",
    headline_metrics=("acc", "acc_plus"),
    columns=(
        ("Mcq", "categories.mcq"),
        ("Long", "categories.long"),
        ("Short", "categories.short"),
        ("Safety", "categories.safety"),
        ("Video", "categories.video"),
        ("Acc", "metrics.acc"),
        ("Acc+", "metrics.acc_plus"),
    ),
    category_fields=("accuracy", "acc_plus"),
    repeated_ids="group",
)
