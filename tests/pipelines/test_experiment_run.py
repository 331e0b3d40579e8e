"""``egt experiment`` end to end on a micro preset: killed with SIGKILL mid-run, rerun, finished cells kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

MICRO = """\
preset: micro
seeds: [0]
tables: [T1]
n_sft: 64
n_rl_pool: 16
n_test: 8
teachers: [annotator]
rl_teacher: annotator
sft_epochs: 1
sft_checkpoint_epochs: [1]
sft_batch_size: 16
regimes: [converged]
converged_epoch: 1
weak_epoch: 1
main_regime: converged
rollouts: 2
signals: [answer, peak]
fraction: 0.5
rl_steps: 2
rl_eval_every: 1
rl_prompts_per_step: 2
rl_generations: 2
rl_max_completion_length: 16
eval_batch_size: 16
bootstrap_resamples: 200
threads: 1
"""


def _done_files(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("done.json")}


@pytest.mark.slow
def test_killed_experiment_resumes_without_redoing_finished_cells(tmp_path):
    from egt.cli import main

    out = tmp_path / "exp"
    preset = tmp_path / "micro.yaml"
    preset.write_text(MICRO + f"output_dir: {out}\n")
    cmd = [sys.executable, "-m", "egt.cli", "experiment", "--config", str(preset)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    deadline = time.monotonic() + 600
    try:  # wait until the first RL cell is finished, then kill -9 the whole run
        while not list((out / "seed0" / "converged").glob("*/done.json")):
            assert proc.poll() is None, "the experiment ended before any RL cell finished"
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _done_files(out)
    assert any(k.startswith("seed0/converged/") for k in before)

    assert main(["experiment", "--config", str(preset)]) == 0
    after = _done_files(out)
    assert all(after[k] == v for k, v in before.items()), "a finished unit was redone"
    cells = {p.parent.name for p in (out / "seed0" / "converged").glob("*/done.json")}
    main_signal = json.loads((out / "seed0/sft-annotator/epoch1/stats/done.json").read_text())["main_signal"]
    assert cells == {
        "full-100pct-off-grpo",
        "random-50pct-off-grpo",
        "accuracy-50pct-off-grpo",
        "entropy-answer-50pct-off-grpo",
        "entropy-peak-50pct-off-grpo",
        f"highest-{main_signal}-50pct-off-grpo",
        "oracle-50pct-off-grpo",
    }
    cell = json.loads((out / "seed0" / "converged" / "oracle-50pct-off-grpo" / "done.json").read_text())
    assert [p["step"] for p in cell["curve"]] == [0, 1, 2] and cell["selection"]["flip_rate"] == 0.0
    assert cell["rl"]["steps"] == 2 and len(cell["final"]["per_item"]) == 8

    assert main(["experiment", "--config", str(preset)]) == 0  # nothing left: nothing changes
    assert _done_files(out) == after
    results = json.loads((out / "results.json").read_text())
    t1 = results["tables"]["converged"]["T1"]
    assert [r["n_seeds"] for r in t1] == [1] * 8
    assert t1[1]["label"] == "full pool" and t1[1]["delta_vs_full"]["mean"] == 0.0
    md = (out / "results.md").read_text()
    assert "T1 — selection at 50% of the pool" in md and "oracle 50%" in md
    assert (out / "curves_T1_converged.png").stat().st_size > 1000
