"""The generic format's field mapping, the registry, voting@k, missing images, scalar ties."""

from __future__ import annotations

import pytest

from egt.benchmarks import BENCHMARKS, PAIRS, field_mapping, generic, get_benchmark
from egt.benchmarks.images import check_images
from egt.benchmarks.run import evaluate_benchmark, reaggregate
from egt.errors import EgtError
from egt.judge.base import FirstJudge, Judgement
from egt.judge.voting import majority
from egt.records import PreferencePair

from .conftest import write_image, write_jsonl


def test_registry_names_and_errors():
    assert set(BENCHMARKS) == {
        "vl_rewardbench",
        "multimodal_rewardbench",
        "mm_rlhf_rewardbench",
        "rewardbench",
        "generic",
    }
    assert get_benchmark("") is PAIRS and get_benchmark("pairs") is PAIRS
    with pytest.raises(EgtError, match="unknown benchmark 'vlrb'"):
        get_benchmark("vlrb")
    with pytest.raises(EgtError, match="--fields applies to --benchmark generic"):
        get_benchmark("rewardbench", fields="question=prompt")
    for bench in BENCHMARKS.values():
        assert bench.tie_policy in ("wrong", "half") and bench.rule


def test_generic_mapping_with_nested_fields(tmp_path):
    rows = [
        {
            "uid": f"u{i}",
            "prompt": f"q{i}",
            "good": "yes",
            "bad": "no",
            "img": f"{i}.png",
            "meta": {"kind": "a" if i < 2 else "b"},
        }
        for i in range(3)
    ]
    path = write_jsonl(tmp_path / "mine.jsonl", rows)
    bench = get_benchmark("generic", "id=uid,question=prompt,chosen=good,rejected=bad,images=img,category=meta.kind")
    pairs = bench.load(path, tmp_path)
    assert [(p.id, p.question, p.responses, p.preferred, p.images, p.category) for p in pairs][0] == (
        "u0",
        "q0",
        ("yes", "no"),
        0,
        ["0.png"],
        "a",
    )


def test_generic_defaults_and_responses_form(tmp_path):
    rows = [
        {"prompt": "q", "responses": ["x", "yy"], "preferred": 1},
        {"prompt": "r", "responses": ["z", "w"], "preferred": 0},
    ]
    pairs = generic.load(write_jsonl(tmp_path / "p.jsonl", rows))
    assert [(p.id, p.preferred) for p in pairs] == [("0", 1), ("1", 0)]
    rows[1]["preferred"] = 2
    with pytest.raises(EgtError, match=r"line 2: field 'preferred'"):
        generic.load(write_jsonl(tmp_path / "q.jsonl", rows))


@pytest.mark.parametrize("spec, msg", [("question", "expected OURS=THEIRS"), ("answer=x", "unknown field 'answer'")])
def test_generic_bad_mapping(spec, msg):
    with pytest.raises(EgtError, match=msg):
        field_mapping.parse_fields(spec)


def test_generic_accuracy_by_category(tmp_path):
    rows = [
        {"id": str(i), "question": "q", "chosen": "long good", "rejected": "bad", "category": "c"} for i in range(4)
    ]
    bench = get_benchmark("generic")
    pairs = bench.load(write_jsonl(tmp_path / "g.jsonl", rows), tmp_path)
    report, _ = evaluate_benchmark(FirstJudge(), bench, pairs, order="random", seed=0)
    assert report["order"] == "random" and report["categories"]["c"]["n"] == 4
    assert report["metrics"]["accuracy"] == report["categories"]["c"]["accuracy"]


@pytest.mark.parametrize(
    "votes, status, choice",
    [
        ([0, 0, 1], "ok", 0),
        ([1, None, 1], "ok", 1),
        ([0, 1, None], "tie", None),
        ([None, None, None], "parse_failure", None),
    ],
)
def test_majority_vote(votes, status, choice):
    j = majority(votes, [f"text{i}" for i in range(len(votes))])
    assert (j.status, j.choice, j.votes) == (status, choice, votes)


def _pairs_with_images(tmp_path):
    write_image(tmp_path / "here.png")
    return [
        PreferencePair(
            id=f"p{i}",
            question="q",
            responses=("a", "b"),
            preferred=0,
            category=c,
            images=["here.png"] if i % 2 == 0 else [f"gone/{i}.png"],
        )
        for i, c in enumerate(["x", "x", "y", "y", "y", "z"])
    ]


def test_missing_images_for_an_image_reading_judge(tmp_path):
    pairs = _pairs_with_images(tmp_path)
    with pytest.raises(EgtError) as e:
        check_images(pairs, tmp_path, reads_images=True)
    msg = str(e.value)
    assert "3 image file(s) missing for 3 of 6 items" in msg and "gone/1.png" in msg
    assert "--images_dir" in msg and "--skip_missing_images" in msg
    kept, info = check_images(pairs, tmp_path, reads_images=True, skip_missing=True)
    assert [p.id for p in kept] == ["p0", "p2", "p4"]
    assert info["skipped"] == 3 and info["skipped_by_category"] == {"x": 1, "y": 1, "z": 1}


def test_missing_images_for_a_judge_that_reads_none(tmp_path):
    kept, info = check_images(_pairs_with_images(tmp_path), tmp_path, reads_images=False)
    assert len(kept) == 6 and info["items_missing_images"] == 3 and "ran on every item" in info["note"]


def test_equal_scalar_rewards_are_ties_and_reaggregation_matches():
    class Scalar:
        name, reads_images = "scalar", False

        def judge(self, requests):
            return [Judgement(choice=0, scores=(1.0, 1.0) if r.pair.id == "t" else (2.0, 1.0)) for r in requests]

    pairs = [PreferencePair(id=i, question="q", responses=("a", "b"), preferred=0, category="c") for i in ("t", "u")]
    bench = get_benchmark("generic")
    report, preds = evaluate_benchmark(Scalar(), bench, pairs, order="both")
    assert report["ties"] == 2 and {p.status for p in preds if p.id == "t"} == {"tie"}
    # u: right in the stored order, wrong swapped (it always says 1); t: a tie in both → 1/4, or 2/4 at half
    assert report["metrics"]["accuracy"] == 0.25
    again = reaggregate(bench, pairs, preds, "half")
    assert again["order"] == "both" and again["metrics"]["accuracy"] == 0.5 and again["tie_policy"] == "half"
