"""The one small harness every script in bench/ runs on: flags, timing, tables, targets, JSON results.

A bench script measures something (a speed, a memory peak, an accuracy) and prints it next to its
target; it never asserts. Speed targets are RATIOS against a baseline timed side by side in the same
process, the sides interleaved (A B A B …, the order alternating every round), so that a slow spell
of a shared machine hits both alike. What every script gets from here:

- ``make_parser(doc)``: the common flags, spelled the same everywhere (underscores):
  ``--threads`` (torch threads, default 2), ``--repeats`` (timed rounds), ``--quick`` (a smaller run
  that finishes in about a minute on 1–2 cores: a smoke check, not the numbers), ``--output_dir``
  (the folder where ``<script>.json`` is written) and ``--seed``. ``parse(parser, quick={...})``
  applies the script's quick sizes to every flag left at its default, sets the torch threads.
- ``measure`` / ``interleave`` / ``Samples``: wall and process-CPU seconds of a call; A/B sides timed
  in turn after warm-up rounds; best-of and median; ``paired_ratio`` = median over rounds of A/B.
- ``print_table``: one rich table; ``Check``: a target, printed as a PASS / FAIL line.
- ``finish``: prints the checks, writes the JSON results (args, machine info, numbers, checks) and
  returns the exit status: 0. A status other than 0 means the script crashed, never a missed target.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_THREADS = 2
DEFAULT_OUTPUT_DIR = "runs/bench"
COMPARISONS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("EGT_PROGRESS", "0")


# ------------------------------------------------------------------------------------------------
# Flags
# ------------------------------------------------------------------------------------------------


def make_parser(doc: str | None, repeats: int = 5) -> argparse.ArgumentParser:
    """An argument parser with the common bench flags; the script adds its own after them."""
    parser = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0] if doc else None,
        epilog="Common flags are the same in every bench script; see bench/README.md.",
    )
    common = parser.add_argument_group("common bench flags")
    common.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="torch threads")
    common.add_argument("--repeats", type=int, default=repeats, help="timed rounds (interleaved A/B)")
    common.add_argument("--quick", action="store_true", help="a small run (about a minute): a smoke check")
    common.add_argument(
        "--output_dir", default=DEFAULT_OUTPUT_DIR, help="folder for <script>.json (and any work files)"
    )
    common.add_argument("--seed", type=int, default=0)
    return parser


def apply_quick(parser: argparse.ArgumentParser, args: argparse.Namespace, quick: Mapping[str, object]) -> None:
    """With ``--quick``, set every flag named in ``quick`` that was left at its default to its quick value."""
    if not args.quick:
        return
    for name, value in quick.items():
        if not hasattr(args, name):
            raise KeyError(f"quick sets {name!r}, which is not a flag of this script")
        if getattr(args, name) == parser.get_default(name):
            setattr(args, name, value)


def parse(
    parser: argparse.ArgumentParser, quick: Mapping[str, object] | None = None, argv: list[str] | None = None
) -> argparse.Namespace:
    """Parse the flags, apply the quick sizes, set torch's thread count."""
    args = parser.parse_args(argv)
    apply_quick(parser, args, quick or {})
    import torch

    torch.set_num_threads(args.threads)
    return args


def work_dir(args: argparse.Namespace, script: str) -> Path:
    """``<output_dir>/<script>/``: where a script keeps what it builds (labs, models) between runs."""
    path = Path(args.output_dir) / script_name(script)
    path.mkdir(parents=True, exist_ok=True)
    return path


def script_name(script: str) -> str:
    """``bench/rm_lab.py`` → ``rm_lab``."""
    return Path(script).stem


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------


@dataclass
class Samples:
    """Wall and process-CPU seconds of repeated runs of one side."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    def best(self, clock: str = "wall") -> float:
        return min(getattr(self, clock))

    def median(self, clock: str = "wall") -> float:
        return statistics.median(getattr(self, clock))

    def summary(self) -> dict[str, float | int]:
        return {
            "n": len(self.wall),
            "wall_best": self.best("wall"),
            "wall_median": self.median("wall"),
            "cpu_best": self.best("cpu"),
            "cpu_median": self.median("cpu"),
        }


def measure(fn: Callable[[], object], sync: Callable[[], None] | None = None) -> tuple[object, float, float]:
    """``(fn(), wall seconds, process CPU seconds)``; ``sync`` (e.g. ``torch.cuda.synchronize``) runs
    before the clocks start and before they stop."""
    if sync:
        sync()
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    if sync:
        sync()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def interleave(
    sides: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    alternate: bool = True,
    sync: Callable[[], None] | None = None,
) -> tuple[dict[str, Samples], dict[str, object]]:
    """Time every side once per round, in turn, for ``warmup`` untimed rounds then ``repeats`` timed ones.

    With ``alternate`` the order reverses every round (A B, B A, …), so neither side always runs
    right after the other. Returns each side's samples and the output of its last run.
    """
    samples = {name: Samples() for name in sides}
    outputs: dict[str, object] = {}
    for round_ in range(warmup + repeats):
        names = list(sides)
        if alternate and round_ % 2:
            names.reverse()
        for name in names:
            outputs[name], wall, cpu = measure(sides[name], sync)
            if round_ >= warmup:
                samples[name].add(wall, cpu)
    return samples, outputs


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of ``a[i] / b[i]``: each round's two sides shared the machine's load."""
    if not a or len(a) != len(b):
        raise ValueError(f"paired_ratio needs two equally long, non-empty lists (got {len(a)} and {len(b)})")
    return statistics.median(x / y for x, y in zip(a, b))


# ------------------------------------------------------------------------------------------------
# Targets, tables, results
# ------------------------------------------------------------------------------------------------


@dataclass
class Check:
    """A target: ``value op target``, op one of ``<=``, ``>=``, ``<``, ``>``."""

    name: str
    value: float
    target: float
    op: str = "<="

    def __post_init__(self) -> None:
        if self.op not in COMPARISONS:
            raise ValueError(f"op must be one of {', '.join(COMPARISONS)}, got {self.op!r}")

    @property
    def passed(self) -> bool:
        return bool(COMPARISONS[self.op](self.value, self.target))


def console():
    from rich.console import Console

    return Console(width=shutil.get_terminal_size((160, 24)).columns, highlight=False)


def print_table(title: str, columns: list[str], rows: list[list], caption: str | None = None) -> None:
    """A title line, one table (every cell shown with ``str``: format numbers before; ``None`` prints
    as ``-``), and a caption line under it."""
    from rich.table import Table

    table = Table()
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    out = console()
    out.print(f"\n{title}", markup=False)
    out.print(table)
    if caption:
        out.print(caption, markup=False)


def print_checks(checks: list[Check]) -> None:
    if checks:
        rows = [[c.name, f"{c.value:.4g}", f"{c.op} {c.target:g}", "PASS" if c.passed else "FAIL"] for c in checks]
        print_table("targets", ["measure", "value", "target", "result"], rows)


def machine_info() -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def results_document(script: str, args: argparse.Namespace, results: dict, checks: list[Check]) -> dict:
    """What ``<script>.json`` holds."""
    return {
        "script": script_name(script),
        "argv": sys.argv[1:],
        "args": {k: v if isinstance(v, (bool, int, float, str, type(None))) else str(v) for k, v in vars(args).items()},
        "machine": machine_info(),
        "results": results,
        "checks": [{**asdict(c), "passed": c.passed} for c in checks],
    }


def write_results(path: Path, document: dict) -> Path:
    """Write ``document`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def finish(script: str, args: argparse.Namespace, results: dict, checks: list[Check] | None = None) -> int:
    """Print the targets, write ``<output_dir>/<script>.json``; the exit status (0: the script ran)."""
    checks = checks or []
    print_checks(checks)
    path = write_results(
        Path(args.output_dir) / f"{script_name(script)}.json", results_document(script, args, results, checks)
    )
    print(f"results: {path}")
    return 0
