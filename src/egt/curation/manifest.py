"""The curation manifest and the selected dataset (EGT arXiv 2602.01884 §3.3; docs/methods.md §3).

``curate_pool`` writes into ``DIR``::

    manifest.jsonl   one line per pool item, in the selector's order (rank 0 first):
                     {"id", "scores": {"answer", "sentence", "mixed", "vote", "peak", "accuracy",
                                       "format_failures"},
                      "kept": bool, "rank": int, "selector": "entropy:<by>" | "random" | "accuracy",
                      "by": "answer" | "sentence" | "mixed" | "vote" | "peak", "reason": str}
    selected.jsonl   the kept records in rank order, in the pairs format of ``egt.records``
                     (``selected.parquet`` when the data embeds its images)
    images/...       hard links (copies across file systems) of the kept items' images, at their
                     original relative paths, so ``selected.jsonl`` resolves them next to itself
    selection.json   the config, the counts and, on the lab, the kept / dropped noise rates

Contract with the curriculum sampler: it reads the kept lines of ``manifest.jsonl`` and orders
them low → high entropy by ``scores[by]`` ascending — ``by`` is on every line and in
``selection.json`` — with a missing (``null``) entropy last and ties broken by id.
:func:`curriculum_order` is that ordering, with the entropy selector's two refinements
(:func:`egt.curation.selectors.entropy_key`): an item with ``scores.format_failures > 0`` (rollouts
the strict parser rejected; its entropies are means over the rollouts that parsed) comes after
every item without, as less certain — failed rollouts never make an item look certain — and
``by = vote`` (coarse: K + 1 values at most) breaks its ties by ``scores.sentence`` before the id.
``rank`` is the *selector's* order (for ``entropy`` the same thing; for ``random`` /
``accuracy`` not). The ``reason`` of each line says in words why it was kept or dropped,
including when its format failures put it behind the clean items.

A scores file and a dataset that do not hold the same ids are refused, naming a few ids.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from egt.curation.selectors import check_kind, entropy_key, item_scores, select
from egt.errors import EgtError
from egt.io import atomic_write_json, atomic_write_text

MANIFEST, SELECTED, SELECTION = "manifest.jsonl", "selected.jsonl", "selection.json"


def check_same_ids(score_ids: Sequence[str], data_ids: Sequence[str], scores_path, data_path) -> None:
    """Refuse a scores file and a dataset that do not cover exactly the same ids."""
    from egt.entropy.score_store import show_ids

    data_set, score_set = set(data_ids), set(score_ids)
    extra = [i for i in score_ids if i not in data_set]
    missing = [i for i in data_ids if i not in score_set]
    problems = []
    if extra:
        problems.append(f"{len(extra)} scored id(s) are not in {data_path}: {show_ids(extra)}")
    if missing:
        problems.append(f"{len(missing)} id(s) of {data_path} have no scores in {scores_path}: {show_ids(missing)}")
    if problems:
        raise EgtError(
            "scores and data do not match: "
            + "; ".join(problems)
            + " — score this dataset with 'egt score' first, or pass the matching --data"
        )


def curriculum_order(rows: Sequence[dict]) -> list[dict]:
    """The kept manifest rows low → high entropy by each row's ``by`` (module doc): format failures
    last, then ``scores[by]`` ascending, missing last, vote ties by sentence entropy, ties by id."""
    return sorted((r for r in rows if r["kept"]), key=lambda r: entropy_key(r["scores"], r["by"], r["id"]))


def read_manifest(path: str | Path) -> list[dict]:
    """Manifest rows, checked for the fields the curriculum needs."""
    from egt.records import iter_jsonl

    rows = []
    for lineno, row in iter_jsonl(path):
        for key in ("id", "scores", "kept", "rank", "by"):
            if not isinstance(row, dict) or key not in row:
                raise EgtError(f"{path}: line {lineno}: field {key!r}: missing")
        rows.append(row)
    return rows


def _link_images(pairs: Sequence, images_root: Path, out_dir: Path) -> int:
    """Hard-link (or copy) each kept item's image files under ``out_dir`` at the same relative path."""
    from egt.records import resolve_image_path

    linked = 0
    for pair in pairs:
        for ref in pair.images:
            if not isinstance(ref, str):
                continue
            src = resolve_image_path(ref, images_root, record_id=pair.id)
            dst = resolve_image_path(ref, out_dir, record_id=pair.id)
            if dst.exists() and dst.stat().st_size == src.stat().st_size and os.path.samefile(src, dst):
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
            linked += 1
    return linked


def _rate(pairs: Sequence, key: str) -> float | None:
    values = [bool(p.meta[key]) for p in pairs if key in p.meta]
    return round(sum(values) / len(values), 4) if values else None


def curate_pool(
    scores_path: str | Path,
    data_path: str | Path,
    out_dir: str | Path,
    *,
    selector: str = "entropy",
    by: str = "answer",
    n: int = 0,
    fraction: float = 0.0,
    seed: int = 0,
    lam: float = 0.5,
    images_dir: str | Path | None = None,
    link_images: bool = True,
) -> dict:
    """Select from a scored pool and write the manifest, the selected data and ``selection.json``.

    Everything is checked (scores vs data ids, the keep count, image files) before any file is
    written; each file is written atomically, ``selection.json`` last.
    """
    from egt.entropy.score_store import read_scores
    from egt.records import default_images_root, read_pairs, write_pairs

    if not 0.0 <= lam <= 1.0:
        raise EgtError(f"--lam: must be in [0, 1], got {lam}")
    check_kind(by)
    _, records = read_scores(scores_path)
    pairs = read_pairs(data_path)
    check_same_ids([r["id"] for r in records], [p.id for p in pairs], scores_path, data_path)
    rows = select(item_scores(records, lam), selector, by=by, n=n, fraction=fraction, seed=seed)
    by_id = {p.id: p for p in pairs}
    kept = [by_id[r["id"]] for r in rows if r["kept"]]
    dropped = [by_id[r["id"]] for r in rows if not r["kept"]]
    root = Path(images_dir) if images_dir else default_images_root(data_path)
    if images_dir and not root.is_dir():
        raise EgtError(f"--images_dir: {root}: no such folder")
    embedded = any(not isinstance(ref, str) for p in kept for ref in p.images)
    if link_images and not embedded:
        from egt.benchmarks.images import missing_images

        missing = missing_images(kept, root)
        if missing:
            raise EgtError(
                f"{len(missing)} image file(s) of kept items are missing under {root.resolve()} "
                f"(first: {missing[0][1]}); pass --images_dir, or --link_images false"
            )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    linked = _link_images(kept, root, out) if link_images and not embedded else 0
    selected_path = out / ("selected.parquet" if embedded else SELECTED)
    write_pairs(kept, selected_path, images_root=root)
    atomic_write_text(out / MANIFEST, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    accuracy = {
        "kept": _mean([r["scores"]["accuracy"] for r in rows if r["kept"]]),
        "dropped": _mean([r["scores"]["accuracy"] for r in rows if not r["kept"]]),
    }
    selection = {
        "selector": rows[0]["selector"],
        "by": by,
        "seed": seed,
        "lam": lam,
        "n": n,
        "fraction": fraction,
        "scores": str(Path(scores_path).resolve()),
        "data": str(Path(data_path).resolve()),
        "images_root": str(out.resolve()) if link_images and not embedded else str(root.resolve()),
        "counts": {
            "pool": len(rows),
            "kept": len(kept),
            "dropped": len(dropped),
            "missing_" + by: sum(r["scores"][by] is None for r in rows),
            "with_format_failures": sum(r["scores"]["format_failures"] > 0 for r in rows),
        },
        "mean_rollout_accuracy": accuracy,
        "files": {"manifest": MANIFEST, "selected": selected_path.name, "linked_images": linked},
        "curriculum": (
            "kept manifest rows ordered by scores.format_failures, then scores[by] ascending, null last, "
            "vote ties by scores.sentence, ties by id"
        ),
    }
    if any("flipped" in p.meta for p in pairs):
        selection["lab"] = {
            "flip_rate_kept": _rate(kept, "flipped"),
            "flip_rate_dropped": _rate(dropped, "flipped"),
            "hard_rate_kept": _rate(kept, "hard"),
            "hard_rate_dropped": _rate(dropped, "hard"),
        }
    atomic_write_json(out / SELECTION, selection)
    return selection


def _mean(values: Sequence) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


__all__ = ["MANIFEST", "SELECTED", "SELECTION", "check_same_ids", "curate_pool", "curriculum_order", "read_manifest"]
