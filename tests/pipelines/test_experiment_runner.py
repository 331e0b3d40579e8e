"""The experiment runner's schedule (``plan``), failure path and resume, deterministically: its units
are replaced by fakes that write their ``done.json`` at once, and its process pool by one that runs
each unit in this process. (test_experiment_run.py runs the real units, killed mid-run.)"""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from egt.data.atomic import atomic_write_json
from egt.pipelines.experiment import cells, runner, steps
from egt.pipelines.experiment.config import ExperimentConfig

MICRO = dict(
    preset="micro",
    seeds=[0],
    tables=["T1"],
    teachers=["annotator"],
    rl_teacher="annotator",
    sft_epochs=1,
    sft_checkpoint_epochs=[1],
    regimes=["converged"],
    converged_epoch=1,
    weak_epoch=1,
    main_regime="converged",
    signals=["answer", "peak"],
    fraction=0.5,
)
RL_CELLS = {
    "full-100pct-off-grpo",
    "random-50pct-off-grpo",
    "accuracy-50pct-off-grpo",
    "entropy-answer-50pct-off-grpo",
    "entropy-peak-50pct-off-grpo",
    "highest-peak-50pct-off-grpo",
    "oracle-50pct-off-grpo",
}


class InProcessPool:
    """``ProcessPoolExecutor`` as the runner uses it, running each unit when it is submitted."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        future = Future()
        future.set_result(fn(*args))  # _run_unit catches a unit's exceptions itself
        return future


@pytest.fixture
def fake_units(monkeypatch):
    """Every unit writes its done.json with what the runner reads back; ``calls`` lists them in order,
    ``fail`` holds unit names (lab | sft | stats | rl) that raise instead, once each."""
    calls, fail = [], set()

    def unit(kind, folder_of, result):
        def run(cfg, *args):
            calls.append((kind, *[a.name if hasattr(a, "name") else a for a in args]))
            if kind in fail:
                fail.discard(kind)
                raise RuntimeError(f"{kind} broke")
            atomic_write_json(folder_of(cfg, *args) / steps.DONE, result)
            return result

        return run

    monkeypatch.setattr(runner, "ProcessPoolExecutor", InProcessPool)
    monkeypatch.setattr(steps, "run_lab", unit("lab", steps.lab_dir, {"splits": {}}))
    monkeypatch.setattr(steps, "run_sft", unit("sft", steps.sft_dir, {"steps": 1, "last_loss": 0.5}))
    stats = {"test": {"accuracy": 0.5}, "main_signal": "peak"}
    monkeypatch.setattr(steps, "run_judge_stats", unit("stats", steps.stats_dir, stats))
    cell = {"curve": [{"accuracy": 0.5}], "final": {"accuracy": 0.75}}
    monkeypatch.setattr(cells, "run_cell", unit("rl", steps.cell_dir, cell))
    return calls, fail


def test_plan_adds_the_rl_cells_once_their_judge_is_scored(tmp_path, fake_units):
    cfg = ExperimentConfig(**MICRO, output_dir=str(tmp_path))
    units = runner.plan(cfg)
    assert [(u.kind, u.key) for u in units[:3]] == [
        ("lab", "seed0/lab-annotator"),
        ("sft", "seed0/sft-annotator"),
        ("stats", "seed0/sft-annotator/epoch1"),
    ]
    pending = [u for u in units if u.kind == "rl"]
    assert pending and all(u.call == ("pending", ()) and u.key.endswith(">") for u in pending)
    assert all(u.deps == ["seed0/sft-annotator/epoch1"] for u in pending)
    atomic_write_json(steps.stats_dir(cfg, 0, "annotator", 1) / steps.DONE, {"main_signal": "peak"})
    rl = {u.key.rsplit("/", 1)[1]: u for u in runner.plan(cfg) if u.kind == "rl"}
    assert set(rl) == RL_CELLS and all(u.call[0] == "rl" for u in rl.values())


def test_a_failing_unit_is_logged_its_dependents_wait_and_a_rerun_retries_only_them(tmp_path, fake_units):
    calls, fail = fake_units
    cfg = ExperimentConfig(**MICRO, output_dir=str(tmp_path))
    fail.add("stats")
    log = []
    first = runner.run_experiment(cfg, log=log.append)
    assert first["failed"] == {"seed0/sft-annotator/epoch1": "RuntimeError: stats broke"}
    assert any(line.startswith("[failed] seed0/sft-annotator/epoch1: RuntimeError: stats broke") for line in log)
    assert first["done"] == 2 and [c[0] for c in calls] == ["lab", "sft", "stats"]
    assert first["blocked"] and all(k.startswith("seed0/converged/<") for k in first["blocked"])
    finished = {p: p.stat().st_mtime_ns for p in tmp_path.rglob(steps.DONE)}

    calls.clear()
    second = runner.run_experiment(cfg, log=log.append)  # the rerun: what failed and what waited on it
    assert second["failed"] == {} and second["blocked"] == [] and second["done"] == 1 + len(RL_CELLS)
    assert calls[0] == ("stats", 0, "annotator", 1) and {c[3] for c in calls[1:]} == RL_CELLS
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # lab and SFT were not redone

    calls.clear()
    assert runner.run_experiment(cfg, log=log.append)["done"] == 0 and calls == []  # nothing left
