"""``egt analyze`` end to end on synthetic scores: files, numbers, bad inputs."""

from __future__ import annotations

import json

import pytest

from egt.analysis.analyze import analyze_scores
from egt.cli import main
from egt.errors import EgtError
from synthetic_scores import synthetic_records, write_scores


def test_analyze_writes_json_plots_and_page(tmp_path, scores_file, small_lab):
    out = tmp_path / "analysis"
    a = analyze_scores(scores_file, out, data=small_lab / "rl_pool.jsonl", review_top=5)
    saved = json.loads((out / "analysis.json").read_text())
    assert saved["spearman"]["answer"] == pytest.approx(-1.0) and saved["auroc_flipped"]["answer"] == pytest.approx(1.0)
    for name in ("entropy_histogram.png", "accuracy_by_bin.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "review.html").read_text()
    assert page.count('<tr class="item"') == 5
    assert "data:image/png;base64," in page and "<b>not bold</b>" not in page  # escaped
    assert 'data-id="rl_pool-00031"' in page  # highest answer entropy first
    assert a["files"]["review"].endswith("review.html")


def test_analyze_needs_data_for_the_page_unless_skipped(tmp_path, scores_file):
    with pytest.raises(EgtError, match="--data PATH"):
        analyze_scores(scores_file, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    a = analyze_scores(scores_file, tmp_path / "b", review_top=0)
    assert "review" not in a["files"] and (tmp_path / "b" / "analysis.json").is_file()


def test_cli_analyze_and_bad_inputs_exit_2_without_output(tmp_path, scores_file, small_lab, pool, capsys):
    data = str(small_lab / "rl_pool.jsonl")
    assert main(["analyze", "--scores", str(scores_file), "--output_dir", str(tmp_path / "ok"), "--data", data]) == 0
    assert "Spearman" in capsys.readouterr().out
    bad = write_scores(
        tmp_path / "bad.jsonl", [{**r, "id": "zz"} if i == 3 else r for i, r in enumerate(synthetic_records(pool))]
    )
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "accuracy": 1}\n{oops\n')
    cases = [
        ["--scores", str(tmp_path / "none.jsonl"), "--output_dir", str(tmp_path / "x")],
        ["--scores", str(broken), "--output_dir", str(tmp_path / "x"), "--review_top", "0"],
        ["--scores", str(bad), "--output_dir", str(tmp_path / "x"), "--data", data],
    ]
    for argv in cases:
        assert main(["analyze", *argv]) == 2, argv
        assert capsys.readouterr().err.startswith("egt: error:")
    declared = [  # a required option and a choice, refused by the parser itself
        (["--output_dir", str(tmp_path / "x")], "--scores"),
        (["--scores", str(scores_file), "--output_dir", str(tmp_path / "x"), "--review_by", "nope"], "review_by"),
    ]
    for argv, message in declared:
        assert main(["analyze", *argv]) == 2, argv
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_analyze_run_plots_the_rl_log(tmp_path, capsys):
    """``egt analyze --run DIR`` reads rl_summary.json's per-step log: a table and rl_log.png next to it."""
    run = tmp_path / "judge"
    run.mkdir()
    entry = {"frac_reward_zero_std": 0.5, "reward": 0.7, "accuracy": 0.4, "format_failure_rate": 0.1}
    log = [
        {"step": s, **entry, "rollout_entropy": 1.0 / s, "curriculum_epoch": (s - 1) // 2, "curriculum_position": 4}
        | {"groups_kept": 2, "groups_generated": 4 * s, "groups_dropped": s, "generation_batches": s}
        for s in (1, 2, 3)
    ]
    summary = {"n_rows": 8, "estimator": "grpo", "dynamic_sampling": True, "log": log}
    (run / "rl_summary.json").write_text(json.dumps(summary))
    assert main(["analyze", "--run", str(run)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "RL log: 3 logged steps" in out and "rl_log.png" in out
    assert (run / "rl_log.png").read_bytes()[:4] == b"\x89PNG"
    (run / "rl_summary.json").write_text(json.dumps({**summary, "log": []}))
    assert main(["analyze", "--run", str(run)]) == 2
    assert "no per-step 'log'" in capsys.readouterr().err
