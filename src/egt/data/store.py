"""One resumable store for long runs: an append-only JSONL file of finished records, keyed by ``id``.

Layout: a header (the settings that determine the results) — the file's first line, or a JSON
sidecar when ``header_path`` is given — then one JSON line per finished record. Every
:meth:`ResumableStore.append` is one write, flushed (a killed process loses nothing written)
and fsync'ed unless ``sync=False`` (an OS crash loses nothing synced). Reopening with the same
header resumes: the finished records are read back and the run does the rest.

The rules, the same for every store (``egt score``'s ``FILE.partial``, the math journal):

* a last line without its newline was cut mid-write by a kill: it is dropped (the file is
  truncated back to the last newline) and its record is done again;
* a repeated id is an update: the latest line for an id wins (a run may redo a record, e.g. to
  retry a failed comparison, by appending it again);
* any other line that is not a JSON object with a string ``id`` (or, with ``valid_ids``, an id
  of the run's data) → :class:`EgtError` "corrupt resume file", nothing touched;
* a header for other settings → refused, naming what differs;
* ``overwrite=True`` starts over in both cases. Every refusal ends with the same hint,
  :data:`OVERWRITE_HINT`.

The final outputs are assembled from :meth:`ResumableStore.ordered` (data order, not finishing
order) and written atomically (:func:`egt.data.atomic.atomic_write_jsonl`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from egt.data.atomic import atomic_write_json, atomic_write_text, jsonl_line, read_json
from egt.data.readers import parse_json_line
from egt.errors import EgtError

__all__ = ["OVERWRITE_HINT", "ResumableStore", "changed_keys", "read_store", "resume_or_start"]

OVERWRITE_HINT = "rerun the command that started it to finish it, or pass --overwrite to start over"


def corrupt(path: Path, lineno: int, why: str) -> EgtError:
    return EgtError(f"{path}: line {lineno}: corrupt resume file ({why}); {OVERWRITE_HINT}")


def other_settings(path: Path, old: dict, new: dict, describe: Callable[[dict, dict], str]) -> EgtError:
    """The one refusal of a store written for other settings."""
    return EgtError(f"{path}: holds an unfinished run with other settings ({describe(old, new)}); {OVERWRITE_HINT}")


def changed_keys(old: dict, new: dict) -> str:
    """``model, seed``: the names of the top-level settings that differ."""
    return ", ".join(sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))) or "unknown difference"


def read_store(
    path: str | Path, *, header_path: str | Path | None = None, valid_ids: set[str] | None = None
) -> tuple[dict, dict[str, dict], int]:
    """Header, finished records by id, and the byte length of the intact prefix (everything after
    the last newline was cut mid-write)."""
    path = Path(path)
    raw = path.read_bytes()
    intact = raw.rfind(b"\n") + 1
    lines = raw[:intact].split(b"\n")[:-1]
    first = 1
    if header_path is None:
        if not lines:
            raise corrupt(path, 1, "no header line")
        try:
            header = json.loads(lines[0])
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise corrupt(path, 1, "the header is not JSON") from None
        lines, first = lines[1:], 2
    else:
        if not Path(header_path).is_file():
            raise corrupt(path, 1, f"no header: {Path(header_path).name} is missing")
        header = read_json(header_path)
    if not isinstance(header, dict):
        raise corrupt(path, 1, "the header is not a JSON object")
    records: dict[str, dict] = {}
    for lineno, line in enumerate(lines, start=first):
        if not line.strip():
            continue
        try:
            record = parse_json_line(line, "")
        except EgtError as e:
            raise corrupt(path, lineno, str(e).removeprefix(": ")) from None
        rid = record.get("id") if isinstance(record, dict) else None
        if isinstance(rid, bool) or not isinstance(rid, (str, int)):
            raise corrupt(path, lineno, "a record without a string 'id'")
        rid = str(rid)
        if valid_ids is not None and rid not in valid_ids:
            raise corrupt(path, lineno, f"id {rid!r} is not in the dataset")
        records[rid] = record  # the latest line for an id wins
    return header, records, intact


def resume_or_start(
    path: str | Path,
    header: dict,
    *,
    header_path: str | Path | None = None,
    valid_ids: set[str] | None = None,
    overwrite: bool = False,
    key: Callable[[dict], Any] = lambda h: h,
    describe: Callable[[dict, dict], str] = changed_keys,
) -> tuple[dict, dict[str, dict]]:
    """The header and finished records to go on with: ``path``'s own when its header has the same
    ``key(header)`` (it keeps the header it was started with, e.g. its batch size), else a new
    store holding ``header`` alone (module doc: what is refused, what ``overwrite`` does)."""
    path = Path(path)
    header = json.loads(json.dumps(header, default=str))  # what the file holds, for comparisons
    if path.exists():
        try:
            old, records, intact = read_store(path, header_path=header_path, valid_ids=valid_ids)
        except EgtError:
            if not overwrite:
                raise
            old, records, intact = None, {}, 0
        if old is not None and key(old) == key(header):
            if intact < path.stat().st_size:
                os.truncate(path, intact)  # drop the line cut mid-write
            if header_path is not None:
                atomic_write_json(header_path, old)
            return old, records
        if old is not None and not overwrite:
            raise other_settings(path, old, header, describe)
    if header_path is None:
        atomic_write_text(path, jsonl_line(header))
    else:  # records first: a crash in between leaves a mismatch to refuse, never old records under new settings
        atomic_write_text(path, "")
        atomic_write_json(header_path, header)
    return header, {}


class ResumableStore:
    """The open store: ``header``, finished ``records`` by id, appends go to ``path`` (module doc)."""

    def __init__(self, path: str | Path, header: dict, records: dict[str, dict]):
        self.path = Path(path)
        self.header = header
        self.records = records
        self._fh = open(self.path, "ab")

    @classmethod
    def open(cls, path: str | Path, header: dict, **options) -> ResumableStore:
        """Resume or start ``path`` (:func:`resume_or_start` takes the ``options``)."""
        return cls(path, *resume_or_start(path, header, **options))

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, item_id: str) -> dict | None:
        return self.records.get(item_id)

    def append(self, records: Iterable[dict], sync: bool = True) -> None:
        """Append finished records in one write, flushed; fsync'ed when ``sync`` (see :meth:`sync`)."""
        records = list(records)
        if not records:
            return
        self._fh.write("".join(jsonl_line(r) for r in records).encode("utf-8"))
        self._fh.flush()
        if sync:
            os.fsync(self._fh.fileno())
        for r in records:
            self.records[str(r["id"])] = r

    def sync(self) -> None:
        """fsync the file (after a run of ``append(..., sync=False)``)."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def ordered(self, ids: Sequence[str]) -> list[dict]:
        """The finished records in the order of ``ids`` (all must be finished)."""
        missing = [i for i in ids if i not in self.records]
        if missing:
            raise RuntimeError(f"{len(missing)} items are not finished (first: {missing[0]!r})")
        return [self.records[i] for i in ids]
