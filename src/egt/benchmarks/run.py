"""Run a judge on a benchmark, or re-aggregate saved predictions, into one report dict.

The report keeps the evaluation layout (``judge``, ``n_items``, ``order``, ``metrics``,
``categories``, ``ties``, ``parse_failures``) and adds ``benchmark``, ``tie_policy`` and the
``scoring_rule`` in words. Predictions are per item and order, mapped back to the stored
responses, so a saved ``predictions.jsonl`` can be re-aggregated (another tie policy, a fixed
category rule) without running the judge again. A prediction's ``id`` is the item key; where a
benchmark keys a repeated id's rows ``{id}#k`` the release's id is kept as ``original_id``, and
re-aggregation reads the same keys back from the same release (they follow the file order).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from egt.benchmarks.base import Benchmark
from egt.data.readers import iter_jsonl
from egt.errors import EgtError
from egt.evaluation.distributed import distributed_state
from egt.evaluation.runner import Prediction, build_requests, run_judge
from egt.judge.base import Judge
from egt.records import PreferencePair


@dataclass
class ItemPrediction(Prediction):
    """A prediction that also names the release's own id where the item key differs from it."""

    original_id: str | None = None

    def to_json(self) -> dict:
        out = super().to_json()
        if "original_id" not in out:
            return out
        original = out.pop("original_id")
        return {"id": out.pop("id"), "original_id": original, **out}


def with_original_ids(predictions: Sequence[Prediction], pairs: Sequence[PreferencePair]) -> list[ItemPrediction]:
    original = {p.id: p.meta.get("original_id") for p in pairs}
    return [
        ItemPrediction(**{f.name: getattr(p, f.name) for f in fields(Prediction)}, original_id=original.get(p.id))
        for p in predictions
    ]


def report_head(
    judge_name: str, bench: Benchmark, pairs: Sequence[PreferencePair], order: str, seed: int, tie_policy: str
) -> dict:
    return {
        "judge": judge_name,
        "benchmark": bench.name,
        "n_items": len(pairs),
        "order": order,
        "seed": seed,
        "tie_policy": tie_policy,
        "scoring_rule": bench.scoring_rule(tie_policy),
    }


def evaluate_benchmark(
    judge: Judge,
    bench: Benchmark,
    pairs: Sequence[PreferencePair],
    *,
    order: str = "both",
    seed: int = 0,
    images_root: str | Path | None = None,
    batch_size: int = 32,
    tie_policy: str | None = None,
) -> tuple[dict, list[Prediction]]:
    """Judge ``pairs`` in the chosen order(s) and aggregate with the benchmark's own metrics."""
    tie_policy = tie_policy or bench.tie_policy
    start = time.perf_counter()
    requests = build_requests(pairs, order, seed, images_root, load_images=judge.reads_images)
    dist = distributed_state()  # None unless launched with several processes (accelerate launch)
    if dist is None:
        judged = run_judge(judge, requests, batch_size=batch_size)
    else:  # batches dealt to ranks, gathered back in order: the single-process list (egt.evaluation.sharded)
        from egt.evaluation.sharded import run_judge_sharded

        judged = run_judge_sharded(judge, requests, batch_size, dist)
    predictions = with_original_ids(judged, pairs)
    report = {
        **report_head(judge.name, bench, pairs, order, seed, tie_policy),
        **bench.aggregate(predictions, pairs, tie_policy),
        "wall_seconds": round(time.perf_counter() - start, 2),
    }
    return report, predictions


def read_predictions(path: str | Path) -> list[Prediction]:
    """Predictions saved by a previous run (``predictions.jsonl``)."""
    path = Path(path)
    if not path.is_file():
        raise EgtError(f"{path}: no such predictions file")
    known = set(ItemPrediction.__dataclass_fields__)
    out = []
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj, dict) or not {"id", "swapped", "status", "preferred"} <= set(obj):
            raise EgtError(f"{path}: line {lineno}: not a prediction (needs id, swapped, status, preferred)")
        obj = {"predicted": None, **{k: v for k, v in obj.items() if k in known}}  # None fields are not written
        if obj.get("scores") is not None:
            obj["scores"] = tuple(obj["scores"])
        out.append(ItemPrediction(**obj))
    return out


def infer_order(predictions: Sequence[Prediction]) -> str:
    ids = [p.id for p in predictions]
    if len(ids) == 2 * len(set(ids)):
        return "both"
    return "stored" if not any(p.swapped for p in predictions) else "random"


def reaggregate(
    bench: Benchmark,
    pairs: Sequence[PreferencePair],
    predictions: Sequence[Prediction],
    tie_policy: str | None = None,
    source: str = "predictions",
) -> dict:
    """The report of saved ``predictions`` against ``pairs``; every prediction must match a pair."""
    tie_policy = tie_policy or bench.tie_policy
    by_id = {p.id: p for p in pairs}
    unknown = [p.id for p in predictions if p.id not in by_id]
    if unknown:
        keys_of = {}
        for p in pairs:
            keys_of.setdefault(p.meta.get("original_id"), []).append(p.id)
        hint = ""
        if len(keys_of.get(unknown[0], [])) > 1:
            hint = (
                f"; {unknown[0]!r} names {len(keys_of[unknown[0]])} rows of the data, whose items are "
                f"{', '.join(keys_of[unknown[0]])}: predictions name items by these keys"
            )
        raise EgtError(f"{source}: {len(unknown)} prediction(s) name items not in the data, e.g. {unknown[0]!r}{hint}")
    judged = {p.id for p in predictions}
    kept = [p for p in pairs if p.id in judged]
    for p in predictions:
        if p.preferred != by_id[p.id].preferred:
            raise EgtError(f"{source}: id={p.id!r}: the saved label differs from the data's; wrong data file?")
    return {
        **report_head(f"saved predictions ({source})", bench, kept, infer_order(predictions), 0, tie_policy),
        **bench.aggregate(predictions, kept, tie_policy),
    }


def predictions_jsonl(predictions: Sequence[Prediction]) -> str:
    return "".join(json.dumps(p.to_json()) + "\n" for p in predictions)
