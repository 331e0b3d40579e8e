"""The scores file of ``egt score``: crash-safe appends, resume, and the final atomic file.

Layout for a scores file ``FILE`` (``egt score`` writes ``<output_dir>/scores.jsonl``)::

    FILE.partial      while running: line 1 is the header, then one JSON line per finished item,
                      appended in batches, each batch flushed and fsync'ed
    FILE              at the end: one JSON line per item in data order (written atomically)
    FILE.meta.json    sidecar: the header (model + fingerprint, data + fingerprint, scoring config)
                      and counts; written atomically before FILE

``FILE.partial`` is an :class:`egt.data.store.ResumableStore` and follows its resume rules (the
run is killed at any point, even ``kill -9``, and rerun with the same command):

* a last line without its newline was cut mid-write: it is dropped (the file is truncated back to
  the last newline) and its item is scored again;
* a repeated id: the latest line wins (a run never writes one: finished items are not appended again);
* any other line that is not a JSON item of this dataset, or a header that is not one of ours →
  :class:`EgtError` ("corrupt resume file"), nothing is touched;
* a header written for another model, dataset or scoring config, or a final FILE written by one →
  refused unless ``--overwrite``.

Whether two runs are "the same" is decided by :func:`header_key`: the model's and data's content
fingerprints plus the scoring config — not their paths, so a moved folder still resumes.

One record per item (:func:`egt.entropy.summary.summarise_item`; lists are per rollout, ``[K]``)::

    id, index, preferred, category?          the item
    verdicts [K]          stored index 0/1 of each rollout's verdict; None = format failure
    swapped [K], n_tokens [K], texts [K]?    presentation, length, the rollout's text
    answer_entropies [K]  entropy at the verdict token; None unless the rollout is a well-formed
                          judge output (strict parser: one <think> block, one <answer>1|2</answer>)
    sentence_entropies [K], peak_entropies [K]
                          mean of sentence means / of the top-k token entropies in <think>;
                          None without a </think> (``scoring.peak_k`` in the header is k)
    answer_entropy, sentence_entropy, peak_entropy
                          means over the rollouts that have one (None when none has)
    vote_entropy          entropy of the K verdicts, a failure being an outcome of its own
    mixed_entropy         λ·rank(answer) + (1−λ)·rank(sentence) over the pool
    accuracy              share of rollouts whose verdict matches ``preferred`` (failures: wrong)
    format_rate, format_failures
                          share / number of the K rollouts that fail the strict parser
    flipped, hard, difficulty, true_preferred, ambiguity
                          the lab's ground truth, when the item carries it

Failure rule for every consumer: an item with ``format_failures > 0`` is less certain than any
item without, whatever its entropies (they are means over fewer rollouts, possibly one); the
selectors order by ``(format_failures, entropy, …)`` and the analysis ranks the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from egt.data.atomic import atomic_path, atomic_write_json, atomic_write_jsonl
from egt.data.readers import check_unique_ids, read_records
from egt.data.store import ResumableStore, corrupt, read_store
from egt.errors import EgtError

FORMAT = "egt-scores/1"
SHOW_IDS = 5
_SAMPLE_BYTES = 4 << 20  # files larger than 2 × this are fingerprinted by size + head + tail


# ----------------------------------------------------------------------------------------------
# Fingerprints
# ----------------------------------------------------------------------------------------------


def _hash_file(h: hashlib._Hash, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}:{size}:".encode())
    with open(path, "rb") as fh:
        if size <= 2 * _SAMPLE_BYTES:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        else:  # large weight shards: size + first and last 4 MiB (the safetensors header is in the head)
            h.update(fh.read(_SAMPLE_BYTES))
            fh.seek(size - _SAMPLE_BYTES)
            h.update(fh.read(_SAMPLE_BYTES))


def fingerprint(path: str | Path) -> str:
    """A content hash of a file or a folder (every file in it, by relative path), 16 hex digits.

    Files up to 8 MiB are hashed whole; larger ones (weight shards) by size and their first and
    last 4 MiB, which keeps a 15 GB checkpoint's fingerprint to a fraction of a second. A path that
    does not exist locally (a hub id) is fingerprinted by its name.
    """
    p = Path(path)
    h = hashlib.blake2b(digest_size=8)
    if p.is_file():
        _hash_file(h, p)
    elif p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")):
            h.update(str(f.relative_to(p)).encode())
            _hash_file(h, f)
    else:
        h.update(f"name:{path}".encode())
    return h.hexdigest()


SCORING_DEFAULTS = {"entropy_source": "generation"}
"""Scoring fields added after files were written: a header without one means this value."""


def header_key(header: dict) -> dict:
    """The part of a header that must match for a resume or a rerun: content, not paths."""
    scoring = header.get("scoring")
    if isinstance(scoring, dict):
        scoring = {**SCORING_DEFAULTS, **scoring}
    return {
        "format": header.get("format"),
        "model": (header.get("model") or {}).get("fingerprint"),
        "data": (header.get("data") or {}).get("fingerprint"),
        "scoring": scoring,
    }


def describe_mismatch(old: dict, new: dict) -> str:
    a, b = header_key(old), header_key(new)
    parts = []
    if a["model"] != b["model"]:
        parts.append(
            f"model {old.get('model', {}).get('path')!r} (fingerprint {a['model']}) vs "
            f"{new['model']['path']!r} ({b['model']})"
        )
    if a["data"] != b["data"]:
        parts.append(
            f"data {old.get('data', {}).get('path')!r} (fingerprint {a['data']}) vs "
            f"{new['data']['path']!r} ({b['data']})"
        )
    if a["scoring"] != b["scoring"] and isinstance(a["scoring"], dict):
        diffs = [
            f"{k}={a['scoring'].get(k)!r}→{b['scoring'].get(k)!r}"
            for k in sorted(set(a["scoring"]) | set(b["scoring"]))
            if a["scoring"].get(k) != b["scoring"].get(k)
        ]
        parts.append("scoring " + ", ".join(diffs))
    if a["format"] != b["format"]:
        parts.append(f"format {a['format']!r} vs {b['format']!r}")
    return "; ".join(parts) or "unknown difference"


# ----------------------------------------------------------------------------------------------
# The partial file
# ----------------------------------------------------------------------------------------------


def partial_path(out: str | Path) -> Path:
    return Path(str(out) + ".partial")


def meta_path(out: str | Path) -> Path:
    return Path(str(out) + ".meta.json")


def read_partial(path: Path, valid_ids: set[str] | None = None) -> tuple[dict, dict[str, dict], int]:
    """Header, finished items by id, and the byte length of the intact prefix (:func:`egt.data.store.read_store`,
    plus: the header must be an EGT scores header)."""
    header, items, intact = read_store(path, valid_ids=valid_ids)
    if header.get("format") != FORMAT:
        raise corrupt(Path(path), 1, f"not an EGT scores header (expected format {FORMAT!r})")
    return header, items, intact


def open_partial(out: str | Path, header: dict, valid_ids: set[str], overwrite: bool) -> ResumableStore:
    """Resume ``FILE.partial`` written for the same :func:`header_key`, or start a new one (module doc)."""
    return ResumableStore.open(
        partial_path(out), header, valid_ids=valid_ids, overwrite=overwrite, key=header_key, describe=describe_mismatch
    )


# ----------------------------------------------------------------------------------------------
# Final file
# ----------------------------------------------------------------------------------------------


def check_existing_output(out: str | Path, header: dict, overwrite: bool) -> bool:
    """True when FILE already holds this exact run's finished output (nothing left to do).

    A FILE from another model / data / config, or one without our sidecar, is refused unless
    ``overwrite``; it is then replaced only when the new run finishes.
    """
    out = Path(out)
    if not out.exists():
        return False
    meta = meta_path(out)
    old = None
    if meta.is_file():
        try:
            old = json.loads(meta.read_text(encoding="utf-8")).get("header")
        except (json.JSONDecodeError, AttributeError):
            old = None
    if old is not None and header_key(old) == header_key(header):
        return not partial_path(out).exists()
    if overwrite:
        return False
    why = (
        f"it was written for another configuration ({describe_mismatch(old, header)})"
        if old is not None
        else f"it has no readable sidecar {meta.name}, so it was not written by this scoring run"
    )
    raise EgtError(f"{out}: output exists and {why}; pass --overwrite to replace it")


def write_final(
    out: str | Path, header: dict, records: Sequence[dict], summary: dict, parquet: bool = False
) -> list[Path]:
    """Sidecar first, then FILE (and ``FILE``'s ``.parquet`` twin), each atomically; then drop the partial."""
    out = Path(out)
    atomic_write_json(meta_path(out), {"header": header, "summary": summary})
    atomic_write_jsonl(out, records)
    written = [out, meta_path(out)]
    if parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = out.with_suffix(".parquet")
        with atomic_path(target) as tmp:
            pq.write_table(pa.Table.from_pylist(list(records)), tmp)
        written.append(target)
    partial_path(out).unlink(missing_ok=True)
    return written


def read_scores(path: str | Path) -> tuple[dict, list[dict]]:
    """``(meta, records)`` of a finished scores file (``.jsonl`` or ``.parquet``).

    ``meta`` is the sidecar (``{"header": ..., "summary": ...}``), or ``{}`` when there is none.
    Every record needs a string ``id``; ids must be unique; a NaN or infinite number anywhere in a
    record (a file edited or written elsewhere) is refused naming the line and field — it would
    rank silently as a missing or an extreme value.
    """
    path = Path(path)
    if not path.is_file():
        hint = " (the run has not finished: rerun 'egt score' to complete it)" if partial_path(path).exists() else ""
        raise EgtError(f"{path}: no such scores file{hint}")
    records = []
    for loc, r in read_records(path):
        if not isinstance(r, dict) or not isinstance(r.get("id"), str):
            raise EgtError(f"{loc}: field 'id': missing or not a string")
        bad = next((k for k, v in r.items() if _non_finite(v)), None)
        if bad is not None:
            raise EgtError(
                f"{loc} (id={r['id']!r}): field {bad!r}: NaN or infinity is not a score "
                "(egt score writes null for a missing value)"
            )
        records.append(r)
    check_unique_ids((r["id"] for r in records), path)
    if not records:
        raise EgtError(f"{path}: the scores file is empty")
    meta_file = meta_path(path if path.suffix != ".parquet" else path.with_suffix(".jsonl"))
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    return meta, records


def _non_finite(value: Any) -> bool:
    """A float NaN / ±inf, itself or inside a list (JSON's NaN and Infinity parse to these)."""
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    return isinstance(value, list) and any(_non_finite(v) for v in value)


def format_failures(record: dict) -> int:
    """How many of a record's rollouts failed the strict parser (``format_failures``).

    Files written before the field existed: the count of None ``verdicts`` (the same thing).
    """
    failures = record.get("format_failures")
    if failures is None:
        failures = sum(v is None for v in record.get("verdicts") or [])
    return int(failures)


def show_ids(ids: Sequence[str]) -> str:
    """``'a', 'b', 'c' (and 12 more)`` for error messages."""
    shown = ", ".join(repr(i) for i in ids[:SHOW_IDS])
    return shown + (f" (and {len(ids) - SHOW_IDS} more)" if len(ids) > SHOW_IDS else "")


def jsonable(value: Any) -> Any:
    """Round floats for the file (6 decimals: far below any difference the analysis looks at)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value
