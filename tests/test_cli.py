"""The ``egt`` command: help, bad input (exit 2, one line, no output), baselines end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egt.cli import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "lab make" in out and "train sft" in out and "eval" in out and "demo" in out


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def _write(path, lines):
    path.write_text("".join(lines))
    return path


GOOD = json.dumps({"id": "a", "question": "q", "responses": ["x", "yy"], "preferred": 1}) + "\n"


@pytest.mark.parametrize(
    "bad_line, needle",
    [
        ("{oops\n", "line 2: malformed JSON"),
        (
            json.dumps({"id": "b", "question": "q", "responses": ["x", "y", "z"], "preferred": 0}) + "\n",
            "field 'responses'",
        ),
        (json.dumps({"id": "b", "question": "q", "responses": ["x", "y"], "preferred": 5}) + "\n", "field 'preferred'"),
        (
            json.dumps(
                {"id": "b", "question": "q", "responses": ["x", "y"], "preferred": 0, "images": ["../../etc/x.png"]}
            )
            + "\n",
            "escapes the images root",
        ),
        (
            json.dumps({"id": "b", "question": "q", "responses": ["x", "y"], "preferred": 0, "images": ["missing.png"]})
            + "\n",
            "missing",
        ),
    ],
)
def test_eval_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, bad_line, needle, tiny_judge_dir):
    data = _write(tmp_path / "d.jsonl", [GOOD, bad_line])
    out = tmp_path / "out"
    judge = str(tiny_judge_dir) if "image" in needle else "first"
    assert main(["eval", "--data", str(data), "--judge", judge, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("egt: error:") and needle in err and "Traceback" not in err
    assert not out.exists()


def test_eval_empty_dataset_and_missing_file(tmp_path, capsys):
    assert (
        main(
            ["eval", "--data", str(_write(tmp_path / "e.jsonl", [])), "--judge", "first", "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "empty" in capsys.readouterr().err
    assert main(["eval", "--data", str(tmp_path / "nope.jsonl"), "--judge", "first", "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_eval_report_layout_with_baselines(tmp_path, small_lab):
    for name in ("random", "first", "longer"):
        out = tmp_path / name
        assert main(["eval", "--data", str(small_lab / "test.jsonl"), "--judge", name, "--out", str(out)]) == 0
        report = json.loads((out / "report.json").read_text())
        assert {"judge", "n_items", "order", "metrics", "categories", "ties", "parse_failures"} <= set(report)
        assert report["judge"] == name and report["n_items"] == 16 and report["order"] == "both"
        assert 0 <= report["metrics"]["accuracy"] <= 1
        assert sum(1 for _ in open(out / "predictions.jsonl")) == 32 and (out / "report.md").is_file()
    first = json.loads((tmp_path / "first" / "report.json").read_text())
    assert first["metrics"]["accuracy"] == 0.5 and first["metrics"]["order_consistency"] == 0.0


def test_generative_judge_path_runs(tmp_path, small_lab, tiny_judge_dir):
    """An untrained tiny judge: the whole generation path runs; its outputs are mostly unparsable."""
    out = tmp_path / "gen"
    args = [
        "eval",
        "--data",
        str(small_lab / "test.jsonl"),
        "--judge",
        str(tiny_judge_dir),
        "--out",
        str(out),
        "--max_new_tokens",
        "6",
        "--limit",
        "4",
        "--prompt_style",
        "compact",
    ]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    preds = [json.loads(line) for line in open(out / "predictions.jsonl")]
    assert report["n_items"] == 4 and len(preds) == 8
    assert report["parse_failures"] == sum(p["status"] == "parse_failure" for p in preds)
    assert all("text" in p for p in preds)  # raw generations are kept for auditing


def test_lab_make_and_bad_config(tmp_path, capsys):
    out = tmp_path / "lab"
    assert main(["lab", "make", "--out", str(out), "--n_sft", "4", "--n_rl_pool", "4", "--n_test", "4"]) == 0
    assert {p.name for p in out.iterdir()} == {"images", "sft.jsonl", "rl_pool.jsonl", "test.jsonl", "lab.json"}
    assert main(["lab", "make", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    cfg = _write(
        tmp_path / "lab.yaml", ["out: " + str(tmp_path / "lab2") + "\n", "n_sft: 2\n", "n_rl_pool: 2\n", "n_test: 3\n"]
    )
    assert main(["lab", "make", "--config", str(cfg), "--n_test", "5"]) == 0  # YAML, then CLI overrides
    assert sum(1 for _ in open(tmp_path / "lab2" / "test.jsonl")) == 5


@pytest.mark.slow
def test_reduced_demo_end_to_end(tmp_path):
    """The whole loop at toy size: lab → SFT → eval → score (every signal) → RL on two subsets; a rerun reuses it."""
    out = tmp_path / "demo"
    argv = [
        "demo",
        "--out",
        str(out),
        "--n_sft",
        "96",
        "--n_rl_pool",
        "32",
        "--n_test",
        "12",
        "--epochs",
        "1",
        "--batch_size",
        "16",
        "--fraction",
        "0.5",
        "--rl_steps",
        "2",
        "--rollouts",
        "2",
    ]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert 0 <= report["test_accuracy"] <= 1 and report["wall_seconds"] > 0
    assert (Path(report["paths"]["judge"]) / "model.safetensors").is_file()
    assert set(report["baselines"]) == {"random", "first", "longer"}
    for s in ("answer", "sentence", "mixed", "vote", "peak"):
        assert {f"spearman_{s}", f"auroc_flipped_{s}", f"auroc_hard_{s}"} <= set(report["rq1"])
    assert {"flip_rate_kept", "flip_rate_dropped"} <= set(report["rq1"]["curation"])
    rl = report["rl"]
    assert rl["signal"] in ("answer", "sentence", "mixed", "vote", "peak") and rl["fraction"] == 0.5
    assert 0 <= rl["entropy"]["test_accuracy"] <= 1 and 0 <= rl["random"]["test_accuracy"] <= 1
    assert rl["entropy"]["selection"]["n_kept"] == rl["random"]["selection"]["n_kept"] == 16
    done = sorted(p.stat().st_mtime_ns for p in out.rglob("done.json"))
    assert main(argv) == 0  # every step is reused
    assert sorted(p.stat().st_mtime_ns for p in out.rglob("done.json")) == done
