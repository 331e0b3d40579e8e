"""What every benchmark adapter shares: reading release files, checking fields, combining orders.

Release files come as JSONL, a JSON list, parquet (images embedded as ``{bytes, path}`` cells) or
a folder (a saved ``datasets`` folder, or a snapshot holding parquet files), all read by
:func:`egt.data.readers.read_records` , which yields
``(location, row)`` so every validation error names the file and the line or record.
:func:`key_rows` applies a benchmark's rule for repeated ids (``refuse`` / ``keep`` / ``group``,
see :mod:`egt.benchmarks.base`) and :func:`release_summary` says what was read: items
per category against the full release's counts, repeated ids, skipped rows.
:func:`combine_views` turns one benchmark's per-order scoring into the report block:
when both orders were judged, every headline number is computed on each order on its own and
the headline is their mean (``overall_stored_order``, ``overall_swapped_order`` are kept).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from egt.data.readers import IMAGE_SUFFIXES, check_unique_ids, decode_image_cell, field_error, resolve_image_path
from egt.errors import EgtError
from egt.evaluation.metrics import aggregate as base_aggregate
from egt.evaluation.metrics import score_prediction
from egt.evaluation.runner import Prediction
from egt.records import PreferencePair

# A view scorer: the predictions of one presentation order (one per item) → report blocks
# {"metrics": {...}, "categories": {...}, optional extra blocks}.
ViewScorer = Callable[[Sequence[Prediction], Mapping[str, PreferencePair], str], dict]

COUNT_KEYS = ("n", "n_questions", "weight")  # copied, never averaged, when views are combined


# --------------------------------------------------------------------------------------------
# field checks (every message names the location and the field: egt.data.readers.field_error)


def require_row(loc: str, row: Any) -> dict:
    if not isinstance(row, dict):
        raise EgtError(f"{loc}: expected a JSON object, got {type(row).__name__}")
    return row


def require_str(loc: str, row: Mapping, name: str, *, allow_empty: bool = True) -> str:
    value = row.get(name)
    if not isinstance(value, str) or (not allow_empty and not value):
        kind = "a string" if allow_empty else "a non-empty string"
        raise field_error(loc, row, name, f"missing or not {kind} (got {value!r:.60})")
    return value


def require_id(loc: str, row: Mapping, name: str = "id") -> str:
    value = row.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise field_error(loc, row, name, "missing or not a non-empty string")
    return str(value)


def optional_str(loc: str, row: Mapping, name: str) -> str | None:
    value = row.get(name)
    if value is not None and not isinstance(value, str):
        raise field_error(loc, row, name, f"must be a string, got {type(value).__name__}")
    return value


def image_cell(loc: str, row: Mapping, name: str) -> Any:
    """An image field: a relative path, or an embedded ``{bytes, path}`` cell decoded to PIL."""
    return decode_image_cell(row.get(name), loc, row, name)


def nonempty(pairs: list[PreferencePair], path: object) -> list[PreferencePair]:
    if not pairs:
        raise EgtError(f"{path}: the dataset is empty")
    return pairs


# --------------------------------------------------------------------------------------------
# repeated ids, skipped rows, what was read


class Rows(list):
    """The pairs a loader read, plus the rows it left out on purpose — ``skipped`` maps a reason
    (e.g. "winner = 'tie', a tie: no preferred response") to its count — and ``notes`` on how it
    read them (an inferred label encoding). A plain list everywhere else."""

    def __init__(self, pairs=(), skipped: Mapping[str, int] | None = None, notes: Sequence[str] = ()):
        super().__init__(pairs)
        self.skipped = dict(skipped or {})
        self.notes = list(notes)


def key_rows(pairs: list[PreferencePair], rule: str, path: object, why: str = "") -> list[PreferencePair]:
    """Apply a benchmark's rule for repeated ids (in place; ``pairs`` keeps its type).

    ``refuse``: a repeated id is an error naming it and ``why``. ``keep``: the rows of a repeated
    id become ``{id}#0``, ``{id}#1``… in file order (ids that occur once stay as they are).
    ``group``: every row becomes ``{id}#k`` (k = 0, 1… per id), ``meta["question_id"]`` = the id.
    Both keep the release's id as ``meta["original_id"]``; a key that collides with an id the file
    already has is an error."""
    if rule == "refuse":
        check_unique_ids((p.id for p in pairs), path, why)
        return pairs
    if rule not in ("keep", "group"):
        raise ValueError(f"unknown repeated-id rule {rule!r}")
    counts = Counter(p.id for p in pairs)
    seen: dict[str, int] = defaultdict(int)
    for p in pairs:
        rid = p.id
        if rule == "group" or counts[rid] > 1:
            k = seen[rid]
            seen[rid] += 1
            p.id = f"{rid}#{k}"
            p.meta["original_id"] = rid
            if rule == "group":
                p.meta["question_id"] = rid
    keys = Counter(p.id for p in pairs)
    clash = next((k for k, n in keys.items() if n > 1), None)
    if clash is not None:
        raise EgtError(
            f"{path}: id={clash!r}: field 'id': the item key {clash!r} given to a repeated id's row "
            "is also an id of the file; rename one of them"
        )
    return pairs


def repeated_ids(pairs: Sequence[PreferencePair]) -> dict[str, list[str]]:
    """``{release id: [item keys]}`` for every id that names more than one row (in file order)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for p in pairs:
        if "original_id" in p.meta:
            groups[p.meta["original_id"]].append(p.id)
    return {rid: keys for rid, keys in groups.items() if len(keys) > 1}


SHOW_REPEATED = 5


def release_summary(pairs: Sequence[PreferencePair], bench) -> dict:
    """What was read from a release: items per category (with the full release's counts, when the
    benchmark knows them), the ids that repeat and the rule that kept them, the rows skipped."""
    expected = dict(bench.release_counts)
    counts = Counter(p.category for p in pairs if p.category is not None)
    known = list(expected) + [c for c in bench.categories if c in counts and c not in expected]
    order = known + sorted(c for c in counts if c not in known)
    categories = {c: counts.get(c, 0) for c in order}
    out: dict[str, Any] = {"n_items": len(pairs), "categories": categories}
    if expected:
        out["release_categories"] = expected
        out["matches_release"] = categories == expected
    groups = repeated_ids(pairs)
    out["repeated_ids"] = {
        "rule": bench.repeated_ids,
        "why": bench.repeated_ids_rule,
        "ids": len(groups),
        "rows": sum(len(v) for v in groups.values()),
        "examples": {rid: keys for rid, keys in list(groups.items())[:SHOW_REPEATED]},
    }
    skipped = getattr(pairs, "skipped", {})
    if skipped:
        out["skipped"] = dict(skipped)
    notes = getattr(pairs, "notes", [])
    if notes:
        out["notes"] = list(notes)
    return out


def release_lines(summary: Mapping[str, Any], title: str = "") -> list[str]:
    """The summary in a few printed lines (console and report.md)."""
    cats = summary.get("categories") or {}
    head = f"read {summary['n_items']:,} items" + (f" of {title}" if title else "")
    if cats:
        head += ": " + ", ".join(f"{c if not c.isdigit() else repr(c)} {n:,}" for c, n in cats.items())
    expected = summary.get("release_categories")
    if expected:
        full = " / ".join(f"{n:,}" for n in expected.values())
        head += (
            f" (the full release: {full} — matches)"
            if summary.get("matches_release")
            else f" (the full release has {', '.join(f'{c} {n:,}' for c, n in expected.items())})"
        )
    lines = [head]
    rep = summary.get("repeated_ids") or {}
    if rep.get("ids"):
        shown = list(rep["examples"].items())[:3]
        eg = "; ".join(
            f"{rid} → " + ", ".join([keys[0]] + ["#" + k.rpartition("#")[2] for k in keys[1:]]) for rid, keys in shown
        )
        more = f" (and {rep['ids'] - len(shown)} more)" if rep["ids"] > len(shown) else ""
        kept = "grouped as the pairs of one question" if rep.get("rule") == "group" else "each row kept as its own item"
        lines.append(f"repeated ids: {rep['ids']} id(s) on {rep['rows']} rows, {kept} ({rep['why']}): {eg}{more}")
    for reason, n in (summary.get("skipped") or {}).items():
        lines.append(f"skipped {n} row(s): {reason}")
    lines += list(summary.get("notes") or [])
    return lines


# --------------------------------------------------------------------------------------------
# frame folders (video items)


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def frame_paths(folder_ref: str, root: str | Path | None, record_id: str) -> list[str]:
    """The image files of a frame folder, as paths relative to ``root``, in natural order
    (``frame_2`` before ``frame_10``); empty when the folder is absent or holds no images."""
    folder = resolve_image_path(folder_ref, root, record_id=record_id)
    if not folder.is_dir():
        return []
    names = sorted(
        (f.name for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key
    )
    return [f"{folder_ref.rstrip('/')}/{name}" for name in names]


# --------------------------------------------------------------------------------------------
# scoring helpers


def mean(xs: Sequence[float]) -> float | None:
    return round(sum(xs) / len(xs), 6) if xs else None


def scored(predictions: Sequence[Prediction], tie_policy: str) -> list[tuple[Prediction, float]]:
    return [(p, score_prediction(p, tie_policy)) for p in predictions]


def grouped_accuracy(
    items: Sequence[tuple[Prediction, float]], key: Callable[[Prediction], str | None], order: Sequence[str] = ()
) -> dict[str, dict]:
    """``{group: {"n", "accuracy"}}`` over the groups ``key`` gives (None is left out); groups in
    ``order`` come first in that order, the rest sorted."""
    groups: dict[str, list[float]] = defaultdict(list)
    for p, s in items:
        k = key(p)
        if k is not None:
            groups[k].append(s)
    names = [g for g in order if g in groups] + sorted(g for g in groups if g not in order)
    return {g: {"n": len(groups[g]), "accuracy": mean(groups[g])} for g in names}


def split_views(predictions: Sequence[Prediction]) -> dict[str, list[Prediction]]:
    """One list per presentation order when items were judged in both, else one list."""
    counts: dict[str, int] = defaultdict(int)
    for p in predictions:
        counts[p.id] += 1
    if predictions and all(c == 2 for c in counts.values()):
        return {
            "stored_order": [p for p in predictions if not p.swapped],
            "swapped_order": [p for p in predictions if p.swapped],
        }
    return {"": list(predictions)}


def _merge(values: list[Any], key: str = "") -> Any:
    values = [v for v in values if v is not None]
    if not values:
        return None
    if all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {k: _merge([v.get(k) for v in values], k) for k in keys}
    if key in COUNT_KEYS or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return values[0]
    return round(sum(values) / len(values), 6)


def combine_views(
    predictions: Sequence[Prediction], pairs: Sequence[PreferencePair], tie_policy: str, score_view: ViewScorer
) -> dict:
    """The report blocks of a benchmark: its own headline metrics (mean over the orders judged,
    with the per-order values), its categories, then the shared counts of
    :func:`egt.evaluation.metrics.aggregate` (accuracy, tie and format-failure rates, order
    consistency, the lenient-parse accuracy), ties and parse failures."""
    by_id = {p.id: p for p in pairs}
    views = {name: score_view(v, by_id, tie_policy) for name, v in split_views(predictions).items()}
    combined = _merge(list(views.values()))
    metrics = dict(combined.pop("metrics"))
    if len(views) > 1:
        for name, block in views.items():
            for k, v in block["metrics"].items():
                metrics[f"{k}_{name}"] = v
    base = base_aggregate(predictions, tie_policy=tie_policy)
    for k, v in base["metrics"].items():
        metrics.setdefault(k, v)
    return {
        "metrics": metrics,
        "categories": combined.pop("categories", {}),
        **combined,
        "ties": base["ties"],
        "parse_failures": base["parse_failures"],
    }
