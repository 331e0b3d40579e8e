"""Atomic file output and small JSON helpers.

Every file EGT writes goes through here: the content lands in a temporary sibling and is renamed
into place only when complete, so an interrupted or failed run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_json", "atomic_write_jsonl", "atomic_write_text", "jsonl_line", "read_json"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it into place, else delete it.

    Works for files and folders (e.g. ``save_pretrained`` or ``Dataset.save_to_disk`` targets).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def jsonl_line(record: Any) -> str:
    """One JSONL line (UTF-8 kept as is, newline-terminated): the form every EGT JSONL file uses."""
    return json.dumps(record, ensure_ascii=False, default=_json_default) + "\n"


def atomic_write_jsonl(path: str | Path, records: Iterable[Any]) -> Path:
    """Write one JSON line per record, atomically."""
    return atomic_write_text(path, "".join(jsonl_line(r) for r in records))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
