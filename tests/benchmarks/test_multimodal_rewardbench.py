"""Multimodal RewardBench: the JSON-list release, official categories and splits, metrics by hand."""

from __future__ import annotations

import json

import pytest

from egt.benchmarks import multimodal_rewardbench as mmrb
from egt.errors import EgtError

from .conftest import mmrb_records, prediction, write_jsonl


def test_release_loads_categories_splits_and_labels(mmrb_json):
    pairs = {p.id: p for p in mmrb.load(mmrb_json)}
    assert pairs["nocaps_13062"].category == "correctness" and pairs["nocaps_13062"].preferred == 1
    assert pairs["visitbench_235"].category == "correctness" and pairs["visitbench_235"].preferred == 1
    assert pairs["nocaps_4500"].category == "preference" and pairs["nocaps_4500"].preferred == 0
    splits = {rid: p.meta.get("split") for rid, p in pairs.items()}
    assert splits["mathvista_5"] == "reasoning/math" and splits["EMMA-Coding_3"] == "reasoning/coding"
    assert splits["PAIRS_occupation_1"] == "safety/bias"  # prefix matched case-insensitively
    assert splits["hateful_memes_12"] == "safety/toxicity" and splits["RealworldQA_8"] is None
    assert pairs["nocaps_13062"].images == ["images/nocaps/0.jpg"]


def test_a_category_kept_under_meta_is_read(tmp_path):
    """The official outputs files carry the record's category as ``Meta.Category`` (the judge script
    stores the whole record under ``Meta``); a file in that convention reads the same category."""
    rows = mmrb_records()
    rows[6] = {**{k: v for k, v in rows[6].items() if k != "Category"}, "Meta": {"Category": "safety"}}
    path = tmp_path / "all_data.json"
    path.write_text(json.dumps(rows))
    pairs = {p.id: p for p in mmrb.load(path)}
    assert (
        pairs["hateful_memes_12"].category == "safety" and pairs["hateful_memes_12"].meta["split"] == "safety/toxicity"
    )


def test_jsonl_copy_reads_the_same(tmp_path, mmrb_json):
    path = write_jsonl(tmp_path / "all_data.jsonl", mmrb_records())
    assert [p.id for p in mmrb.load(path)] == [p.id for p in mmrb.load(mmrb_json)]


@pytest.mark.parametrize(
    "change, field",
    [({"Better": "A"}, "Better"), ({"Output2": 3}, "Output2"), ({"Category": None}, "Category"), ({"ID": ""}, "ID")],
)
def test_malformed_records(tmp_path, change, field):
    rows = mmrb_records()
    rows[1] = {**rows[1], **change}
    path = tmp_path / "all_data.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(EgtError) as e:
        mmrb.load(path)
    assert "record 1" in str(e.value) and f"field {field!r}" in str(e.value)


def test_metrics_by_hand(mmrb_json):
    """Outcomes in file order: right, right, fail, right, wrong, tie, right, right, wrong.

    half (the official rule): scores 1, 1, .5, 1, 0, .5, 1, 1, 0 → overall 6/9; correctness 1,
    preference 0, knowledge .5, reasoning (1+0)/2, math 1, coding 0, safety (.5+1)/2, bias .5,
    toxicity 1, vqa 1. wrong: overall 5/9, knowledge 0, safety .5.
    """
    pairs = mmrb.load(mmrb_json)
    outcomes = ["right", "right", "fail", "right", "wrong", "tie", "right", "right", "wrong"]
    preds = [prediction(p, o) for p, o in zip(pairs, outcomes, strict=True)]
    out = mmrb.BENCHMARK.aggregate(preds, pairs)
    assert out["metrics"]["overall"] == round(6 / 9, 6)
    acc = {c: v["accuracy"] for c, v in out["categories"].items()}
    assert acc == {
        "correctness": 1.0,
        "preference": 0.0,
        "knowledge": 0.5,
        "reasoning": 0.5,
        "safety": 0.75,
        "vqa": 1.0,
        "reasoning/math": 1.0,
        "reasoning/coding": 0.0,
        "safety/bias": 0.5,
        "safety/toxicity": 1.0,
    }
    assert list(out["categories"])[:6] == ["correctness", "preference", "knowledge", "reasoning", "safety", "vqa"]
    wrong = mmrb.BENCHMARK.aggregate(preds, pairs, "wrong")
    assert wrong["metrics"]["overall"] == round(5 / 9, 6) and wrong["categories"]["safety"]["accuracy"] == 0.5
    assert wrong["ties"] == 1 and wrong["parse_failures"] == 1
