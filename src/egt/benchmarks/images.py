"""Missing images, decided before any judging.

A judge that reads images cannot judge an item whose image file is absent: that is a user error
listing the first few missing paths and their count, unless the user points ``--images_dir``
where they are or passes ``--skip_missing_images`` (the report then says how many items were
skipped and from which categories). A judge that reads no images runs on every item; the report
notes how many items had images absent — on a benchmark. EGT's own pairs format (the foundation's)
names only images it ships, so ``egt eval`` treats a missing one there as a broken dataset
whatever the judge. Image paths never escape their root (:func:`egt.records.resolve_image_path`),
and that is checked before any model is loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from egt.data.readers import image_problems, missing_images
from egt.entropy.score_store import show_ids
from egt.errors import EgtError
from egt.records import PreferencePair

SHOW_MISSING = 5


def check_images(
    pairs: Sequence[PreferencePair],
    root: str | Path | None,
    *,
    reads_images: bool,
    skip_missing: bool = False,
    missing: list | None = None,
    reason: str = "the judge reads images",
) -> tuple[list[PreferencePair], dict]:
    """The pairs to judge and the report's ``images`` block (see the module docstring).

    ``missing`` reuses an earlier :func:`missing_images`; ``reason`` says, in the error, why the
    images are needed (EGT's own pairs format needs them whatever the judge)."""
    missing = missing_images(pairs, root) if missing is None else missing
    with_images = sum(bool(p.images) for p in pairs)
    info: dict = {
        "root": str(root) if root is not None else None,
        "items_with_images": with_images,
        "items_missing_images": 0,
        "missing_files": 0,
    }
    if not missing:
        return list(pairs), info
    bad_ids = {p.id for p, _ in missing}
    files = list(dict.fromkeys(path for _, path in missing))  # one file may serve several items
    info.update(
        items_missing_images=len(bad_ids),
        missing_files=len(files),
        first_missing=[str(path) for path in files[:SHOW_MISSING]],
    )
    if not reads_images:
        info["note"] = (
            f"images absent for {len(bad_ids)} of {len(pairs)} items; the judge reads no images, "
            "so it ran on every item"
        )
        return list(pairs), info
    if not skip_missing:
        shown = ", ".join(str(path) for path in files[:SHOW_MISSING])
        more = f" (and {len(files) - SHOW_MISSING} more)" if len(files) > SHOW_MISSING else ""
        raise EgtError(
            f"{len(files)} image file(s) missing for {len(bad_ids)} of {len(pairs)} items under "
            f"{Path(root if root is not None else '.').resolve()}: {shown}{more} (field 'images' of items "
            f"{show_ids(sorted(bad_ids))}); {reason} — "
            "pass --images_dir DIR where they are, or --skip_missing_images to evaluate the other items"
        )
    kept = [p for p in pairs if p.id not in bad_ids]
    if not kept:
        raise EgtError(
            f"every one of the {len(pairs)} items has a missing image; nothing left to evaluate "
            f"(first missing: {files[0]})"
        )
    skipped = Counter(p.category or "(none)" for p in pairs if p.id in bad_ids)
    info.update(
        skipped=len(bad_ids),
        skipped_by_category=dict(sorted(skipped.items())),
        note=f"skipped {len(bad_ids)} of {len(pairs)} items whose images are missing (--skip_missing_images)",
    )
    return kept, info


def check_decodable(pairs: Sequence[PreferencePair], root: str | Path | None, info: dict, *, skip_bad: bool) -> list:
    """Decode every image of ``pairs`` before judging: a corrupt one stops the run naming the file, line
    and field, or with ``skip_bad`` its item is skipped and counted in ``info`` (the report's ``images``)."""
    problems = image_problems(pairs, root)
    if not problems:
        return list(pairs)
    if not skip_bad:
        raise EgtError(
            f"{problems[0][1]} — {len(problems)} item(s) have an unreadable image; pass --skip_bad to "
            "evaluate the other items"
        )
    bad = {p.id for p, _ in problems}
    kept = [p for p in pairs if p.id not in bad]
    if not kept:
        raise EgtError(f"every item has an unreadable image (first: {problems[0][1]}); nothing left to evaluate")
    info["skipped_bad"] = len(bad)
    info["first_bad"] = problems[0][1]
    note = f"skipped {len(bad)} of {len(pairs)} items whose image does not decode (--skip_bad)"
    info["note"] = f"{info['note']}; {note}" if info.get("note") else note
    return kept
