"""The preference-pair record: one question, 0..n images, two responses, which one is preferred.

Everything in EGT reads and writes this one record type: the shapes lab, judge evaluation,
entropy scoring, curation, reward-model training and the benchmark adapters.

On disk a dataset is JSONL (images as paths relative to an images root), parquet or a saved
HF ``datasets`` folder (images embedded with the ``Image`` feature). JSONL fields:

``id`` (str), ``question`` (str), ``images`` (list of paths, may be absent), ``responses``
(exactly 2 strings), ``preferred`` (0 or 1), optional ``category``, ``source``, ``meta`` (object).

Every validation error names the file, the line or record id, and the field. Writes are atomic:
a failed write leaves no partial file behind.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from egt.errors import EgtError, where
from egt.io import atomic_path, atomic_write_text

Image.MAX_IMAGE_PIXELS = 64_000_000  # refuse decompression bombs, still allow large photos

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


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
    here = f"{loc} (id={rid!r})" if rid is not None else loc

    def bad(fieldname: str, msg: str) -> EgtError:
        return EgtError(f"{here}: field {fieldname!r}: {msg}")

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


def check_unique_ids(pairs: Sequence[PreferencePair], path: object) -> None:
    seen: set[str] = set()
    for p in pairs:
        if p.id in seen:
            raise EgtError(f"{path}: id={p.id!r}: field 'id': duplicate id")
        seen.add(p.id)


# --------------------------------------------------------------------------------------------
# reading


def read_pairs(path: str | Path, *, allow_empty: bool = False, unique_ids: bool = True) -> list[PreferencePair]:
    """Read a pairs dataset from JSONL, parquet or a saved ``datasets`` folder."""
    path = Path(path)
    if not path.exists():
        raise EgtError(f"{path}: no such file or folder")
    if path.is_dir():
        pairs = _read_hf_folder(path)
    elif path.suffix == ".parquet":
        pairs = _read_parquet(path)
    elif path.suffix in (".jsonl", ".json") or path.name.endswith(".jsonl.gz"):
        pairs = list(iter_jsonl_pairs(path))
    else:
        raise EgtError(f"{path}: unknown dataset format (expected .jsonl, .parquet or a datasets folder)")
    if not pairs and not allow_empty:
        raise EgtError(f"{path}: the dataset is empty")
    if unique_ids:
        check_unique_ids(pairs, path)
    return pairs


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, decoded_object)`` for every non-blank line; errors name the line."""
    path = Path(path)
    opener = _open_text(path)
    with opener as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise EgtError(f"{path}: line {lineno}: malformed JSON ({e.msg} at column {e.colno})") from None


def iter_jsonl_pairs(path: str | Path) -> Iterator[PreferencePair]:
    for lineno, obj in iter_jsonl(path):
        yield pair_from_dict(obj, f"{path}: line {lineno}")


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _rows_to_pairs(rows: Iterable[dict], path: Path) -> list[PreferencePair]:
    pairs = []
    for i, row in enumerate(rows):
        row = dict(row)
        row["images"] = [_decode_image_cell(img) for img in (row.get("images") or [])]
        if isinstance(row.get("meta"), str):  # meta is stored as a JSON string column
            row["meta"] = json.loads(row["meta"]) if row["meta"] else {}
        pairs.append(pair_from_dict(row, f"{path}: record {i}"))
    return pairs


def _decode_image_cell(img: Any) -> Any:
    if isinstance(img, dict) and img.get("bytes") is not None:
        return Image.open(io.BytesIO(img["bytes"]))
    if isinstance(img, dict) and img.get("path"):
        return img["path"]
    return img


def _read_parquet(path: Path) -> list[PreferencePair]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise EgtError(f"{path}: cannot read parquet ({e})") from None
    return _rows_to_pairs(table.to_pylist(), path)


def _read_hf_folder(path: Path) -> list[PreferencePair]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:
        raise EgtError(f"{path}: cannot load a datasets folder ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        raise EgtError(f"{path}: is a DatasetDict with splits {list(ds)}; point at one split's folder")
    return _rows_to_pairs(ds, path)


# --------------------------------------------------------------------------------------------
# writing


def write_pairs(pairs: Sequence[PreferencePair], path: str | Path, images_root: str | Path | None = None) -> Path:
    """Write pairs atomically as JSONL, parquet or a ``datasets`` folder (chosen by the suffix).

    Parquet and datasets folders embed the images (``Image`` feature), resolved under
    ``images_root``; JSONL keeps the paths as they are.
    """
    path = Path(path)
    if path.suffix in (".jsonl", ".json"):
        text = "".join(json.dumps(p.to_json(), ensure_ascii=False) + "\n" for p in pairs)
        atomic_write_text(path, text)
        return path
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


def resolve_image_path(ref: str, root: str | Path | None, *, record_id: str | None = None) -> Path:
    """Resolve ``ref`` under ``root``; refuse paths that escape it (``..``, absolute, symlinks out)."""
    loc = f"id={record_id!r}: field 'images'" if record_id is not None else "field 'images'"
    root_path = Path(root if root is not None else ".").resolve()
    candidate = (root_path / ref).resolve()
    if not candidate.is_relative_to(root_path):
        raise EgtError(f"{loc}: image path {ref!r} escapes the images root {str(root_path)!r}")
    return candidate


def open_images(pair: PreferencePair, root: str | Path | None) -> list[Image.Image]:
    """Load a pair's images as RGB PIL images; a missing or corrupt file is a user error."""
    out = []
    for ref in pair.images:
        if isinstance(ref, Image.Image):
            out.append(ref.convert("RGB"))
            continue
        path = resolve_image_path(ref, root, record_id=pair.id)
        if not path.is_file():
            raise EgtError(f"id={pair.id!r}: field 'images': image file not found: {path}")
        try:
            with Image.open(path) as im:
                out.append(im.convert("RGB"))
        except Exception as e:
            raise EgtError(f"id={pair.id!r}: field 'images': cannot decode image {path} ({e})") from None
    return out


def default_images_root(data_path: str | Path) -> Path:
    """Images of a JSONL dataset resolve, by default, next to the file."""
    p = Path(data_path)
    return p if p.is_dir() else p.parent
