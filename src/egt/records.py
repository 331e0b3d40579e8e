"""The preference-pair record: one question, 0..n images, two responses, which one is preferred.

Everything in EGT reads and writes this one record type: the shapes lab, judge evaluation,
entropy scoring, curation, reward-model training and the benchmark adapters.

On disk a dataset is JSONL (images as paths relative to an images root), parquet or a saved
HF ``datasets`` folder (images embedded with the ``Image`` feature). JSONL fields:

``id`` (str), ``question`` (str), ``images`` (list of paths, may be absent), ``responses``
(exactly 2 strings), ``preferred`` (0 or 1), optional ``category``, ``source``, ``meta`` (object).

Files are read by :func:`egt.data.readers.read_records` (one reader for every format; a ``.json``
file may also be a JSON list). Every validation error names the file, the line or record id, and
the field. Writes are atomic: a failed write leaves no partial file behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from egt.data.atomic import atomic_path, atomic_write_jsonl
from egt.data.readers import check_unique_ids, decode_image_cell, field_error, open_image, read_records
from egt.errors import EgtError, where


@dataclass
class PreferencePair:
    """A question with two candidate responses and a (possibly noisy) preference label.

    ``images`` holds paths relative to the dataset's images root, or in-memory ``PIL.Image``
    objects for datasets that embed them. Lab items keep their ground truth in ``meta``:
    ``true_preferred`` (the clean label), ``difficulty`` (0 easy .. 1 hard), ``flipped``.
    """

    id: str
    question: str
    responses: tuple[str, str]
    preferred: int
    images: list[Any] = field(default_factory=list)
    category: str | None = None
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    location: str | None = field(default=None, repr=False, compare=False)
    """Where the record was read (``FILE: line N`` / ``FILE: record i``), for error messages; not written."""

    @property
    def rejected(self) -> int:
        return 1 - self.preferred

    @property
    def true_preferred(self) -> int | None:
        return self.meta.get("true_preferred")

    @property
    def flipped(self) -> bool | None:
        return self.meta.get("flipped")

    @property
    def difficulty(self) -> float | None:
        return self.meta.get("difficulty")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "question": self.question}
        if self.images:
            if not all(isinstance(i, str) for i in self.images):
                raise EgtError(
                    where(record=f"id={self.id!r}", field="images")
                    + ": in-memory images cannot be written to JSONL; use parquet or a datasets folder"
                )
            out["images"] = list(self.images)
        out["responses"] = list(self.responses)
        out["preferred"] = self.preferred
        for key in ("category", "source"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.meta:
            out["meta"] = self.meta
        return out


# --------------------------------------------------------------------------------------------
# validation


def pair_from_dict(obj: Any, loc: str) -> PreferencePair:
    """Build a pair from a decoded record; ``loc`` names the file and line for errors."""
    if not isinstance(obj, dict):
        raise EgtError(f"{loc}: expected a JSON object, got {type(obj).__name__}")
    rid = obj.get("id")

    def bad(fieldname: str, msg: str) -> EgtError:
        return field_error(loc, obj, fieldname, msg)

    if not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid) == "":
        raise bad("id", "missing or not a non-empty string")
    question = obj.get("question")
    if not isinstance(question, str):
        raise bad("question", "missing or not a string")
    responses = obj.get("responses")
    if not isinstance(responses, (list, tuple)):
        raise bad("responses", "missing or not a list")
    if len(responses) != 2:
        raise bad("responses", f"expected exactly 2 responses, got {len(responses)}")
    if not all(isinstance(r, str) for r in responses):
        raise bad("responses", "every response must be a string")
    preferred = obj.get("preferred")
    if isinstance(preferred, bool) or preferred not in (0, 1):
        raise bad("preferred", f"must be 0 or 1, got {preferred!r}")
    images = obj.get("images")
    if images is None:
        images = []
    if not isinstance(images, (list, tuple)):
        raise bad("images", "must be a list of paths")
    for img in images:
        if not (isinstance(img, str) and img) and not isinstance(img, Image.Image):
            raise bad("images", f"every image must be a non-empty path string, got {img!r}")
    for key in ("category", "source"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise bad(key, "must be a string")
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise bad("meta", "must be an object")
    return PreferencePair(
        id=str(rid),
        question=question,
        responses=(responses[0], responses[1]),
        preferred=int(preferred),
        images=list(images),
        category=obj.get("category"),
        source=obj.get("source"),
        meta=meta,
    )


def pair_from_row(row: Any, loc: str) -> PreferencePair:
    """A pair from a row of any format: embedded image cells decoded, a JSON-string ``meta`` (as
    parquet and ``datasets`` folders store it) parsed, then :func:`pair_from_dict`."""
    if isinstance(row, dict) and (isinstance(row.get("meta"), str) or isinstance(row.get("images"), (list, tuple))):
        row = dict(row)
        if isinstance(row.get("meta"), str):
            try:
                row["meta"] = json.loads(row["meta"]) if row["meta"] else {}
            except json.JSONDecodeError:
                raise field_error(loc, row, "meta", "not a JSON object string") from None
        if isinstance(row.get("images"), (list, tuple)):
            row["images"] = [decode_image_cell(c, loc, row, "images") for c in row["images"]]
    return pair_from_dict(row, loc)


# --------------------------------------------------------------------------------------------
# reading


def read_pairs(path: str | Path, *, allow_empty: bool = False, unique_ids: bool = True) -> list[PreferencePair]:
    """Read a pairs dataset from JSONL, parquet or a saved ``datasets`` folder."""
    pairs = list(iter_pairs(path))
    if not pairs and not allow_empty:
        raise EgtError(f"{path}: the dataset is empty")
    if unique_ids:
        check_unique_ids((p.id for p in pairs), path)
    return pairs


def iter_pairs(path: str | Path) -> Iterator[PreferencePair]:
    """Every record of a pairs file or folder (:func:`egt.data.readers.read_records`) as a pair."""
    for loc, row in read_records(path):
        pair = pair_from_row(row, loc)
        pair.location = loc
        yield pair


# --------------------------------------------------------------------------------------------
# writing


def write_pairs(pairs: Sequence[PreferencePair], path: str | Path, images_root: str | Path | None = None) -> Path:
    """Write pairs atomically as JSONL, parquet or a ``datasets`` folder (chosen by the suffix).

    Parquet and datasets folders embed the images (``Image`` feature), resolved under
    ``images_root``; JSONL keeps the paths as they are.
    """
    path = Path(path)
    if path.suffix in (".jsonl", ".json"):
        return atomic_write_jsonl(path, (p.to_json() for p in pairs))
    ds = to_hf_dataset(pairs, images_root)
    if path.suffix == ".parquet":
        with atomic_path(path) as tmp:
            ds.to_parquet(str(tmp))
    else:
        with atomic_path(path) as tmp:
            ds.save_to_disk(str(tmp))
    return path


def to_hf_dataset(pairs: Sequence[PreferencePair], images_root: str | Path | None = None):
    """A ``datasets.Dataset`` with the images embedded through the ``Image`` feature."""
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "question": datasets.Value("string"),
            "images": datasets.List(datasets.Image()),
            "responses": datasets.List(datasets.Value("string")),
            "preferred": datasets.Value("int8"),
            "category": datasets.Value("string"),
            "source": datasets.Value("string"),
            "meta": datasets.Value("string"),
        }
    )
    rows = {k: [] for k in features}
    for p in pairs:
        rows["id"].append(p.id)
        rows["question"].append(p.question)
        rows["images"].append(open_images(p, images_root))
        rows["responses"].append(list(p.responses))
        rows["preferred"].append(p.preferred)
        rows["category"].append(p.category)
        rows["source"].append(p.source)
        rows["meta"].append(json.dumps(p.meta) if p.meta else "")
    return datasets.Dataset.from_dict(rows, features=features)


# --------------------------------------------------------------------------------------------
# images


def open_images(pair: PreferencePair, root: str | Path | None) -> list[Image.Image]:
    """Load a pair's images as RGB PIL images; a missing or corrupt file is a user error."""
    return [open_image(ref, root, pair.id, location=pair.location) for ref in pair.images]


def default_images_root(data_path: str | Path) -> Path:
    """Images of a JSONL dataset resolve, by default, next to the file."""
    p = Path(data_path)
    return p if p.is_dir() else p.parent
