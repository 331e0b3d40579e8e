"""Resumable runs: an append-only journal of finished items, then one atomic assembly.

A long job (evaluation, self-compare build) appends one JSON line per finished item to
``journal.jsonl`` and flushes it (fsync once per chunk of items), so a kill at any point loses
at most the items in flight, and an OS crash at most the current chunk. A rerun
reads the journal back, skips what is finished and does the rest; the final outputs are then
assembled in input order and written atomically. A run killed while writing a line leaves a
torn last line: it is cut off on reopening. A torn line anywhere else means the file was
edited by hand and is a user error.

The journal sits beside a ``run.json`` holding the settings that determine the results (model,
sampling, seed, comparer…). Rerunning into the same folder with different settings is refused
rather than silently mixing two runs.

Reruns give the same outputs as an uninterrupted run because every random draw is seeded per
chunk of items (see :func:`chunk_seed`), never from a global stream that a resume would shift.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from egt.errors import EgtError
from egt.io import atomic_write_json, read_json

JOURNAL_FILE = "journal.jsonl"
RUN_FILE = "run.json"


def chunk_seed(seed: int, chunk_index: int) -> int:
    """A seed for one chunk of items that does not depend on which chunks ran before."""
    digest = hashlib.sha256(f"{seed}:{chunk_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class Journal:
    """Finished items of one run, keyed by ``id`` (the latest line for an id wins)."""

    def __init__(self, folder: str | Path, settings: dict[str, Any], overwrite: bool = False):
        self.folder = Path(folder)
        self.path = self.folder / JOURNAL_FILE
        self.folder.mkdir(parents=True, exist_ok=True)
        run_file = self.folder / RUN_FILE
        settings = json.loads(json.dumps(settings, default=str))
        if overwrite:
            self.path.unlink(missing_ok=True)
        elif run_file.is_file() and self.path.is_file():
            previous = read_json(run_file)
            if previous != settings:
                changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
                raise EgtError(
                    f"{self.folder}: holds a run with other settings ({', '.join(changed)}); "
                    "use a new output folder or --overwrite true"
                )
        atomic_write_json(run_file, settings)
        self.records: dict[str, dict] = {}
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        torn = raw.rpartition(b"\n")[2]  # bytes after the last newline: a line cut by a kill
        if torn:
            with open(self.path, "r+b") as fh:
                fh.truncate(len(raw) - len(torn))
        for lineno, line in enumerate(raw[: len(raw) - len(torn)].split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                item_id = str(record["id"])
            except (ValueError, KeyError, TypeError):
                raise EgtError(
                    f"{self.path}: line {lineno}: malformed journal line (edited by hand?); "
                    "use a new output folder or --overwrite true"
                ) from None
            self.records[item_id] = record

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.records

    def get(self, item_id: str) -> dict | None:
        return self.records.get(item_id)

    def append(self, records: Iterable[dict], sync: bool = True) -> None:
        """Append finished records: written and flushed at once (a killed process loses nothing
        written), fsynced when ``sync`` (an OS crash loses nothing synced; see :meth:`sync`)."""
        records = list(records)
        if not records:
            return
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        for r in records:
            self.records[str(r["id"])] = r

    def sync(self) -> None:
        """fsync the journal (after a batch of ``append(..., sync=False)``)."""
        if self.path.is_file():
            with open(self.path, "rb") as fh:
                os.fsync(fh.fileno())

    def ordered(self, ids: Sequence[str]) -> list[dict]:
        """The finished records in the order of ``ids`` (all must be finished)."""
        missing = [i for i in ids if i not in self.records]
        if missing:
            raise RuntimeError(f"{len(missing)} items are not finished (first: {missing[0]!r})")
        return [self.records[i] for i in ids]


def write_jsonl_atomic(path: str | Path, records: Iterable[dict]) -> Path:
    from egt.io import atomic_write_text

    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
