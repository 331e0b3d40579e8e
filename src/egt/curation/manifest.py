"""The curation manifest and the selected dataset (EGT arXiv 2602.01884 §3.3; docs/methods.md §3).

``curate_pool`` writes into ``DIR``::

    manifest.jsonl   one line per pool item, in the selector's order (rank 0 first):
                     {"id", "scores": {"answer", "sentence", "mixed", "vote", "peak", "accuracy",
                                       "format_failures"},
                      "kept": bool, "rank": int,
                     "selector": "entropy:<by>" | "random" | "accuracy" | "pass_rate",
                      "by": "answer" | "sentence" | "mixed" | "vote" | "peak", "reason": str}
    selected.jsonl   the kept records in rank order, in the pairs format of ``egt.records``
                     (``selected.parquet`` when the data embeds its images)
    images/...       hard links (copies across file systems) of the kept items' images, at their
                     original relative paths, so ``selected.jsonl`` resolves them next to itself
    selection.json   the config, the counts and, on the lab, the kept / dropped noise rates; with the
                     pass-rate selector also ``pass_band`` and the counts inside, below and above it

This module is the one reader of the manifest (:func:`read_manifest` → :class:`ManifestEntry`), for
curation and for RL alike. Contract with the curriculum sampler (:mod:`egt.rl.curriculum`): RL
trains on the kept lines only (:func:`kept_order_keys` aligns them with the training data) and orders
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
from dataclasses import dataclass
from pathlib import Path

from egt.curation.selectors import DEFAULT_PASS_BAND, check_kind, entropy_key, item_scores, pass_band_side, select
from egt.data.atomic import atomic_write_json, atomic_write_text
from egt.data.readers import missing_images
from egt.errors import EgtError

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


@dataclass(frozen=True)
class ManifestEntry:
    """One pool item of a curation manifest (one line of ``manifest.jsonl``)."""

    id: str
    scores: dict[str, float | None]
    kept: bool
    rank: int | None = None
    selector: str | None = None
    by: str | None = None
    reason: str | None = None

    def order_key(self, by: str = "") -> tuple:
        """The curation sort key (:func:`egt.curation.selectors.entropy_key`) by ``by``, else the line's own
        ``by``, else ``answer``: format failures last, then the entropy ascending (missing last), vote ties
        by sentence entropy, then the id."""
        return entropy_key(self.scores, by or self.by or "answer", self.id)


def manifest_path(path: str | Path) -> Path:
    """``DIR`` → ``DIR/manifest.jsonl``; a file path is kept."""
    path = Path(path)
    return path / MANIFEST if path.is_dir() else path


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read a curation manifest (``DIR`` or ``DIR/manifest.jsonl``); every error names the file, the line
    and the field. ``id``, ``scores`` and ``kept`` are required; ``rank``, ``selector``, ``by`` and
    ``reason`` (always written by :func:`curate_pool`) are optional."""
    from egt.data.readers import iter_jsonl, record_id

    path = manifest_path(path)
    if not path.is_file():
        raise EgtError(f"{path}: curation manifest not found")
    entries, seen = [], set()
    for lineno, obj in iter_jsonl(path):
        here = f"{path}: line {lineno}"
        rid = record_id(obj, here)
        if rid in seen:
            raise EgtError(f"{here} (id={rid!r}): field 'id': duplicate id")
        seen.add(rid)
        if not isinstance(obj.get("scores"), dict):
            raise EgtError(f"{here} (id={rid!r}): field 'scores': missing or not an object")
        if not isinstance(obj.get("kept"), bool):
            raise EgtError(f"{here} (id={rid!r}): field 'kept': must be true or false")
        optional = {k: obj.get(k) for k in ("rank", "selector", "by", "reason")}
        entries.append(ManifestEntry(id=rid, scores=obj["scores"], kept=obj["kept"], **optional))
    if not entries:
        raise EgtError(f"{path}: the manifest is empty")
    return entries


def curriculum_order(entries: Sequence[ManifestEntry], by: str = "") -> list[ManifestEntry]:
    """The kept entries low → high entropy (module doc): :meth:`ManifestEntry.order_key` ascending."""
    return sorted((e for e in entries if e.kept), key=lambda e: e.order_key(by))


def _kept_positions(
    entries: Sequence[ManifestEntry], data_ids: Sequence[str], by: str, source: str
) -> list[tuple[int, ManifestEntry]]:
    """``(position in data_ids, entry)`` of each kept entry, in data order, after every check."""
    from egt.entropy.score_store import show_ids

    position = {rid: i for i, rid in enumerate(data_ids)}
    kept = [e for e in entries if e.kept]
    if not kept:
        raise EgtError(f"{source}: no item is kept")
    missing = [e.id for e in kept if e.id not in position]
    if missing:
        raise EgtError(f"{source}: {len(missing)} kept id(s) are not in the training data: {show_ids(missing)}")
    keys = {e.id: by or e.by or "answer" for e in kept}
    absent = [e.id for e in kept if keys[e.id] not in e.scores]
    if absent:
        raise EgtError(f"{source}: field 'scores.{keys[absent[0]]}': missing for id(s) {show_ids(absent)}")
    bad = [e.id for e in kept if not _number_or_null(e.scores[keys[e.id]])]
    if bad:
        raise EgtError(f"{source}: field 'scores.{keys[bad[0]]}': not a number or null for id(s) {show_ids(bad)}")
    return sorted(((position[e.id], e) for e in kept), key=lambda pair: pair[0])


def _number_or_null(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def kept_items(
    entries: Sequence[ManifestEntry], data_ids: Sequence[str], by: str = "", source: str = "manifest"
) -> tuple[list[int], list[float | None]]:
    """Align a manifest with a dataset: positions in ``data_ids`` of the kept items, and their ``scores[by]``.

    Positions follow the dataset order; ``by=""`` takes each line's own ``by`` (else ``answer``).
    A ``null`` score is kept as None (it sorts last). Errors (before any training): kept ids absent
    from the data, a score that is missing or not a number or null, nothing kept — each naming ids.
    """
    kept = _kept_positions(entries, data_ids, by, source)
    scores = [e.scores[by or e.by or "answer"] for _, e in kept]
    return [p for p, _ in kept], [None if s is None else float(s) for s in scores]


def kept_order_keys(
    entries: Sequence[ManifestEntry], data_ids: Sequence[str], by: str = "", source: str = "manifest"
) -> tuple[list[int], list[tuple]]:
    """:func:`kept_items` with each kept item's curation sort key (:meth:`ManifestEntry.order_key`) instead of
    its bare score, so the curriculum visits items in exactly the order :func:`curriculum_order` gives."""
    kept = _kept_positions(entries, data_ids, by, source)
    return [p for p, _ in kept], [e.order_key(by) for _, e in kept]


def link_pair_images(pairs: Sequence, images_root: Path, out_dir: Path) -> int:
    """Hard-link (or copy) each kept item's image files under ``out_dir`` at the same relative path."""
    from egt.data.readers import resolve_image_path

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


def write_linked_pool(
    pairs: Sequence, root: Path, out: Path, name: str, link_images: bool, what: str
) -> tuple[Path, int]:
    """Write ``pairs`` to ``out/name`` (``.parquet`` instead when images are embedded) with their image
    files hard-linked (or copied) beside it; missing files are refused first, named as ``what``.
    Returns the file written and the number of images linked."""
    from egt.records import write_pairs

    embedded = any(not isinstance(ref, str) for p in pairs for ref in p.images)
    if link_images and not embedded:
        missing = missing_images(pairs, root)
        if missing:
            raise EgtError(
                f"{len(missing)} image file(s) {what} are missing under {root.resolve()} "
                f"(first: {missing[0][1]}); pass --images_dir, or --link_images false"
            )
    out.mkdir(parents=True, exist_ok=True)
    linked = link_pair_images(pairs, root, out) if link_images and not embedded else 0
    target = out / (Path(name).with_suffix(".parquet").name if embedded else name)
    write_pairs(pairs, target, images_root=root)
    return target, linked


def curate_pool(
    scores_path: str | Path,
    data_path: str | Path,
    out_dir: str | Path,
    *,
    selector: str = "entropy",
    by: str = "peak",
    n: int = 0,
    fraction: float = 0.0,
    seed: int = 0,
    lam: float = 0.5,
    images_dir: str | Path | None = None,
    link_images: bool = True,
    pass_band: tuple[float, float] = DEFAULT_PASS_BAND,
    allow_missing_signal: bool = False,
) -> dict:
    """Select from a scored pool and write the manifest, the selected data and ``selection.json``.

    Everything is checked (scores vs data ids, the keep count, image files) before any file is
    written; each file is written atomically, ``selection.json`` last. An entropy selection by a
    signal most items lack (an untrained judge: no parsable output) would keep ties in id order
    and call it ``entropy:<by>``: refused unless ``allow_missing_signal``, and then recorded
    under ``warnings`` in ``selection.json``.
    """
    from egt.entropy.score_store import read_scores
    from egt.entropy.summary import missing_signal_warning
    from egt.records import default_images_root, read_pairs

    if not 0.0 <= lam <= 1.0:
        raise EgtError(f"--lam: must be in [0, 1], got {lam}")
    check_kind(by)
    meta, records = read_scores(scores_path)
    skipped = set((meta.get("header", {}).get("data", {}).get("skipped_bad") or {}).get("ids", []))
    pairs = [p for p in read_pairs(data_path) if p.id not in skipped]  # left out by 'egt score --skip_bad'
    check_same_ids([r["id"] for r in records], [p.id for p in pairs], scores_path, data_path)
    scores = item_scores(records, lam)
    warning = missing_signal_warning(sum(s[by] is None for s in scores.values()), len(scores), by)
    if warning and selector == "entropy" and not allow_missing_signal:
        raise EgtError(f"{scores_path}: {warning}; pass --allow_missing_signal true to select anyway")
    rows = select(scores, selector, by=by, n=n, fraction=fraction, seed=seed, pass_band=pass_band)
    by_id = {p.id: p for p in pairs}
    kept = [by_id[r["id"]] for r in rows if r["kept"]]
    dropped = [by_id[r["id"]] for r in rows if not r["kept"]]
    root = Path(images_dir) if images_dir else default_images_root(data_path)
    if images_dir and not root.is_dir():
        raise EgtError(f"--images_dir: {root}: no such folder")
    out = Path(out_dir)
    selected_path, linked = write_linked_pool(kept, root, out, SELECTED, link_images, "of kept items")
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
        "images_root": str(out.resolve()) if link_images and selected_path.suffix == ".jsonl" else str(root.resolve()),
        "counts": {
            "pool": len(rows),
            "kept": len(kept),
            "dropped": len(dropped),
            "missing_" + by: sum(r["scores"][by] is None for r in rows),
            "with_format_failures": sum(r["scores"]["format_failures"] > 0 for r in rows),
            **({"skipped_bad_images": len(skipped)} if skipped else {}),
        },
        "mean_rollout_accuracy": accuracy,
        "files": {"manifest": MANIFEST, "selected": selected_path.name, "linked_images": linked},
        "curriculum": (
            "kept manifest rows ordered by scores.format_failures, then scores[by] ascending, null last, "
            "vote ties by scores.sentence, ties by id"
        ),
    }
    if selector == "pass_rate":
        sides = [pass_band_side(r["scores"]["accuracy"], pass_band) for r in rows]
        selection["pass_band"] = list(pass_band)
        selection["counts"].update(
            {
                "inside_band": sides.count("inside"),
                "below_band": sides.count("below"),
                "above_band": sides.count("above"),
                "missing_pass_rate": sides.count("missing"),
            }
        )
        selection["pass_band_rule"] = (
            "kept: pass rate (scores.accuracy, the share of rollouts agreeing with the label) strictly inside "
            "(low, high); below_band: <= low; above_band: >= high"
        )
    if warning and selector == "entropy":
        selection["warnings"] = [warning]
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


__all__ = [
    "MANIFEST",
    "SELECTED",
    "SELECTION",
    "ManifestEntry",
    "check_same_ids",
    "curate_pool",
    "curriculum_order",
    "kept_items",
    "kept_order_keys",
    "link_pair_images",
    "manifest_path",
    "read_manifest",
]
