"""``egt eval --benchmark …`` end to end: every fixture with the baselines and the tiny generative
judge, voting, re-aggregation, and the bad inputs (exit 2, one line, no outputs)."""

from __future__ import annotations

import json
import shutil

import pytest

from egt.cli import main

from .conftest import mm_rlhf_records, vl_records, write_image, write_jsonl

REPORT_KEYS = {"judge", "n_items", "order", "metrics", "categories", "ties", "parse_failures"}
HEADLINES = {
    "vl_rewardbench": ("overall", "macro"),
    "multimodal_rewardbench": ("overall",),
    "mm_rlhf_rewardbench": ("acc", "acc_plus"),
    "rewardbench": ("score",),
    "generic": ("accuracy",),
}


@pytest.fixture
def fixtures(vl_jsonl, vl_parquet, mmrb_json, mm_rlhf_jsonl, rb_jsonl, tmp_path):
    generic = write_jsonl(
        tmp_path / "generic" / "mine.jsonl",
        [
            {"uid": f"g{i}", "prompt": "which?", "good": "a careful answer", "bad": "no", "img": "g.png", "kind": "k"}
            for i in range(3)
        ],
    )
    write_image(tmp_path / "generic" / "g.png")
    return {
        "vl_rewardbench": vl_jsonl,
        "vl_rewardbench_parquet": vl_parquet,
        "multimodal_rewardbench": mmrb_json,
        "mm_rlhf_rewardbench": mm_rlhf_jsonl,
        "rewardbench": rb_jsonl,
        "generic": generic,
    }


def run(*args: str) -> int:
    return main(["eval", *args])


def read_report(out):
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize(
    "name",
    [
        "vl_rewardbench",
        "vl_rewardbench_parquet",
        "multimodal_rewardbench",
        "mm_rlhf_rewardbench",
        "rewardbench",
        "generic",
    ],
)
@pytest.mark.parametrize("judge", ["first", "longer"])
def test_baselines_on_every_fixture(fixtures, tmp_path, name, judge):
    bench = name.removesuffix("_parquet")
    out = tmp_path / f"out_{name}_{judge}"
    extra = (
        ["--fields", "id=uid,question=prompt,chosen=good,rejected=bad,images=img,category=kind"]
        if bench == "generic"
        else []
    )
    assert (
        run("--benchmark", bench, "--data", str(fixtures[name]), "--model", judge, "--output_dir", str(out), *extra)
        == 0
    )
    report = read_report(out)
    assert REPORT_KEYS <= set(report) and report["benchmark"] == bench and report["order"] == "both"
    for metric in HEADLINES[bench]:
        assert f"{metric}_stored_order" in report["metrics"] and f"{metric}_swapped_order" in report["metrics"]
    preds = (out / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == 2 * report["n_items"]
    md = (out / "report.md").read_text()
    assert "| model |" in md and "order consistency" in md and report["scoring_rule"] in md
    if judge == "first":  # every fixture stores (nearly) all winners first
        assert report["metrics"]["order_consistency"] == 0.0


def test_first_on_winner_first_data_is_at_chance(fixtures, tmp_path):
    out = tmp_path / "o"
    assert (
        run(
            "--benchmark",
            "mm_rlhf_rewardbench",
            "--data",
            str(fixtures["mm_rlhf_rewardbench"]),
            "--model",
            "first",
            "--output_dir",
            str(out),
        )
        == 0
    )
    m = read_report(out)["metrics"]
    assert m["acc"] == 0.5 and m["acc_stored_order"] == 1.0 and m["acc_swapped_order"] == 0.0


@pytest.mark.parametrize(
    "name", ["vl_rewardbench", "vl_rewardbench_parquet", "multimodal_rewardbench", "mm_rlhf_rewardbench", "rewardbench"]
)
def test_tiny_generative_judge_on_every_fixture(fixtures, bench_judge_dir, tmp_path, name):
    """Three items each, both orders (the MM-RLHF three: a video item with 3 frames, two images)."""
    data = fixtures[name]
    if name == "mm_rlhf_rewardbench":
        rows = mm_rlhf_records()
        data = write_jsonl(data.parent / "video_first.jsonl", [rows[5], rows[0], rows[7]])
    out = tmp_path / "tiny"
    assert (
        run(
            "--benchmark",
            name.removesuffix("_parquet"),
            "--data",
            str(data),
            "--limit",
            "3",
            "--model",
            str(bench_judge_dir),
            "--batch_size",
            "16",
            "--output_dir",
            str(out),
        )
        == 0
    )
    report = read_report(out)
    n = 2 * report["n_items"]
    assert report["judge"] == "judge" and report["ties"] + report["parse_failures"] <= n
    assert report["parse_failures"] == round(report["metrics"]["format_failure_rate"] * n)
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert all("text" in p for p in preds)  # every generation kept for auditing


def test_voting_with_the_tiny_judge(fixtures, bench_judge_dir, tmp_path):
    out = tmp_path / "vote"
    assert (
        run(
            "--benchmark",
            "mm_rlhf_rewardbench",
            "--data",
            str(fixtures["mm_rlhf_rewardbench"]),
            "--limit",
            "3",
            "--model",
            str(bench_judge_dir),
            "--votes",
            "3",
            "--order",
            "random",
            "--output_dir",
            str(out),
        )
        == 0
    )
    report = read_report(out)
    assert report["votes"] == 3 and report["vote_temperature"] == 1.0 and report["judge"] == "judge@vote3"
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 3 and all(len(p["votes"]) == 3 for p in preds)
    assert "voting@3" in (out / "report.md").read_text()


def test_reaggregate_saved_predictions(fixtures, tmp_path):
    first, again = tmp_path / "a", tmp_path / "b"
    data = str(fixtures["vl_rewardbench"])
    assert run("--benchmark", "vl_rewardbench", "--data", data, "--model", "longer", "--output_dir", str(first)) == 0
    assert (
        run(
            "--benchmark",
            "vl_rewardbench",
            "--data",
            data,
            "--predictions",
            str(first / "predictions.jsonl"),
            "--tie_policy",
            "half",
            "--output_dir",
            str(again),
        )
        == 0
    )
    a, b = read_report(first), read_report(again)
    assert b["tie_policy"] == "half" and b["order"] == "both"
    assert b["metrics"]["overall"] - a["metrics"]["overall"] == pytest.approx(
        0.5 * a["ties"] / (2 * a["n_items"]), abs=1e-5
    )


def test_plain_pairs_keep_the_foundation_report(tmp_path):
    rows = [{"id": f"p{i}", "question": "q", "responses": ["aa", "b"], "preferred": i % 2} for i in range(4)]
    out = tmp_path / "plain"
    assert (
        run("--data", str(write_jsonl(tmp_path / "pairs.jsonl", rows)), "--model", "longer", "--output_dir", str(out))
        == 0
    )
    report = read_report(out)
    assert REPORT_KEYS <= set(report) and report["metrics"]["accuracy"] == 0.5 and report["tie_policy"] == "wrong"
    assert (
        run("--data", str(tmp_path / "pairs.jsonl"), "--model", "first", "--order", "stored", "--output_dir", str(out))
        == 0
    )


def test_plain_pairs_need_their_images_whatever_the_judge(capsys, tmp_path):
    """EGT's own format names only images it ships: a missing one is a broken dataset, even for `first`."""
    write_image(tmp_path / "a.png")
    rows = [
        {
            "id": f"p{i}",
            "question": "q",
            "responses": ["aa", "b"],
            "preferred": 0,
            "images": ["a.png" if i else "gone.png"],
            "category": "c",
        }
        for i in range(3)
    ]
    data = str(write_jsonl(tmp_path / "pairs.jsonl", rows))
    err = _fails(capsys, tmp_path / "o", "--data", data, "--model", "first")
    assert "gone.png" in err and "pairs format needs every image" in err
    out = tmp_path / "skip"
    assert run("--data", data, "--model", "first", "--skip_missing_images", "--output_dir", str(out)) == 0
    report = read_report(out)
    assert report["n_items"] == 2 and report["images"]["skipped_by_category"] == {"c": 1}
    assert "skipped 1 of 3 items" in (out / "report.md").read_text()


def test_a_corrupt_image_is_named_before_judging_or_skipped_and_counted(capsys, tmp_path):
    """Every image is decoded before the first item is judged; --skip_bad skips corrupt and missing
    ones and the report says how many; category names are escaped in report.md."""
    write_image(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    images = ["a.png", "bad.png", "gone.png", "a.png"]
    rows = [
        {"id": f"p{i}", "question": "q", "responses": ["aa", "b"], "preferred": 0, "images": [img]}
        | {"category": "a|b <i>c</i>"}
        for i, img in enumerate(images)
    ]
    data = str(write_jsonl(tmp_path / "pairs.jsonl", rows[:2] + rows[3:]))
    err = _fails(capsys, tmp_path / "o", "--data", data, "--model", "longer")
    assert f"{data}: line 2 (id='p1'): field 'images': cannot decode image" in err and "--skip_bad" in err
    data = str(write_jsonl(tmp_path / "pairs.jsonl", rows))
    out = tmp_path / "skip"
    assert run("--data", data, "--model", "longer", "--skip_bad", "--output_dir", str(out)) == 0
    report = read_report(out)
    assert report["n_items"] == 2 and report["images"]["skipped_bad"] == 1
    assert report["images"]["skipped_by_category"] == {"a|b <i>c</i>": 1}  # the missing one
    md = (out / "report.md").read_text()
    assert "skipped 1 of 3 items whose image does not decode" in md and "a\\|b &lt;i&gt;c&lt;/i&gt; 1" in md


# ---------------------------------------------------------------------------------------------
# bad inputs: exit 2, one line on stderr, nothing written


def _fails(capsys, out, *args) -> str:
    assert run(*args, "--output_dir", str(out)) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip().splitlines()[-1]  # model loading may draw a progress bar first
    assert err.startswith("egt: error:")
    return err


def test_unknown_benchmark(capsys, fixtures, tmp_path):
    err = _fails(
        capsys, tmp_path / "o", "--benchmark", "vlrb", "--data", str(fixtures["vl_rewardbench"]), "--model", "first"
    )
    assert "unknown benchmark 'vlrb'" in err and "vl_rewardbench" in err


def test_malformed_record(capsys, tmp_path):
    rows = vl_records()
    rows[4]["human_ranking"] = [0, 0]
    err = _fails(
        capsys,
        tmp_path / "o",
        "--benchmark",
        "vl_rewardbench",
        "--model",
        "first",
        "--data",
        str(write_jsonl(tmp_path / "bad.jsonl", rows)),
    )
    assert "line 5" in err and "human_ranking" in err


def test_malformed_json(capsys, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": "a", "prompt": "x"\n')
    err = _fails(capsys, tmp_path / "o", "--benchmark", "mm_rlhf_rewardbench", "--model", "first", "--data", str(path))
    assert "line 1: malformed JSON" in err


def test_stored_order_is_refused_on_benchmarks(capsys, fixtures, tmp_path):
    data = str(fixtures["vl_rewardbench"])
    err = _fails(
        capsys, tmp_path / "o", "--benchmark", "vl_rewardbench", "--data", data, "--model", "first", "--order", "stored"
    )
    assert "--allow_stored_order" in err
    out = tmp_path / "allowed"
    assert (
        run(
            "--benchmark",
            "vl_rewardbench",
            "--data",
            data,
            "--model",
            "first",
            "--order",
            "stored",
            "--allow_stored_order",
            "true",
            "--output_dir",
            str(out),
        )
        == 0
    )
    assert read_report(out)["metrics"]["overall"] == round(6 / 7, 6)  # fooled: only mmmu-pro_7 stores its winner second


def test_votes_need_a_generative_judge(capsys, fixtures, tmp_path):
    err = _fails(
        capsys,
        tmp_path / "o",
        "--benchmark",
        "rewardbench",
        "--data",
        str(fixtures["rewardbench"]),
        "--model",
        "first",
        "--votes",
        "3",
    )
    assert "generative judge" in err


def test_missing_images_error_skip_and_images_dir(capsys, bench_judge_dir, tmp_path):
    # the release, its images somewhere else; long/b.png and the video's frame folder are absent there too
    elsewhere = tmp_path / "elsewhere"
    for _qid, kind, media in {(r["id"], k, r[k]) for r in mm_rlhf_records() for k in ("image", "video") if k in r}:
        if kind == "image" and not media.startswith("long/"):
            write_image(elsewhere / media)
    data = write_jsonl(tmp_path / "release" / "mm_reward_bench.jsonl", mm_rlhf_records())
    common = ["--benchmark", "mm_rlhf_rewardbench", "--data", str(data), "--model", str(bench_judge_dir)]

    err = _fails(capsys, tmp_path / "o1", *common)
    assert "image file(s) missing for 9 of 9 items" in err and "mcq/a.png" in err

    err = _fails(capsys, tmp_path / "o2", *common, "--images_dir", str(elsewhere))
    assert "2 image file(s) missing for 4 of 9 items" in err and "long/b.png" in err and "video/ccc_3" in err

    out = tmp_path / "skipped"
    assert (
        run(
            *common,
            "--images-dir",
            str(elsewhere),
            "--skip-missing-images",
            "true",
            "--order",
            "random",
            "--output_dir",
            str(out),
        )
        == 0
    )
    report = read_report(out)
    assert report["n_items"] == 5 and report["images"]["skipped"] == 4
    assert report["images"]["skipped_by_category"] == {"long": 2, "video": 2}
    md = (out / "report.md").read_text()
    assert "skipped 4 of 9 items" in md and "long 2, video 2" in md

    shutil.copytree(elsewhere, tmp_path / "release", dirs_exist_ok=True)  # baselines never needed them anyway
    out = tmp_path / "first"
    assert (
        run("--benchmark", "mm_rlhf_rewardbench", "--data", str(data), "--model", "first", "--output_dir", str(out))
        == 0
    )
    assert read_report(out)["images"]["items_missing_images"] == 4
