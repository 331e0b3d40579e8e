"""Resumable runs: an append-only journal of finished items, then one atomic assembly.

A long job (evaluation, self-compare build) appends one JSON line per finished item to
``journal.jsonl`` and flushes it (fsync once per chunk of items), so a kill at any point loses
at most the items in flight, and an OS crash at most the current chunk. A rerun
reads the journal back, skips what is finished and does the rest; the final outputs are then
assembled in input order and written atomically. The rules — a torn last line is cut off on
reopening, a malformed line elsewhere is a user error, the latest line for an id wins — are
those of every EGT store (:mod:`egt.data.store`).

The journal sits beside a ``run.json`` holding the settings that determine the results (model,
sampling, seed, comparer…). Rerunning into the same folder with different settings is refused
rather than silently mixing two runs.

Reruns give the same outputs as an uninterrupted run because every random draw is seeded per
chunk of items (see :func:`chunk_seed`), never from a global stream that a resume would shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from egt.data.presentation import derived_seed
from egt.data.store import ResumableStore, resume_or_start

__all__ = ["JOURNAL_FILE", "RUN_FILE", "Journal", "chunk_seed"]

JOURNAL_FILE = "journal.jsonl"
RUN_FILE = "run.json"


def chunk_seed(seed: int, chunk_index: int) -> int:
    """A seed for one chunk of items that does not depend on which chunks ran before."""
    return derived_seed(seed, "chunk", chunk_index)


class Journal(ResumableStore):
    """Finished items of one run in ``folder/journal.jsonl``, its settings in ``folder/run.json``:
    a :class:`egt.data.store.ResumableStore` whose header is that sidecar (the latest line for an
    id wins, so a record can be redone by appending it again)."""

    def __init__(self, folder: str | Path, settings: dict[str, Any], overwrite: bool = False):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / JOURNAL_FILE
        header, records = resume_or_start(path, settings, header_path=self.folder / RUN_FILE, overwrite=overwrite)
        super().__init__(path, header, records)
