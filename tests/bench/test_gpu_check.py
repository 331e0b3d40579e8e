"""bench/gpu_check.py --dry_run on the CPU: every section runs and reports finite numbers, and (a),
comparing the CPU with itself, finds no difference at all: that is the script's own check, since on
a GPU the same code compares CUDA with the CPU.

One subprocess, as the script is run (about 30 s of CPU on one thread). No timing is asserted.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # trains the tiny judge (3 SFT + 2 GRPO steps, twice)


def numbers(value, path=""):
    """Every (path, number) in nested dicts and lists; bools are not numbers here."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from numbers(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from numbers(item, f"{path}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "CUDA_VISIBLE_DEVICES": "",
        "EGT_PROGRESS": "0",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "bench/gpu_check.py", "--dry_run", "--output_dir", str(out)]
    command += ["--output", str(out / "check.json")]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads((out / "check.json").read_text()), run.stdout


def test_every_section_reports_finite_numbers(dry_run):
    document, printed = dry_run
    results = document["results"]
    env = results["environment"]
    assert env["dry_run"] is True and env["device"] == "cpu" and env["cuda"] is None
    assert env["torch"] and env["transformers"] and env["trl"]
    for section in ("a", "b", "c"):
        assert section in results, section
        found = list(numbers(results[section]))
        assert len(found) > 10, section
        bad = [(path, x) for path, x in found if not math.isfinite(x)]
        assert not bad, bad
    assert results["all_finite"] is True
    for title in ("(a) tiny judge", "(b) generation", "(b) teacher-forced pass", "(c) one AdamW step", "targets"):
        assert title in printed, title


def test_the_cpu_compared_with_itself_agrees_exactly(dry_run):
    a = dry_run[0]["results"]["a"]
    assert a["devices"] == {"device": "cpu", "cpu": "cpu"}
    tf = a["teacher_forced"]
    assert tf["scored_tokens"] > 0 and tf["same_tokens_sampled_on_device"] is True
    assert tf["max_abs_dH_teacher_forced_device_vs_cpu"] <= 1e-6
    assert tf["max_abs_dH_generation_vs_teacher_forced_cpu"] <= 1e-5  # float32: round-off only
    sft = a["sft_loss"]
    assert len(sft["cpu"]) == 3 and sft["device"] == pytest.approx(sft["cpu"], rel=1e-6, abs=0)
    rl = a["rl_gtpo"]
    assert len(rl["cpu"]["loss"]) == 2 and rl["device"]["loss"] == pytest.approx(rl["cpu"]["loss"], abs=1e-7)
    for side in ("device", "cpu"):
        agreement = rl[side]["rollout_entropy_max_abs_diff_recorded_vs_forward"]
        assert len(agreement) == 2 and max(agreement) <= 1e-4


def test_the_real_shaped_and_optimiser_sections_measure_what_they_say(dry_run):
    results = dry_run[0]["results"]
    b, c = results["b"], results["c"]
    assert b["sizes"]["hidden_size"] == 128 and b["params"] > 0  # NARROW in a dry run
    for entry in b["generation"].values():
        for side in ("plain generate", "sampler, no entropy", "sampler + entropy"):
            assert entry[side]["tokens_per_s"] > 0 and entry[side]["peak_gib"] is None  # no CUDA memory on a CPU
    assert {"sampled", "random ids"} == {tf["source"] for tf in b["teacher_forced"].values()}
    for tf in b["teacher_forced"].values():
        assert 0 <= tf["max_abs_dH_bf16_vs_float32"] < 0.1 and 0 < tf["mean_entropy_float32"] <= math.log(151_936)
    runs = c["runs"]
    assert set(runs) == {"bf16@1e-06", "bf16@1e-05", "float32_masters@1e-06", "float32_masters@1e-05"}
    for lr in ("1e-06", "1e-05"):
        bf16, masters = runs[f"bf16@{lr}"]["all"], runs[f"float32_masters@{lr}"]["all"]
        assert 0 <= bf16["moved"] < masters["moved"] <= 1  # rounding to bf16 drops updates that masters keep
        assert masters["moved_bf16_view"] <= masters["moved"]
    assert runs["bf16@1e-06"]["all"]["moved"] <= runs["bf16@1e-05"]["all"]["moved"]
