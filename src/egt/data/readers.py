"""One way to read records from disk: JSONL (plain or gzipped), a JSON list, parquet, saved ``datasets`` folders.

:func:`read_records` yields ``(location, row)`` for every record of any of these, ``location``
being ``"FILE: line N"`` (JSONL) or ``"FILE: record i"`` (the rest), so every caller's validation
error names the file and the record. Parquet is read with pyarrow and saved folders with
``datasets.load_from_disk``; their ``Image`` columns are read undecoded (``{bytes, path}`` cells)
and :func:`decode_image_cell` turns a cell into a PIL image or a path, naming the field when it
cannot. A malformed JSON line is reported in words with its file, line, column and the text
around it, never as the decoder's bare "Invalid control character at: line 1 column 429".

Images referred to by path are resolved under an images root (:func:`resolve_image_path`, which
refuses paths escaping it) and opened by :func:`open_image`; a missing or undecodable file is a
user error naming the image file, the record and the field.
"""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from egt.errors import EgtError

__all__ = [
    "IMAGE_SUFFIXES",
    "check_unique_ids",
    "decode_image_cell",
    "field_error",
    "image_problems",
    "image_where",
    "iter_jsonl",
    "missing_images",
    "open_image",
    "parse_json_line",
    "read_records",
    "resolve_image_path",
]

Image.MAX_IMAGE_PIXELS = 64_000_000  # refuse decompression bombs, still allow large photos

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")

# The json decoder's messages, in words a person who never wrote a JSON parser can act on.
_JSON_PROBLEMS = {
    "Invalid control character at": "a raw control character (newline, tab…) inside a string; escape it (\\n, \\t)",
    "Unterminated string starting at": "a string is never closed (a missing '\"')",
    "Extra data": "more than one JSON value (two records on one line?)",
    "Expecting value": "a value is missing (not JSON, or a trailing comma?)",
    "Expecting property name enclosed in double quotes": "an object key not in double quotes (or a trailing comma)",
    "Expecting ',' delimiter": "a ',' is missing between two values",
    "Expecting ':' delimiter": "a ':' is missing after an object key",
    "Invalid \\escape": "an invalid backslash escape inside a string",
}


# --------------------------------------------------------------------------------------------
# JSON lines


def json_problem(e: json.JSONDecodeError, text: str) -> str:
    """``malformed JSON at column C: <what is wrong>; near '<text around it>'``."""
    what = _JSON_PROBLEMS.get(e.msg, e.msg)
    lines = text.splitlines()
    line = lines[e.lineno - 1] if e.lineno <= len(lines) else ""
    if e.pos >= len(text.rstrip()):
        what = "the text ends before the JSON value does (a record cut short?)"
    start = max(0, e.colno - 1 - 20)
    near = line[start : e.colno - 1 + 20]
    return f"malformed JSON at column {e.colno}: {what}; near {near!r}"


def parse_json_line(line: bytes | str, where: str) -> Any:
    """Decode one JSON line; a malformed one is an :class:`EgtError` naming ``where`` (file and line)."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError:
        raise EgtError(f"{where}: not UTF-8 text") from None
    text = text.rstrip("\r\n")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise EgtError(f"{where}: {json_problem(e, text)}") from None


def record_id(obj, here: str) -> str:
    """The ``id`` of one JSONL object as a string; ``here`` (``"FILE: line N"``) names the place in the
    error when the line is not an object or its id is missing, empty or not a string / integer."""
    if not isinstance(obj, dict):
        raise EgtError(f"{here}: expected a JSON object")
    rid = obj.get("id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid) == "":
        raise EgtError(f"{here}: field 'id': missing or empty")
    return str(rid)


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, decoded_object)`` for every non-blank line of a ``.jsonl`` / ``.jsonl.gz``."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
            if line.strip():
                yield lineno, parse_json_line(line, f"{path}: line {lineno}")


# --------------------------------------------------------------------------------------------
# records of any format


def read_records(path: str | Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(location, row)`` for every record of a JSONL / JSON / parquet file or a folder.

    A folder is a saved ``datasets`` folder (one split) or a snapshot holding parquet files.
    """
    path = Path(path)
    if not path.exists():
        raise EgtError(f"{path}: no such file or folder")
    if path.is_dir():
        yield from _read_folder(path)
    elif path.suffix == ".parquet":
        yield from _read_parquet(path)
    elif path.suffix == ".json":
        yield from _read_json(path)
    elif path.suffix == ".jsonl" or path.name.endswith(".jsonl.gz"):
        for lineno, obj in iter_jsonl(path):
            yield f"{path}: line {lineno}", obj
    else:
        raise EgtError(f"{path}: unknown format (expected .jsonl, .jsonl.gz, .json, .parquet or a folder)")


def _read_json(path: Path) -> Iterator[tuple[str, Any]]:
    """A JSON list (Multimodal RewardBench's ``all_data.json``), one object, or JSONL named ``.json``."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if text.lstrip().startswith("["):  # a JSON list: the decoder's line is the file's line
            raise EgtError(f"{path}: line {e.lineno}: {json_problem(e, text)}") from None
        for lineno, obj in iter_jsonl(path):  # a .json file that is really JSONL
            yield f"{path}: line {lineno}", obj
        return
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise EgtError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for i, obj in enumerate(data):
        yield f"{path}: record {i}", obj


def _read_parquet(path: Path) -> Iterator[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise EgtError(f"{path}: cannot read parquet ({e})") from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{path}: record {i}", row


def _read_folder(path: Path) -> Iterator[tuple[str, dict]]:
    if (path / "state.json").is_file() or (path / "dataset_info.json").is_file():
        ds = load_saved_dataset(path)
        for i, row in enumerate(ds):
            yield f"{path}: record {i}", row
        return
    files = sorted(path.rglob("*.parquet"))
    if not files:
        raise EgtError(f"{path}: a folder with neither a saved dataset nor parquet files")
    for f in files:
        yield from _read_parquet(f)


def load_saved_dataset(path: Path):
    """``datasets.load_from_disk`` of one split, its ``Image`` columns left as ``{bytes, path}`` cells."""
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:
        raise EgtError(f"{path}: cannot load a datasets folder ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        raise EgtError(f"{path}: is a DatasetDict with splits {list(ds)}; point at one split's folder")
    for name, feature in ds.features.items():
        if isinstance(feature, datasets.Image):
            ds = ds.cast_column(name, datasets.Image(decode=False))
        elif isinstance(feature, (datasets.List, datasets.LargeList)) and isinstance(feature.feature, datasets.Image):
            ds = ds.cast_column(name, type(feature)(datasets.Image(decode=False)))
    return ds


# --------------------------------------------------------------------------------------------
# fields, ids and image cells


def field_error(loc: str, row: Any, name: str, msg: str) -> EgtError:
    """``LOC (id='x'): field 'name': msg`` — the one shape of a record's field error."""
    rid = row.get("id", row.get("ID")) if isinstance(row, Mapping) else None
    here = f"{loc} (id={rid!r})" if rid is not None else loc
    return EgtError(f"{here}: field {name!r}: {msg}")


def check_unique_ids(ids: Iterable[str], where: object, why: str = "") -> None:
    """Refuse a repeated id: ``WHERE: id='x': field 'id': duplicate id (2 rows)[; why]``."""
    counts = Counter(ids)
    repeated = next((i for i, n in counts.items() if n > 1), None)
    if repeated is not None:
        raise EgtError(
            f"{where}: id={repeated!r}: field 'id': duplicate id ({counts[repeated]} rows)"
            + (f"; {why}" if why else "")
        )


def decode_image_cell(value: Any, loc: str, row: Any = None, name: str = "images") -> Image.Image | str:
    """An image cell → a PIL image (embedded ``{bytes, path}`` cell, or already one) or a path string.

    Paths stay strings: they are resolved under an images root when opened (:func:`open_image`).
    """
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            try:
                return Image.open(io.BytesIO(value["bytes"]))
            except Exception as e:
                raise field_error(loc, row, name, f"cannot decode the embedded image ({e})") from None
        value = value.get("path")
    if isinstance(value, Image.Image):
        return value
    if not isinstance(value, str) or not value:
        raise field_error(loc, row, name, f"expected an image path or an embedded image, got {value!r:.60}")
    return value


def image_where(record_id: str | None, location: str | None = None) -> str:
    """``FILE: line N (id='x'): field 'images'`` — where an image error is, as precisely as known."""
    if location and record_id is not None:
        return f"{location} (id={record_id!r}): field 'images'"
    return f"id={record_id!r}: field 'images'" if record_id is not None else "field 'images'"


def resolve_image_path(
    ref: str, root: str | Path | None, *, record_id: str | None = None, location: str | None = None
) -> Path:
    """Resolve ``ref`` under ``root``; refuse paths that escape it (``..``, absolute, symlinks out).

    ``location`` (``FILE: line N``) is named in the error when given."""
    root_path = Path(root if root is not None else ".").resolve()
    candidate = (root_path / ref).resolve()
    if not candidate.is_relative_to(root_path):
        raise EgtError(
            f"{image_where(record_id, location)}: image path {ref!r} escapes the images root {str(root_path)!r}"
        )
    return candidate


def missing_images(pairs: Sequence, root: str | Path | None) -> list[tuple[Any, Path]]:
    """Every (pair, resolved path) whose image file does not exist; embedded images never miss.

    ``pairs`` are :class:`egt.records.PreferencePair` (anything with ``id`` and ``images``)."""
    missing = []
    for pair in pairs:
        for ref in pair.images:
            if isinstance(ref, str):
                path = resolve_image_path(ref, root, record_id=pair.id, location=getattr(pair, "location", None))
                if not path.is_file():
                    missing.append((pair, path))
    return missing


def image_problems(pairs: Sequence, root: str | Path | None) -> list[tuple[Any, str]]:
    """``(pair, message)`` for every pair with an image that is missing or does not decode.

    Every file is decoded in full (``Image.load``), so a truncated or corrupt file is found here, not
    hours into a run; the message names the file and line of the record, its id, the field and the
    image. A path escaping the images root is an error at once (:func:`resolve_image_path`).
    """
    problems = []
    for pair in pairs:
        for ref in pair.images:
            if isinstance(ref, Image.Image):
                continue
            try:
                open_image(ref, root, pair.id, location=getattr(pair, "location", None))
            except EgtError as e:
                if "escapes the images root" in str(e):
                    raise
                problems.append((pair, str(e)))
                break
    return problems


def open_image(
    ref: str | Image.Image, root: str | Path | None, record_id: str, location: str | None = None
) -> Image.Image:
    """One image as RGB: a PIL image as is, a path under ``root``; missing or corrupt is a user error
    naming ``location`` (``FILE: line N``) when given, the id, the field and the image file."""
    if isinstance(ref, Image.Image):
        return ref.convert("RGB")
    path = resolve_image_path(ref, root, record_id=record_id, location=location)
    here = image_where(record_id, location)
    if not path.is_file():
        raise EgtError(f"{here}: image file not found: {path}")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Exception as e:
        raise EgtError(f"{here}: cannot decode image {path} ({e})") from None
