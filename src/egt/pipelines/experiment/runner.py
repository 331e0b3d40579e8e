"""Run the experiment's units in dependency order, ``workers`` at a time, resuming from disk.

The plan is recomputed from the folders' ``done.json`` files after every finished unit, so a rerun
after ``kill -9`` (or a crash, or a changed worker count) skips everything finished and starts or
resumes only the rest. Units run in fresh processes (``spawn``; one unit per process, torch threads
set to ``cfg.worker_threads()``), which also die with the parent on Linux (``PR_SET_PDEATHSIG``), so
no orphan keeps writing into a folder that a rerun is about to redo.

A unit that fails is reported with its error and the run goes on with what does not depend on it;
the command then exits non-zero. One progress line per finished unit, with an ETA from the mean
duration of finished units of the same kind.

Ready units start in priority order: labs, SFT, scoring and relabelling first, then table N's cells
block by block and arm by arm across the seeds (the preset's order), so an interrupted grid has
its first blocks finished on every seed rather than every block on its first seed. An arm whose
feature this installation lacks (``cells.missing_feature``: the pass-rate selector, dynamic sampling
with refill) is left out of the plan with one message, and the rest of the grid runs.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context

from egt.data.atomic import atomic_write_json, read_json
from egt.errors import EgtError
from egt.pipelines.experiment import steps
from egt.pipelines.experiment.config import ExperimentConfig
from egt.pipelines.experiment.grid import block_arms, parse_blocks, regime_arms


@dataclass
class Unit:
    """One unit of work: ``kind`` (lab | sft | stats | rl), a key, the folder its ``done.json`` lands in."""

    kind: str
    key: str
    folder: object
    call: tuple  # (function name in egt.pipelines.experiment.runner, args)
    deps: list[str] = field(default_factory=list)
    priority: tuple = (0,)


def plan(cfg: ExperimentConfig, skipped: dict[str, str] | None = None) -> list[Unit]:
    """Every unit the preset needs, given what is on disk (RL cells appear once their scores exist).

    ``skipped`` collects ``{arm name: why}`` for table-N arms this installation cannot run.
    """
    units: list[Unit] = []
    teachers = cfg.teachers if "T0" in cfg.tables and cfg.uses_lab else [cfg.rl_teacher]
    for seed in cfg.seeds:
        for teacher in teachers:
            lab_key, sft_key = f"seed{seed}/lab-{teacher}", f"seed{seed}/sft-{teacher}"
            units.append(Unit("lab", lab_key, steps.lab_dir(cfg, seed, teacher), ("lab", (seed, teacher))))
            units.append(Unit("sft", sft_key, steps.sft_dir(cfg, seed, teacher), ("sft", (seed, teacher)), [lab_key]))
            epochs = (
                cfg.sft_checkpoint_epochs
                if "T0" in cfg.tables
                else sorted({steps.regime_epoch(cfg, r) for r in cfg.regimes})
            )
            if teacher != cfg.rl_teacher:
                epochs = cfg.sft_checkpoint_epochs
            for epoch in epochs:
                units.append(
                    Unit(
                        "stats",
                        f"{sft_key}/{steps.epoch_name(epoch)}",
                        steps.stats_dir(cfg, seed, teacher, epoch),
                        ("stats", (seed, teacher, epoch)),
                        [sft_key],
                    )
                )
        for regime in cfg.regimes:
            stats_folder = steps.regime_stats_dir(cfg, seed, regime)
            stats_key = f"seed{seed}/sft-{cfg.rl_teacher}/{steps.epoch_name(steps.regime_epoch(cfg, regime))}"
            main = steps.main_signal_of(cfg, steps.read_done(stats_folder)) if steps.is_done(stats_folder) else None
            for arm in regime_arms(cfg, regime, main or cfg.signals[0]):
                if not arm.needs_rl:
                    continue
                key = f"seed{seed}/{regime}/{arm.name}" if main else f"seed{seed}/{regime}/<{arm.name}>"
                units.append(
                    Unit(
                        "rl",
                        key,
                        steps.cell_dir(cfg, seed, regime, arm),
                        ("rl", (seed, regime, arm)) if main else ("pending", ()),
                        [stats_key],
                    )
                )
    units += _noise_units(cfg, skipped if skipped is not None else {})
    seen: dict[str, Unit] = {}
    for u in units:
        seen.setdefault(u.key, u)
    return list(seen.values())


def _noise_units(cfg: ExperimentConfig, skipped: dict[str, str]) -> list[Unit]:
    """Table N: the relabelled pools and every block's RL cells, prioritised block → arm → seed."""
    from egt.pipelines.experiment.cells import missing_feature

    if "N" not in cfg.tables:
        return []
    units: list[Unit] = []
    blocks = parse_blocks(cfg.blocks)
    for seed in cfg.seeds:
        lab_key = f"seed{seed}/lab-{cfg.rl_teacher}"
        for noise in sorted({b.noise for b in blocks} - {"random"}):
            folder = steps.noise_dir(cfg, seed, noise)
            units.append(Unit("noise", f"seed{seed}/noise-{noise}", folder, ("noise", (seed, noise)), [lab_key]))
        for b, block in enumerate(blocks):
            stats_folder = steps.regime_stats_dir(cfg, seed, block.regime)
            stats_key = f"seed{seed}/sft-{cfg.rl_teacher}/{steps.epoch_name(steps.regime_epoch(cfg, block.regime))}"
            deps = [stats_key] + ([f"seed{seed}/noise-{block.noise}"] if block.noise != "random" else [])
            main = steps.main_signal_of(cfg, steps.read_done(stats_folder)) if steps.is_done(stats_folder) else None
            for a, (_token, _label, arm) in enumerate(block_arms(cfg, block, main or cfg.signals[0])):
                if not arm.needs_rl:
                    continue
                why = missing_feature(arm)
                if why:
                    skipped[arm.name] = why
                    continue
                name = arm.name if main else f"<{arm.name}>"
                key = f"seed{seed}/{block.key}/{name}"
                units.append(
                    Unit(
                        "rl",
                        key,
                        steps.cell_dir(cfg, seed, block.regime, arm, block.noise, block.strength),
                        ("rl", (seed, block.regime, arm, block.noise, block.strength)) if main else ("pending", ()),
                        deps,
                        priority=(1, b, a, seed),
                    )
                )
    return units


# --------------------------------------------------------------------------------------------
# The worker side
# --------------------------------------------------------------------------------------------


def _worker_init(threads: int) -> None:
    try:  # die with the parent: no orphan writes into a folder a rerun redoes
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["EGT_PROGRESS"] = "0"
    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _run_unit(cfg: ExperimentConfig, name: str, args: tuple) -> dict:
    from egt.pipelines.experiment.cells import run_cell

    functions: dict[str, Callable] = {
        "lab": steps.run_lab,
        "sft": steps.run_sft,
        "stats": steps.run_judge_stats,
        "noise": steps.run_noise,
        "rl": run_cell,
    }
    t0 = time.perf_counter()
    try:
        result = functions[name](cfg, *args)
    except EgtError as e:  # a user error: its one line says what and where
        return {"error": str(e), "traceback": ""}
    except Exception as e:  # reported by the parent; other units go on
        return {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    return {"seconds": time.perf_counter() - t0, "summary": _headline(name, result)}


def _headline(name: str, result: dict) -> str:
    if name == "sft":
        return f"{result.get('steps')} steps, loss {result.get('last_loss')}"
    if name == "stats":
        return f"test {100 * result['test']['accuracy']:.1f}%, main signal {result['main_signal']}"
    if name == "rl":
        return f"test {100 * result['curve'][0]['accuracy']:.1f}% → {100 * result['final']['accuracy']:.1f}%"
    return ""


# --------------------------------------------------------------------------------------------
# The parent side
# --------------------------------------------------------------------------------------------


def _fmt_seconds(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def check_preset(cfg: ExperimentConfig) -> None:
    """A folder holds one preset: a rerun with other settings is refused, naming the fields."""
    from dataclasses import asdict

    path = os.path.join(cfg.output_dir, "experiment.json")
    # "out": folders written before the rename; blocks and control_drop choose and judge cells, they do not
    # change one (a cell's folder names its noise, strength, regime and arm)
    ignore = {"output_dir", "out", "workers", "threads", "tables", "blocks", "control_drop"}
    mine = {k: v for k, v in asdict(cfg).items() if k not in ignore}
    if os.path.isfile(path):
        old = {k: v for k, v in read_json(path).items() if k not in ignore}
        default = asdict(ExperimentConfig())  # a field added later reads as its default in an older folder
        changed = sorted(k for k in set(old) | set(mine) if old.get(k, default.get(k)) != mine.get(k))
        if changed:
            raise EgtError(
                f"{path}: this folder holds an experiment with other settings ({', '.join(changed)}); "
                "use another --output_dir, or restore the settings to resume"
            )
    atomic_write_json(path, asdict(cfg))


def run_experiment(cfg: ExperimentConfig, log: Callable[[str], None] = print) -> dict:
    """Run every unit not yet done; returns ``{"done", "failed", "seconds"}``."""
    cfg.check()
    steps.check_user_data(cfg)
    check_preset(cfg)
    threads = cfg.worker_threads()
    durations: dict[str, list[float]] = defaultdict(list)
    failed: dict[str, str] = {}
    running: dict[Future, Unit] = {}
    start = time.perf_counter()
    total_done = 0
    context = get_context("spawn")
    skipped: dict[str, str] = {}
    already = [u for u in plan(cfg, skipped) if steps.is_done(u.folder)]
    log(
        f"experiment {cfg.preset} → {cfg.output_dir}: {cfg.workers} worker(s) × {threads} thread(s); "
        f"{len(already)} unit(s) already done, skipped"
    )
    for name, why in sorted(skipped.items()):
        log(f"not run: arm {name}: {why}; the grid runs without it (rerun once it is installed)")
    with ProcessPoolExecutor(
        cfg.workers, mp_context=context, initializer=_worker_init, initargs=(threads,), max_tasks_per_child=1
    ) as pool:
        while True:
            units = plan(cfg)
            done = {u.key for u in units if steps.is_done(u.folder)}
            busy = {u.key for u in running.values()}
            todo = [u for u in units if u.key not in done and u.key not in busy and u.key not in failed]
            ready = [u for u in todo if u.call[0] != "pending" and all(d in done for d in u.deps)]
            ready.sort(key=lambda u: u.priority)  # stable: plan order within a priority
            for unit in ready[: cfg.workers - len(running)]:
                running[pool.submit(_run_unit, cfg, *unit.call)] = unit
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                unit = running.pop(future)
                outcome = future.result()
                if "error" in outcome:
                    failed[unit.key] = outcome["error"]
                    log(
                        f"[failed] {unit.key}: {outcome['error']}"
                        + (f"\n{outcome['traceback']}" if outcome["traceback"] else "")
                    )
                    continue
                durations[unit.kind].append(outcome["seconds"])
                total_done += 1
                left = [u for u in plan(cfg) if not steps.is_done(u.folder) and u.key not in failed]
                mean = {k: sum(v) / len(v) for k, v in durations.items()}
                fallback = sum(mean.values()) / len(mean)
                eta = sum(mean.get(u.kind, fallback) for u in left) / cfg.workers
                log(
                    f"[{total_done} done, {len(left)} left] {unit.key}: {outcome['summary']} "
                    f"in {_fmt_seconds(outcome['seconds'])}; ETA {_fmt_seconds(eta)}"
                )
    blocked = [u.key for u in plan(cfg) if not steps.is_done(u.folder) and u.key not in failed]
    return {
        "done": total_done,
        "failed": failed,
        "blocked": blocked,
        "not_run": skipped,
        "seconds": round(time.perf_counter() - start, 1),
    }
