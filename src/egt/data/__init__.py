"""The shared data layer: reading records, resumable stores, presentation order, atomic writes.

* :mod:`egt.data.readers` — JSONL / JSON / parquet / saved ``datasets`` folders → ``(location, row)``;
  image cells and image files; one shape of field error.
* :mod:`egt.data.store` — the one resumable JSONL store (header + records, resume by id).
* :mod:`egt.data.presentation` — stored | random | both, the one seeded coin, the one validation.
* :mod:`egt.data.atomic` — every file EGT writes lands atomically.
"""

from egt.data.atomic import atomic_path, atomic_write_json, atomic_write_jsonl, atomic_write_text, read_json
from egt.data.presentation import ORDERS, check_order, derived_seed, presentations, seeded_coin, stable_unit
from egt.data.readers import (
    IMAGE_SUFFIXES,
    check_unique_ids,
    decode_image_cell,
    field_error,
    iter_jsonl,
    open_image,
    read_records,
    resolve_image_path,
)
from egt.data.store import OVERWRITE_HINT, ResumableStore, read_store

__all__ = [
    "IMAGE_SUFFIXES",
    "ORDERS",
    "OVERWRITE_HINT",
    "ResumableStore",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_jsonl",
    "atomic_write_text",
    "check_order",
    "check_unique_ids",
    "decode_image_cell",
    "derived_seed",
    "field_error",
    "iter_jsonl",
    "open_image",
    "presentations",
    "read_json",
    "read_records",
    "read_store",
    "resolve_image_path",
    "seeded_coin",
    "stable_unit",
]
