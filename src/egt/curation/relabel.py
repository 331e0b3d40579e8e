"""Apply a reviewer's corrections to a pool: ``egt relabel`` (issue 25).

The review page (:mod:`egt.analysis.review`) exports ``corrections.jsonl``, one line per reviewed
item::

    {"id": "rl_pool-00031", "action": "flip" | "drop" | "keep" | "unsure", "note": "...",
     "time": "2026-12-08T10:00:00Z", "label": 0}

``label`` (optional) is the stored label the reviewer saw; ``note`` and ``time`` are optional.
:func:`relabel_pool` checks every line before writing anything — an unknown id, an unknown
action, two different actions for one id, or a ``label`` that is not the pool's (the pool changed
since the review, e.g. it was relabelled already) is refused with one line naming the file, the
line and the field — then writes into ``DIR``:

    relabelled.jsonl   the pool, in its order: ``flip`` swaps ``preferred``, ``drop`` removes the
                       item, ``keep`` / ``unsure`` leave it; every reviewed item records in
                       ``meta["review"]`` what was done (action, note, time, the label before and
                       after, the corrections file and line). On the lab, whose items carry
                       ``true_preferred``, ``meta["flipped"]`` is recomputed against the new label so
                       the analysis stays true. (``relabelled.parquet`` when the pool embeds images.)
    images/...         hard links (copies across file systems) of the kept items' images, so the
                       file reads by itself wherever it is (as ``egt curate`` does)
    relabel.json       counts per action, the inputs, and the ids dropped and flipped

The output is a pool like any other: every command reads it with ``--data``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from egt.data.atomic import atomic_write_json
from egt.errors import EgtError

ACTIONS = ("keep", "flip", "drop", "unsure")
RELABELLED, SUMMARY = "relabelled.jsonl", "relabel.json"


def read_corrections(path: str | Path, labels: dict[str, int], pool: str | Path) -> dict[str, dict]:
    """``{id: {"action", "note", "time", "line"}}`` from a corrections file, checked against the pool's
    ``labels`` (id → stored label); every error names the file, the line and the field."""
    from egt.data.readers import iter_jsonl, record_id

    path = Path(path)
    if not path.is_file():
        raise EgtError(f"{path}: no such corrections file")
    out: dict[str, dict] = {}
    for lineno, obj in iter_jsonl(path):
        here = f"{path}: line {lineno}"
        rid = record_id(obj, here)
        here = f"{here} (id={rid!r})"
        if rid not in labels:
            raise EgtError(f"{here}: field 'id': no such item in {pool}")
        action = obj.get("action")
        if action not in ACTIONS:
            raise EgtError(f"{here}: field 'action': {action!r} is not one of {', '.join(ACTIONS)}")
        for name in ("note", "time"):
            if obj.get(name) is not None and not isinstance(obj[name], str):
                raise EgtError(f"{here}: field {name!r}: must be a string")
        seen = obj.get("label")
        if seen is not None and (isinstance(seen, bool) or seen not in (0, 1)):
            raise EgtError(f"{here}: field 'label': must be 0 or 1, got {seen!r}")
        if seen is not None and seen != labels[rid]:
            raise EgtError(
                f"{here}: field 'label': the reviewer saw Response {seen + 1} preferred but {pool} stores "
                f"Response {labels[rid] + 1} (was the pool changed, or relabelled already, since the review?)"
            )
        if rid in out and out[rid]["action"] != action:
            raise EgtError(
                f"{here}: field 'action': {action!r} conflicts with {out[rid]['action']!r} on line "
                f"{out[rid]['line']} for the same id"
            )
        out.setdefault(rid, {"action": action, "note": obj.get("note") or "", "time": obj.get("time"), "line": lineno})
    if not out:
        raise EgtError(f"{path}: no corrections in the file")
    return out


def relabel_pool(
    data: str | Path,
    corrections: str | Path,
    out_dir: str | Path,
    *,
    images_dir: str | Path | None = None,
    link_images: bool = True,
) -> dict:
    """Apply ``corrections`` to the pool ``data`` and write ``out_dir`` (module doc); the summary."""
    from egt.curation.manifest import write_linked_pool
    from egt.records import default_images_root, read_pairs

    pairs = read_pairs(data)
    fixes = read_corrections(corrections, {p.id: p.preferred for p in pairs}, data)
    root = Path(images_dir) if images_dir else default_images_root(data)
    if images_dir and not root.is_dir():
        raise EgtError(f"--images_dir: {root}: no such folder")
    result, flipped, dropped = [], [], []
    for pair in pairs:
        fix = fixes.get(pair.id)
        if fix is None:
            result.append(pair)
            continue
        if fix["action"] == "drop":
            dropped.append(pair.id)
            continue
        label = 1 - pair.preferred if fix["action"] == "flip" else pair.preferred
        meta = dict(pair.meta)
        meta["review"] = {
            "action": fix["action"],
            "note": fix["note"],
            "time": fix["time"],
            "label_before": pair.preferred,
            "label_after": label,
            "corrections": f"{Path(corrections).resolve()}: line {fix['line']}",
        }
        if meta.get("true_preferred") in (0, 1):
            meta["flipped"] = label != meta["true_preferred"]
        if fix["action"] == "flip":
            flipped.append(pair.id)
        result.append(dataclasses.replace(pair, preferred=label, meta=meta))
    if not result:
        raise EgtError(f"{corrections}: drops every item of {data}; nothing would be left")
    out = Path(out_dir)
    target, linked = write_linked_pool(result, root, out, RELABELLED, link_images, "of the pool")
    counts = {a: sum(f["action"] == a for f in fixes.values()) for a in ACTIONS}
    summary = {
        "data": str(Path(data).resolve()),
        "corrections": str(Path(corrections).resolve()),
        "output": target.name,
        "images_root": str(out.resolve())
        if linked or (link_images and target.suffix == ".jsonl")
        else str(root.resolve()),
        "counts": {"pool": len(pairs), "written": len(result), **counts},
        "linked_images": linked,
        "flipped_ids": flipped,
        "dropped_ids": dropped,
    }
    atomic_write_json(out / SUMMARY, summary)
    return summary


__all__ = ["ACTIONS", "RELABELLED", "SUMMARY", "read_corrections", "relabel_pool"]
