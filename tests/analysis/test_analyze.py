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
    a = analyze_scores(scores_file, out, data=small_lab / "rl_pool.jsonl", review_top=5, review_by="answer")
    saved = json.loads((out / "analysis.json").read_text())
    assert saved["spearman"]["answer"] == pytest.approx(-1.0) and saved["auroc_flipped"]["answer"] == pytest.approx(1.0)
    for name in ("entropy_histogram.png", "accuracy_by_bin.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "review.html").read_text()
    assert page.count('<article class="item"') == 5
    assert "data:image/png;base64," in page and "<b>not bold</b>" not in page  # escaped
    assert page.index('data-id="rl_pool-00031"') < page.index('data-id="rl_pool-00030"')  # highest answer entropy first
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
    assert "RL log: 3 logged steps" in out and "rl_log.png" in "".join(out.split())  # a narrow console wraps paths
    assert (run / "rl_log.png").read_bytes()[:4] == b"\x89PNG"
    (run / "rl_summary.json").write_text(json.dumps({**summary, "log": []}))
    assert main(["analyze", "--run", str(run)]) == 2
    assert "no per-step 'log'" in capsys.readouterr().err


def untrained(records: list[dict]) -> list[dict]:
    """What a judge with no parsable output writes: every rollout a format failure, no entropy."""
    for r in records:
        k = len(r["verdicts"])
        r.update(verdicts=[None] * k, format_failures=k, format_rate=0.0, accuracy=0.0)
        r.update(dict.fromkeys(("answer_entropy", "sentence_entropy", "peak_entropy"), None), mixed_entropy=0.5)
    return records


def test_an_untrained_judge_warns_instead_of_pretending(tmp_path, small_lab, pool, capsys):
    """analyze: exit 0, a warning on stderr, a banner on the page, no AUROC; curate: refused unless told."""
    scores = write_scores(tmp_path / "scores.jsonl", untrained(synthetic_records(pool)))
    data = str(small_lab / "rl_pool.jsonl")
    assert main(["analyze", "--scores", str(scores), "--output_dir", str(tmp_path / "a"), "--data", data]) == 0
    out = capsys.readouterr()
    assert "egt: warning: 32 of 32 items (100%) have no parsable verdict" in out.err
    page = (tmp_path / "a" / "review.html").read_text()
    assert 'class="banner"' in page and "only 0% of rollouts follow the judge format" in page
    assert page.count('<article class="item"') == 32 and "Format failures: no parsable verdict (32 shown)" in page
    saved = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert saved["suspicion"]["auroc_flipped"]["disagreement"] is None and saved["warnings"]

    curate = ["curate", "--scores", str(scores), "--data", data, "--fraction", "0.25"]
    assert main([*curate, "--output_dir", str(tmp_path / "c")]) == 2
    assert "have no peak entropy" in capsys.readouterr().err and not (tmp_path / "c").exists()
    assert main([*curate, "--output_dir", str(tmp_path / "c"), "--allow_missing_signal", "true"]) == 0
    assert "egt: warning: 32 of 32 items" in capsys.readouterr().err
    assert json.loads((tmp_path / "c" / "selection.json").read_text())["warnings"]


def test_a_corrupt_image_is_named_or_shown_as_unreadable_with_skip_bad(tmp_path, scores_file, small_lab, capsys):
    """The item with the corrupt image is the one a cleaner wants to see: without --skip_bad the run stops
    naming file, line and field; with it the page shows the item and says why its image is missing."""
    import shutil

    lab = tmp_path / "lab"
    shutil.copytree(small_lab, lab)
    (lab / "images" / "rl_pool-00031.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    argv = ["analyze", "--scores", str(scores_file), "--data", str(lab / "rl_pool.jsonl"), "--review_by", "answer"]
    assert main([*argv, "--output_dir", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert f"{lab / 'rl_pool.jsonl'}: line 32 (id='rl_pool-00031'): field 'images': cannot decode image" in err
    assert not (tmp_path / "a").exists()
    assert main([*argv, "--output_dir", str(tmp_path / "a"), "--skip_bad", "true"]) == 0
    assert "1 item(s) have an unreadable image" in capsys.readouterr().err
    page = (tmp_path / "a" / "review.html").read_text()
    assert 'data-id="rl_pool-00031"' in page and "image not shown: " in page and "line 32" in page
    assert json.loads((tmp_path / "a" / "analysis.json").read_text())["bad_images"]["ids"] == ["rl_pool-00031"]


def test_nan_or_infinity_in_a_scores_file_is_refused_naming_line_and_field(tmp_path, pool, capsys):
    records = synthetic_records(pool)
    lines = [json.dumps(r) for r in records]
    lines[4] = lines[4].replace('"peak_entropy": 0.25', '"peak_entropy": NaN')
    lines[6] = lines[6].replace('"answer_entropy": 0.1875', '"answer_entropy": Infinity')
    path = tmp_path / "scores.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert main(["analyze", "--scores", str(path), "--output_dir", str(tmp_path / "a"), "--review_top", "0"]) == 2
    assert f"{path}: line 5 (id='rl_pool-00004'): field 'peak_entropy': NaN or infinity" in capsys.readouterr().err
    lines[4] = json.dumps(records[4])
    path.write_text("\n".join(lines) + "\n")
    assert main(["curate", "--scores", str(path), "--data", "x", "--output_dir", str(tmp_path / "c"), "--n", "2"]) == 2
    assert "line 7 (id='rl_pool-00006'): field 'answer_entropy': NaN or infinity" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_a_judge_that_answers_by_position_is_flagged_on_stderr_in_the_json_and_on_the_page(
    tmp_path, small_lab, pool, capsys
):
    """Every rollout picks the response shown first, half the rollouts in each order: the label-aware
    rankings then follow presentation, and analyze says so instead of presenting them as label checks."""
    records = synthetic_records(pool)
    for r in records:
        r["swapped"] = [False, True]
        r["verdicts"] = [0, 1]  # stored index 0 shown first, then stored index 1 shown first
    scores = write_scores(tmp_path / "scores.jsonl", records)
    out = tmp_path / "a"
    data = str(small_lab / "rl_pool.jsonl")
    assert main(["analyze", "--scores", str(scores), "--output_dir", str(out), "--data", data]) == 0
    assert "egt: warning: the judge picks the response shown first in 100% of its 64 parsed rollouts" in (
        capsys.readouterr().err
    )
    saved = json.loads((out / "analysis.json").read_text())
    assert saved["suspicion"]["position"] == {"first": 1.0, "n": 64, "both_orders": True}
    assert any("shown first" in w for w in saved["warnings"])
    page = (out / "review.html").read_text()
    assert 'class="banner"' in page and "its verdicts follow position" in page
