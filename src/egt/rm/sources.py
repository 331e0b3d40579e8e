"""Training data for reward models: several preference sources mixed by weight or count, under a seed.

A source is a local file (``.jsonl``, ``.jsonl.gz``, ``.parquet``, a saved ``datasets`` folder) or
an HF dataset (``hf:NAME``, loaded with ``datasets.load_dataset``; offline this means a local
dataset folder or the hub cache). Written as a string — ``PATH[,key=value...]`` — so the same spec
works in YAML and on the command line, or as a YAML mapping with the same keys::

    sources:
      - runs/lab/sft.jsonl,name=lab,weight=1.0
      - ../shared/data/hh_rlhf/harmless-base_test.jsonl.gz,name=hh,n=500
      - {path: "hf:my/prefs", split: train, n: 200}

Keys: ``name`` (default: the file stem), ``n`` (take exactly n pairs), ``weight`` (without
``mix_size``: a multiple of the source's size, 0.5 = half, 2 = every pair twice; with ``mix_size``:
the source's share of ``mix_size`` among the weighted sources), ``images_root`` (default: the
file's folder), ``split`` (HF datasets), ``format``. A count above a source's size repeats pairs
(whole passes, then a random remainder); the report says how many were unique.

Formats (``format=auto`` looks at the first record): EGT pair records (``responses`` +
``preferred``), TRL's explicit-prompt preference rows (``prompt``, ``chosen``, ``rejected``), and
HH-RLHF transcripts (``chosen`` / ``rejected`` only: the shared "Human: … Assistant:" prefix is the
question, the final assistant turn the response).

Bad records — identical responses, an image that fails to decode, a malformed record, HH
transcripts whose prompts differ — stop the run with an error naming the source and the record,
or, with ``skip_bad``, are skipped and counted per source and reason. A source that cannot be read
at all always stops the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egt.data.readers import decode_image_cell, read_records
from egt.errors import EgtError
from egt.records import PreferencePair, open_images, pair_from_row
from egt.rm.collate import RewardExample

FORMATS = ("auto", "pairs", "preference", "hh_rlhf")
HH_ASSISTANT = "\n\nAssistant:"


@dataclass
class SourceSpec:
    path: str
    name: str = ""
    n: int | None = None
    weight: float | None = None
    images_root: str | None = None
    split: str = "train"
    format: str = "auto"

    @property
    def is_hf(self) -> bool:
        return self.path.startswith("hf:")

    @property
    def label(self) -> str:
        return f"source {self.name!r} ({self.path})"


def parse_source(spec: str | dict) -> SourceSpec:
    """``"PATH,key=value,..."`` or a mapping → :class:`SourceSpec` (errors name the spec)."""
    if isinstance(spec, dict):
        fields = {str(k): v for k, v in spec.items()}
    elif isinstance(spec, str) and spec.strip():
        head, *rest = [part.strip() for part in spec.split(",")]
        fields = {"path": head}
        for part in rest:
            key, sep, value = part.partition("=")
            if not sep:
                raise EgtError(f"source {spec!r}: expected key=value after the path, got {part!r}")
            fields[key.strip()] = value.strip()
    else:
        raise EgtError(f"source {spec!r}: expected 'PATH[,key=value...]' or a mapping")
    known = set(SourceSpec.__dataclass_fields__)
    unknown = set(fields) - known
    if unknown or "path" not in fields:
        raise EgtError(f"source {spec!r}: unknown keys {sorted(unknown)} or no path (keys: {sorted(known)})")
    try:
        out = SourceSpec(
            path=str(fields["path"]),
            name=str(fields.get("name") or ""),
            n=int(fields["n"]) if fields.get("n") not in (None, "") else None,
            weight=float(fields["weight"]) if fields.get("weight") not in (None, "") else None,
            images_root=str(fields["images_root"]) if fields.get("images_root") else None,
            split=str(fields.get("split") or "train"),
            format=str(fields.get("format") or "auto"),
        )
    except ValueError as e:
        raise EgtError(f"source {spec!r}: {e}") from None
    if out.n is not None and out.weight is not None:
        raise EgtError(f"source {spec!r}: give n or weight, not both")
    if (out.n is not None and out.n < 0) or (out.weight is not None and out.weight < 0):
        raise EgtError(f"source {spec!r}: n and weight must be ≥ 0")
    if out.format not in FORMATS:
        raise EgtError(f"source {spec!r}: unknown format {out.format!r} (one of {', '.join(FORMATS)})")
    if not out.name:
        out.name = out.path[3:] if out.is_hf else Path(out.path).name.split(".")[0]
    return out


# ------------------------------------------------------------------------------------------------
# reading one source


def iter_rows(spec: SourceSpec) -> Iterator[tuple[str, dict]]:
    """``(location, row)`` for every record of a source, the location naming the source; an
    unreadable source is an EgtError. Local files go through :func:`egt.data.readers.read_records`."""
    if spec.is_hf:
        import datasets

        try:
            ds = datasets.load_dataset(spec.path[3:], split=spec.split)
        except Exception as e:  # datasets raises many types for a missing / offline dataset
            raise EgtError(f"{spec.label}: cannot load the HF dataset ({type(e).__name__}: {e})") from None
        for i, row in enumerate(ds):
            yield f"{spec.label}: record {i}", row
        return
    try:  # the reader's locations and errors already name the file
        for loc, row in read_records(spec.path):
            yield f"source {spec.name!r}: {loc}", row
    except EgtError as e:
        raise EgtError(f"source {spec.name!r}: {e}") from None


def detect_format(row: Any) -> str:
    if isinstance(row, dict):
        if "responses" in row:
            return "pairs"
        if "chosen" in row and "rejected" in row:
            return "preference" if "prompt" in row else "hh_rlhf"
    return "pairs"  # let the record validator report what is missing


def row_to_pair(row: Any, fmt: str, loc: str, index: int, name: str) -> PreferencePair:
    """One record in any supported format → :class:`PreferencePair` (EgtError names ``loc``)."""
    if fmt == "pairs":
        return pair_from_row(row, loc)
    if not isinstance(row.get("chosen"), str) or not isinstance(row.get("rejected"), str):
        raise EgtError(f"{loc}: fields 'chosen' and 'rejected' must be strings")
    rid = str(row.get("id", f"{name}-{index}"))
    if fmt == "preference":
        if not isinstance(row.get("prompt"), str):
            raise EgtError(f"{loc}: field 'prompt': must be a string (conversational rows are not supported here)")
        question, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    else:
        question, chosen = split_hh(row["chosen"], loc, "chosen")
        question_r, rejected = split_hh(row["rejected"], loc, "rejected")
        if question != question_r:
            raise EgtError(f"{loc} (id={rid!r}): chosen and rejected transcripts have different prompts")
    images = [decode_image_cell(c, loc, row, "images") for c in (row.get("images") or [])]
    return PreferencePair(
        id=rid, question=question, responses=(chosen, rejected), preferred=0, images=images, source=name
    )


def split_hh(transcript: str, loc: str, fieldname: str) -> tuple[str, str]:
    """HH-RLHF transcript → (dialogue up to the last human turn, final assistant reply)."""
    cut = transcript.rfind(HH_ASSISTANT)
    if cut < 0:
        raise EgtError(f"{loc}: field {fieldname!r}: no '\\n\\nAssistant:' turn")
    return transcript[:cut].strip(), transcript[cut + len(HH_ASSISTANT) :].strip()


def images_root_of(spec: SourceSpec) -> str | None:
    if spec.images_root:
        return spec.images_root
    if spec.is_hf:
        return None
    path = Path(spec.path)
    return str(path if path.is_dir() else path.parent)


def read_source(
    spec: SourceSpec, *, skip_bad: bool = False, check_images: bool = True, reads_images: bool = True
) -> tuple[list[PreferencePair], Counter]:
    """All good pairs of one source and the count of skipped records per reason."""
    skipped: Counter = Counter()
    pairs: list[PreferencePair] = []
    root = images_root_of(spec)
    fmt = spec.format
    for index, (loc, row) in enumerate(iter_rows(spec)):
        if fmt == "auto":
            fmt = detect_format(row)
        try:
            pair = row_to_pair(row, fmt, loc, index, spec.name)
            if pair.responses[0].strip() == pair.responses[1].strip():
                raise _Bad(
                    "identical_responses", f"{loc} (id={pair.id!r}): field 'responses': the two responses are identical"
                )
            if check_images and reads_images and pair.images:
                try:
                    open_images(pair, root)
                except EgtError as e:
                    raise _Bad("bad_image", f"{loc}: {e}") from None
        except _Bad as bad:
            if not skip_bad:
                raise EgtError(str(bad)) from None
            skipped[bad.reason] += 1
            continue
        except EgtError as e:
            if not skip_bad:
                raise EgtError(str(e) if str(e).startswith("source ") else f"{spec.label}: {e}") from None
            skipped["malformed"] += 1
            continue
        pairs.append(pair)
    if not pairs:
        raise EgtError(f"{spec.label}: no usable pairs" + (f" (skipped: {dict(skipped)})" if skipped else ""))
    return pairs, skipped


class _Bad(EgtError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# ------------------------------------------------------------------------------------------------
# mixing


@dataclass
class DataMix:
    """The mixed, shuffled examples and what each source contributed."""

    examples: list[RewardExample]
    report: dict[str, Any] = field(default_factory=dict)


def sample_indices(rng: np.random.Generator, available: int, k: int) -> np.ndarray:
    """``k`` indices into ``range(available)``: whole shuffled passes, then a random remainder."""
    passes, remainder = divmod(k, available)
    parts = [rng.permutation(available) for _ in range(passes)]
    parts.append(rng.choice(available, size=remainder, replace=False))
    return np.concatenate(parts).astype(int)


def planned_counts(specs: Sequence[SourceSpec], sizes: Sequence[int], mix_size: int = 0) -> list[int]:
    """Pairs to take from each source (see the module docstring for ``n`` / ``weight``)."""
    weighted = [s.weight if s.weight is not None else 1.0 for s in specs]
    total_weight = sum(w for s, w in zip(specs, weighted) if s.n is None)
    counts = []
    for spec, size, w in zip(specs, sizes, weighted):
        if spec.n is not None:
            counts.append(spec.n)
        elif mix_size:
            counts.append(round(mix_size * w / total_weight) if total_weight else 0)
        else:
            counts.append(round(w * size))
    return counts


def mix_sources(
    sources: Sequence[str | dict | SourceSpec],
    *,
    seed: int = 0,
    mix_size: int = 0,
    skip_bad: bool = False,
    check_images: bool = True,
    reads_images: bool = True,
) -> DataMix:
    """Read, validate and mix the sources; the same sources and seed give the same examples."""
    specs = [s if isinstance(s, SourceSpec) else parse_source(s) for s in sources]
    if not specs:
        raise EgtError("no training sources given (field 'sources')")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise EgtError(f"sources: names must be unique, got {names} (set name=... on each)")
    read = [read_source(s, skip_bad=skip_bad, check_images=check_images, reads_images=reads_images) for s in specs]
    counts = planned_counts(specs, [len(p) for p, _ in read], mix_size)
    examples: list[RewardExample] = []
    rows = []
    for i, (spec, (pairs, skipped), k) in enumerate(zip(specs, read, counts)):
        rng = np.random.default_rng([seed, i])
        idx = sample_indices(rng, len(pairs), k)
        root = images_root_of(spec)
        examples += [RewardExample(pairs[j], root, spec.name) for j in idx]
        rows.append(
            {
                "name": spec.name,
                "path": spec.path,
                "available": len(pairs),
                "taken": int(k),
                "unique": int(len(set(idx.tolist()))),
                "skipped": dict(skipped),
                "with_images": sum(bool(pairs[j].images) for j in idx),
            }
        )
    order = np.random.default_rng([seed, len(specs)]).permutation(len(examples))
    examples = [examples[j] for j in order]
    return DataMix(examples, {"seed": seed, "mix_size": mix_size, "total": len(examples), "sources": rows})
