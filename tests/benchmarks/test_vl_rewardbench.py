"""VL-RewardBench: both release formats, categories from id/source, overall and macro by hand."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from egt.benchmarks import vl_rewardbench as vl
from egt.benchmarks.run import evaluate_benchmark
from egt.errors import EgtError
from egt.judge.base import FirstJudge, RandomJudge

from .conftest import ScriptedJudge, prediction, vl_records, write_image, write_jsonl
from .releases import VL_CATEGORY

WV = "wildvision-battle-4575"  # the release's repeated id: items WV#0 and WV#1
LRV = "LRVInstruction-000000007746"


def test_jsonl_release_loads_with_categories_and_labels(vl_jsonl):
    pairs = vl.load(vl_jsonl)
    ids = [r["id"] for r in vl_records()]
    assert [p.id for p in pairs] == [i if i != WV else f"{WV}#{ids[:k].count(WV)}" for k, i in enumerate(ids)]
    assert {p.id: p.category for p in pairs} == {
        **{i: c for i, c in VL_CATEGORY.items() if i != WV},
        f"{WV}#0": "general",
        f"{WV}#1": "general",
    }
    by_id = {p.id: p for p in pairs}
    assert by_id[LRV].preferred == 1  # human_ranking [1, 0]: response[1] ranks first
    assert by_id["mathverse_3693"].preferred == 0 and by_id["mathverse_3693"].source is None  # no query_source
    assert by_id["hallucination_pair-11701"].source == "POVID_preference_data_for_VLLMs"
    assert by_id["hallucination_pair-11701"].images == ["images/povid/COCO_train2014_000000292135.jpg"]


@pytest.mark.parametrize(
    "rid, source, expected",
    [
        ("hallucination_pair-77", None, "hallucination"),  # POVID ids
        ("RLAIF-V_12", "", "hallucination"),  # upper case: R1-Reward's case-sensitive match says general
        ("x1", "RLHF-V", "hallucination"),
        ("q9", "MMMU-Pro", "reasoning"),
        ("MathVerse_3", None, "reasoning"),
        ("wildvision_1", "WildVision", "general"),
        ("VLFeedback_2", "vlfeedback", "general"),
    ],
)
def test_category_rule(rid, source, expected):
    assert vl.category_of(rid, source) == expected


def test_parquet_release_embeds_images(vl_parquet):
    pairs = vl.load(vl_parquet.parent.parent)  # the snapshot folder, as downloaded
    assert len(pairs) == 7 and all(isinstance(p.images[0], Image.Image) for p in pairs)
    assert [p.preferred for p in vl.load(vl_parquet)] == [1, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"human_ranking": [0, 0]}, "human_ranking"),
        ({"human_ranking": [0]}, "human_ranking"),
        ({"response": ["only one"]}, "response"),
        ({"query": None}, "query"),
        ({"image_path": None}, "image_path"),
    ],
)
def test_malformed_records_name_line_and_field(tmp_path, change, field):
    rows = vl_records()
    rows[2] = {**rows[2], **change}
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(EgtError) as e:
        vl.load(path)
    assert (
        "line 3" in str(e.value) and f"field {field!r}" in str(e.value) and "hallucination_pair-11701" in str(e.value)
    )


def test_repeated_ids_keep_every_row(tmp_path):
    """The release repeats ids (rule ``keep``): both rows are items, ``{id}#0`` and ``{id}#1``."""
    rows = vl_records()
    path = write_jsonl(tmp_path / "dup.jsonl", rows + [{**rows[1], "response": ["A sink.", "A stove."]}])
    pairs = vl.load(path)
    assert [p.id for p in pairs if "#" in p.id] == ["RLAIF-V-14#0", f"{WV}#0", f"{WV}#1", "RLAIF-V-14#1"]
    assert pairs[1].meta["original_id"] == pairs[-1].meta["original_id"] == "RLAIF-V-14"
    assert pairs[-1].category == "hallucination" and len(pairs) == 8


def test_an_item_key_colliding_with_an_id_is_refused(tmp_path):
    rows = vl_records()
    rows.append({**rows[0], "id": f"{LRV}#1"})
    rows.append(dict(rows[0]))
    with pytest.raises(EgtError, match=f"item key '{LRV}#1'.* is also an id of the file"):
        vl.load(write_jsonl(tmp_path / "clash.jsonl", rows))


@pytest.mark.parametrize(
    "image_path, rid, source, expected",
    [
        ("images/vlfeedback/LRVInstruction-1.jpg", "LRVInstruction-1", "LRVInstruction", "general"),
        ("images/wildvision-battle/wildvision-battle-9.jpg", "wildvision-battle-9", "wildvision-battle", "general"),
        (
            "images/povid/COCO_train2014_1.jpg",
            "hallucination_pair-1",
            "POVID_preference_data_for_VLLMs",
            "hallucination",
        ),
        ("images/rlhf-v/x.jpg", "x", "COCO", "hallucination"),
        ("images/rlaif-v/RLAIF-V-14.jpg", "RLAIF-V-14", "COCO", "hallucination"),
        ("images/reasoning_tasks/mmmu_pro_test_Accounting_170.png", "mmmu_pro_test_Accounting_170", None, "reasoning"),
        ("images/vlfeedback/m-rlhf-3.jpg", "m-rlhf-3", None, "general"),  # the folder wins over the keywords
    ],
)
def test_category_from_the_subset_folder(image_path, rid, source, expected):
    """The official cal.py takes the category from the image's subset folder."""
    assert vl.category_of(rid, source, image_path) == expected


def test_overall_and_macro_by_hand(vl_jsonl):
    """Outcomes (stored order / swapped order) on the release-shaped rows, categories G, H, R:

    G LRVInstruction right/right · H RLAIF-V-14 right/wrong · H hallucination_pair-11701 tie/right
    G wildvision#0 right/tie · G wildvision#1 wrong/right · R mathverse fail/fail · R mmmu_pro right/right

    wrong policy — stored: G 2/3, H 1/2, R 1/2, overall 4/7, macro (2/3+1/2+1/2)/3 = 5/9;
    swapped: G 2/3, H 1/2, R 1/2 → the same. Consistent items (both ok, same pick): LRV, mmmu → 2/7.
    half policy — stored: G 2/3, H .75, R .75, overall 5/7; swapped: G 2.5/3, H .5, R .75, overall 5/7;
    macro = ((2/3+.75+.75)/3 + (2.5/3+.5+.75)/3)/2.
    """
    outcomes = {
        LRV: ("right", "right"),
        "RLAIF-V-14": ("right", "wrong"),
        "hallucination_pair-11701": ("tie", "right"),
        f"{WV}#0": ("right", "tie"),
        f"{WV}#1": ("wrong", "right"),
        "mathverse_3693": ("fail", "fail"),
        "mmmu_pro_validation_Geography_8_2": ("right", "right"),
    }
    pairs = vl.load(vl_jsonl)
    preds = [prediction(p, outcomes[p.id][swapped], swapped) for p in pairs for swapped in (False, True)]
    out = vl.BENCHMARK.aggregate(preds, pairs, "wrong")
    m = out["metrics"]
    assert m["overall"] == round(4 / 7, 6) and m["macro"] == round(5 / 9, 6)
    assert m["overall_stored_order"] == m["overall_swapped_order"] == round(4 / 7, 6)
    assert out["categories"]["general"] == {"n": 3, "accuracy": round(2 / 3, 6)}
    assert out["categories"]["hallucination"] == {"n": 2, "accuracy": 0.5}
    assert out["categories"]["reasoning"] == {"n": 2, "accuracy": 0.5}
    assert m["order_consistency"] == round(2 / 7, 6)
    assert out["ties"] == 2 and out["parse_failures"] == 2
    assert out["sources"]["wildvision-battle"] == {"n": 2, "accuracy": 0.5}  # #0 (1, 0), #1 (0, 1)

    half = vl.BENCHMARK.aggregate(preds, pairs, "half")["metrics"]
    assert half["overall"] == round(5 / 7, 6)
    assert half["macro"] == pytest.approx(((2 / 3 + 0.75 + 0.75) / 3 + (2.5 / 3 + 0.5 + 0.75) / 3) / 2, abs=1e-6)


def _winner_first(tmp_path, n=40):
    rows = [
        {
            "id": f"{src}_{i}",
            "query": f"q{i}",
            "response": [f"good {i}", f"bad answer {i}"],
            "human_ranking": [0, 1],
            "image_path": "img.png",
            "query_source": src,
        }
        for i, src in ((i, ("povid", "mathverse", "wildvision")[i % 3]) for i in range(n))
    ]
    write_image(tmp_path / "img.png")
    return vl.load(write_jsonl(tmp_path / "winner_first.jsonl", rows))


def test_first_judge_is_at_chance_when_the_winner_is_stored_first(tmp_path):
    pairs = _winner_first(tmp_path)
    report, _ = evaluate_benchmark(FirstJudge(), vl.BENCHMARK, pairs, order="both")
    m = report["metrics"]
    assert m["overall_stored_order"] == 1.0 and m["overall_swapped_order"] == 0.0
    assert m["overall"] == 0.5 and m["macro"] == 0.5 and m["order_consistency"] == 0.0
    randomised, _ = evaluate_benchmark(FirstJudge(), vl.BENCHMARK, pairs, order="random", seed=3)
    assert 0.3 <= randomised["metrics"]["overall"] <= 0.7


def test_scripted_judge_through_the_harness(vl_jsonl):
    pairs = vl.load(vl_jsonl)
    judge = ScriptedJudge({("hallucination_pair-11701", False): "tie", ("mathverse_3693", True): "fail"})
    report, preds = evaluate_benchmark(judge, vl.BENCHMARK, pairs, order="both")
    assert report["benchmark"] == "vl_rewardbench" and report["tie_policy"] == "wrong"
    assert "VLMEvalKit" in report["scoring_rule"]
    assert report["ties"] == 1 and report["parse_failures"] == 1 and len(preds) == 14
    assert report["metrics"]["overall"] == round(12 / 14, 6)
    json.dumps(report)  # the report is plain JSON


def test_random_judge_is_seeded(vl_jsonl):
    pairs = vl.load(vl_jsonl)
    a, _ = evaluate_benchmark(RandomJudge(seed=1), vl.BENCHMARK, pairs)
    b, _ = evaluate_benchmark(RandomJudge(seed=1), vl.BENCHMARK, pairs)
    assert a["metrics"] == b["metrics"]
