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

    _an_interrupted_cell_equals_an_uninterrupted_one(preset, out)


def _an_interrupted_cell_equals_an_uninterrupted_one(preset: Path, out: Path) -> None:
    """A cell interrupted right after its step-1 checkpoint and run again resumes from that checkpoint
    and ends exactly where the uninterrupted cell ends: the same weights, curve and per-item answers
    on the clean test (in-process, one thread, so both runs do the same arithmetic)."""
    import dataclasses
    import shutil

    from egt.config import parse_config
    from egt.models.load import load_model
    from egt.pipelines.experiment import ExperimentConfig
    from egt.pipelines.experiment.cells import run_cell
    from egt.pipelines.experiment.grid import Arm
    from egt.pipelines.experiment.steps import cell_dir, judge_dir, regime_epoch
    from egt.rl.trainer import JudgeGRPOTrainer
    from resume_helpers import Killed, killed_after_checkpoint, max_weight_difference, one_thread, saved_steps
    from trained_judge import train_judge

    (cfg,) = parse_config([ExperimentConfig], ["--config", str(preset)], "test")
    # RL must move the weights for "the same weights" to mean anything: the micro SFT judge fails the
    # format on every rollout (all rewards 0), so the cell starts from a judge that closes most of them
    # (tests/trained_judge.py, on this lab's traces; 48 tokens fit its rollouts, 4 per prompt give groups
    # whose rewards differ) at a learning rate that shows in two steps
    cfg = dataclasses.replace(cfg, rl_learning_rate=1e-3, rl_max_completion_length=48, rl_generations=4)
    sft_judge = judge_dir(cfg, 0, cfg.rl_teacher, regime_epoch(cfg, "converged"))
    trained = train_judge(out / "seed0" / "lab-annotator" / "sft.jsonl", out.parent / "trained-judge")
    for f in trained.iterdir():  # the judge's files; its stats/ folder (the cell reads it) stays
        if f.is_file():
            shutil.copyfile(f, sft_judge / f.name)
    start_weights = load_model(str(sft_judge), device="cpu").model.state_dict()
    arm = Arm("random", fraction=0.5)
    folder = cell_dir(cfg, 0, "converged", arm)
    with one_thread():
        shutil.rmtree(folder)
        whole = run_cell(cfg, 0, "converged", arm)
        whole_weights = load_model(str(folder / "judge"), device="cpu").model.state_dict()
        shutil.rmtree(folder)
        with killed_after_checkpoint(JudgeGRPOTrainer, 1), pytest.raises(Killed):
            run_cell(cfg, 0, "converged", arm)
        assert not (folder / "done.json").exists()
        assert sorted(p.name for p in (folder / "judge.checkpoints").glob("checkpoint-*")) == ["checkpoint-1"]
        with saved_steps(JudgeGRPOTrainer) as saved:
            resumed = run_cell(cfg, 0, "converged", arm)
    assert saved == [2], "the rerun trained from step 0 instead of resuming from checkpoint-1"
    assert resumed["rl"]["steps"] == whole["rl"]["steps"] == 2
    assert resumed["curve"] == whole["curve"]
    assert resumed["final"]["per_item"] == whole["final"]["per_item"]
    assert resumed["selection"] == whole["selection"]
    assert max_weight_difference(whole_weights, start_weights) > 1e-4
    weights = load_model(str(folder / "judge"), device="cpu").model.state_dict()
    assert max_weight_difference(weights, whole_weights) <= 1e-6
