"""Data-parallel ``egt score`` under ``accelerate launch``: one part file per rank, rank 0 merges.

Launched with N processes (``accelerate launch --config_file configs/accelerate/cpu_2proc.yaml -m
egt.cli score ...``, or any multi-GPU config), :func:`egt.pipelines.scoring.run.score_pool` comes here:

* Sharding. The pool is cut into the same fixed batches a single process uses (``batch_size``
  items, in data order; a resumed run keeps the batch size it started with). The batches that still
  have an unfinished item are dealt round-robin to the ranks. Every batch is computed exactly as
  the single-process run computes it — same rows, same padding, same per-(seed, id, rollout)
  generators — so the merged file is the single-process file byte for byte (not only "within
  round-off"), whatever the number of processes.
* Part files. Rank r appends its finished items to ``FILE.part{r}.partial`` (the same crash-safe
  append-only format as ``FILE.partial``: :func:`egt.entropy.score_store.open_partial`). At the
  start every rank reads *every* part file present (any rank count, and a single-process
  ``FILE.partial`` too), so a rerun after a ``kill -9`` of one rank — or with another number of
  processes — scores only the items no part holds.
* Merge. After a barrier rank 0 reads all parts, adds ``mixed_entropy`` over the pool and writes
  ``FILE`` and its sidecar (:func:`egt.entropy.score_store.write_final`) exactly as the
  single-process command does, then deletes the parts.

Rank and world size come from ``accelerate.PartialState`` (:mod:`egt.evaluation.distributed`: initialised
only when the launcher set ``WORLD_SIZE`` > 1, so a plain single process never touches torch.distributed;
CPU ranks use gloo).
Measured on CPU only (2 cores, tiny judge): see docs/methods.md §2.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from egt.data.store import other_settings
from egt.entropy.sampling import PieceDecoder
from egt.entropy.score_store import describe_mismatch, header_key, open_partial, partial_path, read_partial
from egt.errors import EgtError
from egt.evaluation.distributed import Distributed
from egt.records import open_images

__all__ = ["part_path", "part_paths", "rank_parts", "score_sharded"]


def part_path(out: str | Path, rank: int) -> Path:
    return Path(f"{out}.part{rank}.partial")


def rank_parts(out: str | Path) -> list[Path]:
    """The rank part files ``FILE.part{r}.partial`` present (a single process without them keeps its own path)."""
    out = Path(out)
    return sorted(out.parent.glob(f"{out.name}.part*.partial"), key=lambda p: p.name)


def part_paths(out: str | Path) -> list[Path]:
    """Every part file of ``out`` present (rank parts, then a single-process ``FILE.partial``)."""
    single = partial_path(out)
    return rank_parts(out) + ([single] if single.exists() else [])


def _read_parts(
    out: Path, header: dict, valid_ids: set[str], overwrite: bool, dist: Distributed | None
) -> tuple[dict[str, dict], int | None]:
    """Items finished in any part, and the batch size the parts were written with (None: no parts)."""
    stale = []
    for path in part_paths(out):
        try:
            old, _, _ = read_partial(path, valid_ids)
        except EgtError:
            if not overwrite:
                raise
            stale.append(path)
            continue
        if header_key(old) != header_key(header):
            if not overwrite:
                raise other_settings(path, old, header, describe_mismatch)
            stale.append(path)
    if dist is not None:
        dist.barrier()  # everyone has checked before anything is deleted
    if stale and (dist is None or dist.is_main):
        for path in stale:
            path.unlink(missing_ok=True)
    if dist is not None:
        dist.barrier()
    done: dict[str, dict] = {}
    batch_size = None
    for path in part_paths(out):
        old, items, _ = read_partial(path, valid_ids)
        batch_size = batch_size or old["runtime"]["batch_size"]
        for rid, record in items.items():
            done.setdefault(rid, record)
    return done, batch_size


def score_sharded(
    loaded,
    pairs: Sequence,
    root: Path,
    out: Path,
    header: dict,
    cfg,
    dist: Distributed | None,
    *,
    style: str,
    max_new_tokens: int,
    overwrite: bool,
    parquet: bool,
    on_batch: Callable[[int], None] | None,
    start: float,
) -> dict:
    """Score this rank's share of the pool into its part file; rank 0 merges (module doc)."""
    from egt.pipelines.scoring.run import fill_store, score_batch, write_pool  # run imports this module

    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    valid = {p.id for p in pairs}
    done, batch_size = _read_parts(out, header, valid, overwrite, dist)
    header = {**header, "runtime": {**header["runtime"], "batch_size": batch_size or header["runtime"]["batch_size"]}}
    batch_size = header["runtime"]["batch_size"]
    resumed = len(done)
    if dist is not None:
        dist.barrier()  # every rank has read every part before any is appended to or truncated
    store = open_partial(Path(f"{out}.part{rank}"), header, valid, overwrite)
    store.records.update(done)  # items of other parts are not written again
    batches = [range(b, min(b + batch_size, len(pairs))) for b in range(0, len(pairs), batch_size)]
    pending = [(n, batch) for n, batch in enumerate(batches) if any(pairs[i].id not in done for i in batch)]
    mine = pending[rank::world]
    todo = sum(sum(pairs[i].id not in done for i in batch) for _, batch in mine)
    decoder = PieceDecoder(loaded.tokenizer)
    desc = f"scoring rank {rank}/{world}" + (f" (resuming: {resumed} done)" if resumed else "")

    def score(batch: range) -> list[dict]:
        chunk = [pairs[i] for i in batch]
        images = [open_images(p, root) if loaded.is_vision else [] for p in chunk]
        return score_batch(
            loaded, chunk, list(batch), images, cfg, style=style, max_new_tokens=max_new_tokens, decoder=decoder
        )

    scored = fill_store(store, mine, score, desc=desc, total=todo, on_batch=on_batch)

    if dist is not None:
        dist.barrier()  # every part is complete on disk
    result = {
        "out": str(out),
        "n_items": len(pairs),
        "scored_now": len(pairs) - resumed,
        "resumed": resumed,
        "rank": rank,
        "processes": world,
        "scored_by_this_rank": scored,
    }
    if dist is None or dist.is_main:
        merged: dict[str, dict] = {}
        for path in part_paths(out):
            for rid, record in read_partial(path, valid)[1].items():
                merged.setdefault(rid, record)
        missing = [p.id for p in pairs if p.id not in merged]
        if missing:
            raise EgtError(
                f"{out}: {len(missing)} item(s) missing after every rank finished (first {missing[0]!r}); "
                "rerun the same command to complete them"
            )
        written, summary = write_pool(out, header, merged, [p.id for p in pairs], cfg.lam, parquet)
        for path in part_paths(out):
            path.unlink(missing_ok=True)
        result.update(summary, files=[str(p) for p in written])
    if dist is not None:
        dist.barrier()  # nobody returns before the merged file exists
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    return result
