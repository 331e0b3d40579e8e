"""``egt curate``: manifest, selected data, selection.json; mismatch and bad-input errors; reading the manifest back."""

from __future__ import annotations

import json
import os

import pytest

from egt.cli import main
from egt.curation.manifest import curate_pool, curriculum_order, kept_items, read_manifest
from egt.errors import EgtError
from egt.records import read_pairs
from synthetic_scores import synthetic_records, write_scores


def test_curate_writes_manifest_selected_and_selection(tmp_path, scores_file, small_lab, pool):
    out = tmp_path / "cur"
    s = curate_pool(scores_file, small_lab / "rl_pool.jsonl", out, selector="entropy", by="answer", fraction=0.25)
    rows = read_manifest(out / "manifest.jsonl")
    assert len(rows) == len(pool) and [r.rank for r in rows] == list(range(len(pool)))
    assert [r.id for r in rows if r.kept] == [p.id for p in pool[:8]]  # entropy i/N: the first 8
    assert set(rows[0].scores) == {"answer", "sentence", "mixed", "vote", "peak", "accuracy", "format_failures"}
    assert [r.id for r in curriculum_order(rows)] == [p.id for p in pool[:8]]
    selected = read_pairs(out / "selected.jsonl")  # resolves its images next to itself
    assert [p.id for p in selected] == [p.id for p in pool[:8]]
    for p in selected:
        assert os.path.samefile(out / p.images[0], small_lab / p.images[0])
    assert s["counts"] == {"pool": 32, "kept": 8, "dropped": 24, "missing_answer": 0, "with_format_failures": 0}
    flips = [p.meta["flipped"] for p in pool]  # the data's ground truth, not the scores'
    assert s["lab"]["flip_rate_kept"] == pytest.approx(sum(flips[:8]) / 8, abs=1e-4)
    assert s["lab"]["flip_rate_dropped"] == pytest.approx(sum(flips[8:]) / 24, abs=1e-4)
    assert json.loads((out / "selection.json").read_text())["by"] == "answer"
    first = (out / "manifest.jsonl").read_bytes()
    curate_pool(scores_file, small_lab / "rl_pool.jsonl", out, selector="entropy", by="answer", fraction=0.25)
    assert (out / "manifest.jsonl").read_bytes() == first  # deterministic


def test_random_and_accuracy_selectors_are_reproducible(tmp_path, scores_file, small_lab):
    for selector in ("random", "accuracy"):
        a = curate_pool(
            scores_file, small_lab / "rl_pool.jsonl", tmp_path / f"{selector}1", selector=selector, n=10, seed=4
        )
        curate_pool(
            scores_file, small_lab / "rl_pool.jsonl", tmp_path / f"{selector}2", selector=selector, n=10, seed=4
        )
        assert (tmp_path / f"{selector}1" / "manifest.jsonl").read_bytes() == (
            tmp_path / f"{selector}2" / "manifest.jsonl"
        ).read_bytes()
        assert a["counts"]["kept"] == 10


def test_scores_and_data_mismatch_lists_ids(tmp_path, small_lab, pool):
    records = synthetic_records(pool)
    records[3]["id"] = "ghost-1"
    scores = write_scores(tmp_path / "s.jsonl", records[:-1])
    with pytest.raises(EgtError) as e:
        curate_pool(scores, small_lab / "rl_pool.jsonl", tmp_path / "out", n=3)
    message = str(e.value)
    assert "'ghost-1'" in message and "'rl_pool-00003'" in message and "'rl_pool-00031'" in message
    assert not (tmp_path / "out").exists()


def test_cli_curate_and_bad_inputs_exit_2_without_output(tmp_path, scores_file, small_lab, capsys):
    data = str(small_lab / "rl_pool.jsonl")
    base = ["curate", "--scores", str(scores_file), "--data", data]
    assert main([*base, "--output_dir", str(tmp_path / "ok"), "--n", "5", "--selector", "random"]) == 0
    assert (tmp_path / "ok" / "selection.json").is_file()
    capsys.readouterr()
    bad = [
        [*base, "--output_dir", str(tmp_path / "x")],  # neither --n nor --fraction
        [*base, "--output_dir", str(tmp_path / "x"), "--n", "5", "--fraction", "0.5"],
        [*base, "--output_dir", str(tmp_path / "x"), "--n", "500"],
        [
            "curate",
            "--scores",
            str(tmp_path / "none.jsonl"),
            "--data",
            data,
            "--output_dir",
            str(tmp_path / "x"),
            "--n",
            "5",
        ],
    ]
    for argv in bad:
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.startswith("egt: error:")
    declared = [  # choices and a required option, refused by the parser itself
        ([*base, "--output_dir", str(tmp_path / "x"), "--n", "5", "--by", "loudness"], "loudness"),
        ([*base, "--output_dir", str(tmp_path / "x"), "--n", "5", "--selector", "oracle"], "oracle"),
        (["curate", "--scores", str(scores_file), "--output_dir", str(tmp_path / "x"), "--n", "5"], "--data"),
    ]
    for argv, message in declared:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_pass_rate_selection_states_the_band_and_the_counts_outside_it(tmp_path, scores_file, small_lab):
    """Synthetic pass rates 1 − i/32. Band (0.25, 0.75): inside i = 9 … 23 (15 items), below i ≥ 24 (8: 0.25
    itself is not inside), above i ≤ 8 (9: 0.75 itself is not inside). Kept in answer-entropy order i/32."""
    out = tmp_path / "band"
    data = str(small_lab / "rl_pool.jsonl")
    argv = ["curate", "--scores", str(scores_file), "--data", data, "--output_dir", str(out)]
    assert main([*argv, "--selector", "pass_rate", "--pass_band", "0.25,0.75"]) == 0
    s = json.loads((out / "selection.json").read_text())
    assert s["selector"] == "pass_rate" and s["pass_band"] == [0.25, 0.75]
    counts = {k: s["counts"][k] for k in ("pool", "kept", "inside_band", "below_band", "above_band")}
    assert counts == {"pool": 32, "kept": 15, "inside_band": 15, "below_band": 8, "above_band": 9}
    ids = [p.id for p in read_pairs(data)]
    rows = read_manifest(out)
    assert [r.id for r in rows if r.kept] == ids[9:24]
    assert [r.id for r in curriculum_order(rows)] == ids[9:24]
    assert main([*argv, "--selector", "pass_rate", "--pass_band", "0.97,0.98"]) == 2  # 1 − i/32 skips (0.97, 0.98)


@pytest.mark.parametrize("by", ["vote", "peak"])
def test_curate_and_curriculum_by_the_new_kinds(tmp_path, small_lab, pool, by):
    """vote and peak are selectable; the manifest carries them and the curriculum orders by them."""
    records = synthetic_records(pool)
    for i, r in enumerate(records):
        r["vote_entropy"] = [0.0, 0.56, 0.69][i % 3]
    out = tmp_path / by
    curate_pool(write_scores(tmp_path / "s.jsonl", records), small_lab / "rl_pool.jsonl", out, by=by, n=12)
    rows = read_manifest(out / "manifest.jsonl")
    kept = [r for r in rows if r.kept]
    assert rows[0].selector == f"entropy:{by}" and all(r.by == by for r in rows)
    assert [r.id for r in curriculum_order(rows)] == [r.id for r in kept]  # the selector's own order
    values = [(r.scores[by], r.scores["sentence"]) for r in curriculum_order(rows)]
    assert values == sorted(values)  # vote ties by sentence entropy; peak strictly ascending
    assert json.loads((out / "selection.json").read_text())["by"] == by


def test_curriculum_puts_items_with_format_failures_last(tmp_path, small_lab, pool):
    """Issue 14 through the files: the item with the lowest answer entropy failed 3 of its 4 rollouts;
    it is neither kept in the lowest half nor first in the curriculum of a keep-all selection."""
    records = synthetic_records(pool)
    records[0].update(format_failures=3, format_rate=0.25, verdicts=[None, None, None, 0])
    scores = write_scores(tmp_path / "s.jsonl", records)
    half = curate_pool(scores, small_lab / "rl_pool.jsonl", tmp_path / "half", fraction=0.5)
    rows = read_manifest(tmp_path / "half" / "manifest.jsonl")
    assert rows[-1].id == pool[0].id and not rows[-1].kept and "failed the strict format" in rows[-1].reason
    assert half["counts"]["with_format_failures"] == 1
    curate_pool(scores, small_lab / "rl_pool.jsonl", tmp_path / "all", fraction=1.0)
    order = curriculum_order(read_manifest(tmp_path / "all" / "manifest.jsonl"))
    assert order[-1].id == pool[0].id and order[0].id == pool[1].id


# ---------------------------------------------------------------------------------------------
# Reading the manifest (the one reader, for curation and RL)
# ---------------------------------------------------------------------------------------------


def write_manifest(path, rows):
    path.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "id": rid,
                "scores": {"answer": s, "sentence": s / 2 if isinstance(s, float) else None, "mixed": s},
                "kept": kept,
                "rank": i,
                "selector": "entropy:answer",
                "reason": "test",
            }
        )
        for i, (rid, s, kept) in enumerate(rows)
    ]
    (path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_the_manifest_by_field_is_the_default_key(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    rows = [
        {"id": "a", "scores": {"answer": 0.9, "mixed": 0.1}, "kept": True, "by": "mixed"},
        {"id": "b", "scores": {"answer": 0.1, "mixed": None}, "kept": True, "by": "mixed"},
    ]
    (d / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert kept_items(read_manifest(d), ["a", "b"]) == ([0, 1], [0.1, None])
    assert kept_items(read_manifest(d), ["a", "b"], by="answer") == ([0, 1], [0.9, 0.1])


def test_manifest_alignment_keeps_only_kept_items_in_data_order(tmp_path):
    d = write_manifest(tmp_path / "m", [("b", 0.2, True), ("a", 0.9, True), ("c", 0.1, False), ("d", 0.5, True)])
    entries = read_manifest(d)
    assert [e.id for e in entries] == ["b", "a", "c", "d"] and entries[2].kept is False
    positions, scores = kept_items(entries, ["a", "b", "c", "d", "e"], by="answer")
    assert positions == [0, 1, 3] and scores == [0.9, 0.2, 0.5]
    assert kept_items(entries, ["a", "b", "c", "d"], by="sentence")[1] == [0.45, 0.1, 0.25]


def test_manifest_ids_missing_from_the_data_are_named(tmp_path):
    d = write_manifest(tmp_path / "m", [("x1", 0.2, True), ("a", 0.9, True), ("x2", 0.3, True), ("x3", 0.1, False)])
    with pytest.raises(EgtError, match=r"2 kept id\(s\) are not in the training data: 'x1', 'x2'"):
        kept_items(read_manifest(d), ["a", "b"])


def test_manifest_errors_name_the_line_and_field(tmp_path):
    d = write_manifest(tmp_path / "m", [("a", 0.1, True), ("a", 0.2, True)])
    with pytest.raises(EgtError, match="line 2.*duplicate id"):
        read_manifest(d / "manifest.jsonl")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"id": "a", "scores": {"answer": 1.0}, "kept": "yes"}) + "\n")
    with pytest.raises(EgtError, match="line 1.*'kept'"):
        read_manifest(tmp_path / "bad.jsonl")
    with pytest.raises(EgtError, match="not found"):
        read_manifest(tmp_path / "nowhere")
    d = write_manifest(tmp_path / "n", [("a", "high", True), ("b", 0.2, True)])
    with pytest.raises(EgtError, match=r"scores.answer.*not a number or null.*'a'"):
        kept_items(read_manifest(d), ["a", "b"])
    with pytest.raises(EgtError, match=r"scores.vote.*missing.*'a', 'b'"):
        kept_items(read_manifest(d), ["a", "b"], by="vote")
    d = write_manifest(tmp_path / "k", [("a", 0.1, False)])
    with pytest.raises(EgtError, match="no item is kept"):
        kept_items(read_manifest(d), ["a"])
