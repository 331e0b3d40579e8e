"""Reward benchmarks in one harness: VL-RewardBench, Multimodal RewardBench, MM-RLHF-RewardBench,
RewardBench (text) and a generic pairs format with a field mapping.

Each adapter reads its benchmark's real release format into :class:`egt.records.PreferencePair` s
and aggregates predictions into the benchmark's own headline metrics, with its own tie and
parse-failure rule stated (see each module's docstring). The harness around them
(:func:`egt.benchmarks.run.evaluate_benchmark`, ``egt eval --benchmark NAME``) judges both
presentation orders by default, checks images before judging, and writes the report, a markdown
table in the papers' layout and the per-item predictions.
"""

from __future__ import annotations

import re
from pathlib import Path

from egt.benchmarks import generic, mm_rlhf_rewardbench, multimodal_rewardbench, rewardbench, vl_rewardbench
from egt.benchmarks.base import Benchmark
from egt.errors import EgtError
from egt.evaluation.metrics import aggregate as _base_aggregate
from egt.records import PreferencePair, read_pairs


def _load_pairs(path: str | Path, images_dir: str | Path | None = None) -> list[PreferencePair]:
    return read_pairs(path)


# EGT's own pairs format (egt.records), the default of ``egt eval``: the foundation's metrics.
PAIRS = Benchmark(
    name="pairs",
    title="pairs",
    load=_load_pairs,
    aggregate=lambda predictions, pairs, tie_policy="wrong": _base_aggregate(predictions, tie_policy=tie_policy),
    tie_policy="wrong",
    rule="the project's default: a tie or an unparsable verdict is not a correct preference",
    headline="{accuracy} accuracy",
    headline_metrics=("accuracy",),
    repeated_ids="refuse",
    repeated_ids_rule="EGT's own pairs carry unique ids (egt.records.read_pairs refuses a repeat)",
)

BENCHMARKS: dict[str, Benchmark] = {
    m.BENCHMARK.name: m.BENCHMARK
    for m in (vl_rewardbench, multimodal_rewardbench, mm_rlhf_rewardbench, rewardbench, generic)
}


def normalize_name(name: str) -> str:
    """A benchmark name as people type it: ``VL-RewardBench`` (the dataset's name),
    ``vl-rewardbench``, ``VLRewardBench`` (its card's title) and ``vl_rewardbench`` are one name:
    case, ``-``, ``_`` and spaces do not matter."""
    squeezed = re.sub(r"[\s_-]+", "", name.strip().lower())
    known = {re.sub(r"[_-]", "", key): key for key in (*BENCHMARKS, PAIRS.name)}
    return known.get(squeezed, "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split()))


def benchmark_names() -> str:
    """Every benchmark once, with the title the papers use: the ``--benchmark`` help."""
    return "; ".join(
        f"{key} ({bench.title})" if key != generic.NAME else f"{key} (your own pairs, mapped by --fields)"
        for key, bench in BENCHMARKS.items()
    )


def get_benchmark(name: str, fields: str = "") -> Benchmark:
    """The benchmark called ``name`` in any case, with ``-`` or ``_`` (empty: EGT's pairs format);
    ``fields`` maps the generic one."""
    key = normalize_name(name)
    if fields and key != generic.NAME:
        raise EgtError(f"--fields applies to --benchmark {generic.NAME} only")
    if not key or key == PAIRS.name:
        return PAIRS
    if key == generic.NAME:
        return generic.with_fields(fields)
    try:
        return BENCHMARKS[key]
    except KeyError:
        raise EgtError(
            f"--benchmark: unknown benchmark {name!r} (one of {', '.join(BENCHMARKS)}, in any case, "
            f"with - or _; none for EGT's own pairs format)"
        ) from None


__all__ = ["BENCHMARKS", "PAIRS", "Benchmark", "benchmark_names", "get_benchmark", "normalize_name"]
