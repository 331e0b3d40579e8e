"""Release-shaped fixtures end to end: repeated ids, missing images, video folders, tie labels and
the generic mappings, with every expected metric worked by hand (see tests/benchmarks/releases.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from egt.benchmarks import (
    field_mapping,
    generic,
    get_benchmark,
    mm_rlhf_rewardbench,
    multimodal_rewardbench,
    rewardbench,
)
from egt.benchmarks import vl_rewardbench as vl
from egt.benchmarks.common import release_summary
from egt.benchmarks.images import check_images
from egt.cli import main
from egt.errors import EgtError
from real_data import shared_data

from . import releases as R
from .conftest import MM_RLHF_REAL, rb_records, write_jsonl


def run(*args: str) -> int:
    return main(["eval", *args])


def report_of(out):
    return json.loads((out / "report.json").read_text())


def predictions_of(out):
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def fresh_and_reaggregated(tmp_path, *args):
    """A `longer` run and the re-aggregation of its predictions.jsonl: (fresh, again) reports."""
    fresh, again = tmp_path / "fresh", tmp_path / "again"
    assert run(*args, "--model", "longer", "--output_dir", str(fresh)) == 0
    assert run(*args, "--predictions", str(fresh / "predictions.jsonl"), "--output_dir", str(again)) == 0
    return report_of(fresh), report_of(again)


SAME_BLOCKS = ("metrics", "categories", "subsets", "sources", "ties", "parse_failures", "n_items", "order")


# --------------------------------------------------------------------------------------------
# VL-RewardBench


def test_vl_release_rows_lengths_are_as_the_hand_work_assumes():
    lengths = [tuple(len(r) for r in row["response"]) for row in R.VL_ROWS]
    longer = [0 if a > b else 1 if b > a else None for a, b in lengths]
    assert longer == [0, 1, 1, 1, 0, 0, None]
    assert [row["human_ranking"] for row in R.VL_ROWS].count([1, 0]) == 1


def test_vl_release_keeps_both_rows_of_a_repeated_id(tmp_path):
    pairs = vl.load(R.write_vl_release(tmp_path))
    keys = [p.id for p in pairs]
    assert keys == [
        "LRVInstruction-000000007746",
        "RLAIF-V-14",
        "hallucination_pair-11701",
        "wildvision-battle-4575#0",
        "wildvision-battle-4575#1",
        "mathverse_3693",
        "mmmu_pro_validation_Geography_8_2",
    ]
    twins = [p for p in pairs if p.meta.get("original_id") == "wildvision-battle-4575"]
    assert [p.meta["models"] for p in twins] == [["gpt-4o", "cogvlm-chat-hf"], ["claude-3-sonnet", "llava-v1.6-34b"]]
    assert twins[0].images == twins[1].images and twins[0].responses != twins[1].responses
    assert "original_id" not in pairs[0].meta  # an id that occurs once keeps its name and no alias
    assert {p.meta.get("original_id", p.id): p.category for p in pairs} == R.VL_CATEGORY
    assert pairs[0].preferred == 1 and pairs[5].source is None  # ranking [1, 0]; reasoning rows carry no query_source
    assert [p.meta.get("subset") for p in pairs] == [
        "vlfeedback",
        "rlaif-v",
        "povid",
        "wildvision-battle",
        "wildvision-battle",
        "reasoning_tasks",
        "reasoning_tasks",
    ]
    summary = release_summary(pairs, vl.BENCHMARK)
    assert summary["categories"] == {"general": 3, "hallucination": 2, "reasoning": 2}
    assert summary["release_categories"] == {"general": 183, "hallucination": 749, "reasoning": 318}
    assert summary["matches_release"] is False
    assert summary["repeated_ids"]["ids"] == 1 and summary["repeated_ids"]["rule"] == "keep"
    assert summary["repeated_ids"]["examples"] == {
        "wildvision-battle-4575": ["wildvision-battle-4575#0", "wildvision-battle-4575#1"]
    }


def test_vl_parquet_copy_reads_the_same_items(tmp_path):
    """The HF layout embeds the images (no subset folder): the id/source keywords give the same categories."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .conftest import png_bytes

    rows = []
    for row in R.VL_ROWS:
        row = {k: v for k, v in row.items() if k != "image_path"}
        row["image"] = {"bytes": png_bytes(), "path": None}
        row["meta"] = json.dumps(row["meta"])  # a string column in the HF release
        rows.append(row)
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    from_parquet, from_jsonl = vl.load(path), vl.load(R.write_vl_release(tmp_path / "gh"))
    assert [(p.id, p.category, p.preferred) for p in from_parquet] == [
        (p.id, p.category, p.preferred) for p in from_jsonl
    ]


def test_human_ranking_stored_as_text_is_read():
    """VLMEvalKit's TSV (and copies made from it) store the ranking as text, ``"[1, 0]"``."""
    assert vl.preferred_from_ranking("x", {"human_ranking": "[1, 0]"}) == 1
    assert vl.preferred_from_ranking("x", {"human_ranking": "[0, 1]"}) == 0


def test_vl_release_first_judge_end_to_end(tmp_path, capsys):
    """`first` on the 7 items (6 store the winner first; LRVInstruction stores it second):
    stored order 6/7, swapped 1/7, overall (6/7 + 1/7)/2 = 50.0%; macro stored (2/3 + 1 + 1)/3 = 8/9,
    swapped (1/3 + 0 + 0)/3 = 1/9, mean 50.0%; every category 50.0%, sizes general 3 (vlfeedback 1,
    wildvision 2), hallucination 2, reasoning 2; order consistency 0."""
    out = tmp_path / "first"
    data = R.write_vl_release(tmp_path / "release")
    assert run("--benchmark", "vl-rewardbench", "--data", str(data), "--model", "first", "--output_dir", str(out)) == 0
    printed = capsys.readouterr().out
    assert (
        "read 7 items of VL-RewardBench: general 3, hallucination 2, reasoning 2 (the full release has "
        "general 183, hallucination 749, reasoning 318)"
    ) in printed
    assert "repeated ids: 1 id(s) on 2 rows" in printed and "wildvision-battle-4575#0, #1" in printed
    report = report_of(out)
    m = report["metrics"]
    assert report["n_items"] == 7 and m["overall"] == 0.5 and m["macro"] == 0.5
    assert m["overall_stored_order"] == round(6 / 7, 6) and m["overall_swapped_order"] == round(1 / 7, 6)
    assert m["macro_stored_order"] == round(8 / 9, 6) and m["macro_swapped_order"] == round(1 / 9, 6)
    assert {c: (v["n"], v["accuracy"]) for c, v in report["categories"].items()} == {
        "general": (3, 0.5),
        "hallucination": (2, 0.5),
        "reasoning": (2, 0.5),
    }
    assert report["subsets"]["wildvision-battle"]["n"] == 2
    assert report["release"]["repeated_ids"]["ids"] == 1
    preds = predictions_of(out)
    assert len(preds) == 14
    twins = [p for p in preds if p.get("original_id") == "wildvision-battle-4575"]
    assert [p["id"] for p in twins] == ["wildvision-battle-4575#0"] * 2 + ["wildvision-battle-4575#1"] * 2
    assert list(twins[0])[:2] == ["id", "original_id"]
    assert "original_id" not in preds[0]
    assert "wildvision-battle-4575 → wildvision-battle-4575#0, #1" in (out / "report.md").read_text()


def test_vl_release_longer_fresh_equals_reaggregated(tmp_path):
    """`longer` (length decides, so both orders agree): right on wildvision-battle-4575#1 and mathverse_3693,
    wrong on LRVInstruction (its longer response lost), RLAIF-V-14, hallucination_pair-11701 and
    wildvision-battle-4575#0, a tie on mmmu_pro (two 39-character answers) → overall 2/7 = 28.57%;
    general 1/3, hallucination 0, reasoning 1/2, macro (1/3 + 0 + 1/2)/3 = 5/18 = 27.78%; ties 2 (one item,
    two orders); consistency 6/7. The same numbers come back from predictions.jsonl."""
    data = R.write_vl_release(tmp_path / "release")
    fresh, again = fresh_and_reaggregated(tmp_path, "--benchmark", "vl_rewardbench", "--data", str(data))
    m = fresh["metrics"]
    assert m["overall"] == round(2 / 7, 6) and m["macro"] == round(5 / 18, 6)
    assert {c: v["accuracy"] for c, v in fresh["categories"].items()} == {
        "general": round(1 / 3, 6),
        "hallucination": 0.0,
        "reasoning": 0.5,
    }
    assert fresh["ties"] == 2 and m["order_consistency"] == round(6 / 7, 6)
    for block in SAME_BLOCKS:
        assert again[block] == fresh[block], block


def test_predictions_naming_a_repeated_release_id_are_explained(tmp_path):
    from egt.benchmarks.run import ItemPrediction, reaggregate

    pairs = vl.load(R.write_vl_release(tmp_path))
    stale = [ItemPrediction(id="wildvision-battle-4575", swapped=False, status="ok", predicted=0, preferred=0)]
    with pytest.raises(EgtError, match="names 2 rows of the data, whose items are wildvision-battle-4575#0"):
        reaggregate(vl.BENCHMARK, pairs, stale)


# --------------------------------------------------------------------------------------------
# MM-RLHF-RewardBench


def test_mm_rlhf_release_groups_pairs_and_finds_the_video_folder(tmp_path):
    data = R.write_mm_rlhf_release(tmp_path)
    pairs = mm_rlhf_rewardbench.load(data, tmp_path)
    assert [p.id for p in pairs][:4] == [f"{R.MCQ}#0", f"{R.MCQ}#1", f"{R.MCQ}#2", f"{R.FIGUREQA}#0"]
    assert {p.meta["question_id"] for p in pairs} == {R.MCQ, R.FIGUREQA, R.SAFETY, R.VIDEO, R.LONG}
    video = next(p for p in pairs if p.category == "video")
    assert video.id == f"{R.VIDEO}#0" and video.images == [
        f"video/-77dfCjTbSc/{n}" for n in ("1.jpg", "2.jpg", "10.jpg")
    ]
    summary = release_summary(pairs, mm_rlhf_rewardbench.BENCHMARK)
    assert summary["categories"] == {"mcq": 3, "long": 1, "short": 2, "safety": 2, "video": 2}
    assert summary["repeated_ids"]["ids"] == 4 and summary["repeated_ids"]["rows"] == 9  # LONG has one pair


def test_mm_rlhf_release_first_and_longer(tmp_path):
    """`first` (chosen always stored first): Acc stored 1, swapped 0 → 50.0%; Acc+ stored 5/5, swapped 0/5 → 50.0%.
    `longer`: mcq right/wrong/right (2/3), short wrong twice, safety and video right twice, long a tie
    (33 = 33 characters) → Acc 6/10 = 60.0%, Acc+ = {safety, video} = 2/5 = 40.0%; per category mcq 2/3 (Acc+ 0),
    short 0, safety 1, video 1, long 0. The safety image is absent: the baselines run on all 10 and the
    report says 2 items had images absent. Re-aggregated predictions give the same numbers."""
    data = R.write_mm_rlhf_release(tmp_path / "release")
    out = tmp_path / "first"
    assert (
        run("--benchmark", "MM-RLHF-RewardBench", "--data", str(data), "--model", "first", "--output_dir", str(out))
        == 0
    )
    first = report_of(out)
    assert first["metrics"]["acc"] == 0.5 and first["metrics"]["acc_plus"] == 0.5
    assert first["images"]["items_missing_images"] == 2
    assert {p["original_id"] for p in predictions_of(out)} == {R.MCQ, R.FIGUREQA, R.SAFETY, R.VIDEO, R.LONG}

    fresh, again = fresh_and_reaggregated(tmp_path, "--benchmark", "mm_rlhf_rewardbench", "--data", str(data))
    m = fresh["metrics"]
    assert m["acc"] == 0.6 and m["acc_plus"] == 0.4 and fresh["ties"] == 2
    cats = fresh["categories"]
    assert (cats["mcq"]["accuracy"], cats["mcq"]["acc_plus"]) == (round(2 / 3, 6), 0.0)
    assert cats["safety"]["acc_plus"] == cats["video"]["acc_plus"] == 1.0 and cats["long"]["accuracy"] == 0.0
    for block in SAME_BLOCKS:
        assert again.get(block) == fresh.get(block), block


def test_mm_rlhf_real_file_matches_the_release_counts():
    path = shared_data(*MM_RLHF_REAL)
    pairs = mm_rlhf_rewardbench.load(path, path.parent)
    summary = release_summary(pairs, mm_rlhf_rewardbench.BENCHMARK)
    assert summary["matches_release"] is True and summary["n_items"] == 170
    assert summary["repeated_ids"]["ids"] == 46 and summary["repeated_ids"]["rows"] == 170


# --------------------------------------------------------------------------------------------
# Multimodal RewardBench


def test_mmrb_release_missing_hateful_memes_image(tmp_path, capsys):
    """`first` (half policy, no ties): Better = Output1 on 5 of 9 → stored 5/9, swapped 4/9, overall 50.0%.
    `longer`: right on both nocaps rows, visitbench, mmmu-s, EMMA-Coding, PAIRS, hateful_memes ("yes"
    beats "no"), wrong on mathvista and RealworldQA → 7/9; correctness 1, preference 1, reasoning 1/2
    (math 0, coding 1), safety 1, vqa 0.
    The Hateful Memes image is absent: the baselines run on every row; an image-reading judge is stopped."""
    data = R.write_mmrb_release(tmp_path / "release")
    out = tmp_path / "first"
    assert (
        run("--benchmark", "multimodal-rewardbench", "--data", str(data), "--model", "first", "--output_dir", str(out))
        == 0
    )
    report = report_of(out)
    m = report["metrics"]
    assert m["overall"] == 0.5 and m["overall_stored_order"] == round(5 / 9, 6)
    assert m["overall_swapped_order"] == round(4 / 9, 6)
    assert report["images"]["items_missing_images"] == 1 and R.MMRB_MISSING in report["images"]["first_missing"][0]
    assert list(report["release"]["categories"]) == [
        "correctness",
        "preference",
        "knowledge",
        "reasoning",
        "safety",
        "vqa",
    ]
    fresh, again = fresh_and_reaggregated(tmp_path, "--benchmark", "multimodal_rewardbench", "--data", str(data))
    acc = {c: v["accuracy"] for c, v in fresh["categories"].items()}
    assert fresh["metrics"]["overall"] == round(7 / 9, 6)
    assert (acc["correctness"], acc["preference"], acc["reasoning"], acc["reasoning/math"]) == (1.0, 1.0, 0.5, 0.0)
    assert (acc["reasoning/coding"], acc["safety"], acc["vqa"]) == (1.0, 1.0, 0.0)
    for block in SAME_BLOCKS:
        assert again.get(block) == fresh.get(block), block
    pairs = multimodal_rewardbench.load(data)
    with pytest.raises(EgtError, match="hateful_memes/12.png"):
        check_images(pairs, data.parent, reads_images=True)


def test_mmrb_repeated_id_is_another_line(tmp_path):
    """The official scorer scores each line: a repeated ID keeps both rows (keys ID#0, ID#1)."""
    rows = R.MMRB_ROWS + [{**R.MMRB_ROWS[2], "Output2": "Answer: B, the lung."}]
    path = tmp_path / "all_data.json"
    path.write_text(json.dumps(rows))
    pairs = multimodal_rewardbench.load(path)
    assert [p.id for p in pairs if p.meta.get("original_id") == "mmmu-s_10"] == ["mmmu-s_10#0", "mmmu-s_10#1"]
    assert len(pairs) == 10 and pairs[2].category == "knowledge"


# --------------------------------------------------------------------------------------------
# RewardBench and EGT's own pairs: a repeat is refused


def test_rewardbench_refuses_a_repeated_id(tmp_path):
    rows = rb_records()
    with pytest.raises(EgtError, match=r"id='1000': field 'id': duplicate id \(2 rows\); the filtered split"):
        rewardbench.load(write_jsonl(tmp_path / "rb.jsonl", rows + rows[:1]))


def test_egt_pairs_refuse_a_repeated_id(tmp_path, capsys):
    row = {"id": "p", "question": "q", "responses": ["a", "b"], "preferred": 0}
    data = write_jsonl(tmp_path / "pairs.jsonl", [row, row])
    assert run("--data", str(data), "--model", "first", "--output_dir", str(tmp_path / "o")) == 2
    assert "duplicate id" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# the generic adapter on people's files


ALPACA_FIELDS = "question=instruction+input,responses=output_1+output_2,label=preference:1/2"


@pytest.mark.parametrize(
    "fields", [ALPACA_FIELDS, "question=instruction+input,responses=output_1+output_2,label=preference"]
)
def test_two_field_one_based_file_without_conversion(tmp_path, fields, capsys):
    """AlpacaFarm-style: preference 1, 2, 2, 1, 2, 1 → preferred 0, 1, 1, 0, 1, 0 (the encoding said, or inferred
    from the values 1 and 2). `first`: 3 winners stored first → 3/6 stored, 3/6 swapped, 50.0%.
    `longer`: right on rows 1, 2, 4, 5, wrong on 3 (the longer "Canberra is the capital…" lost) and 6 (17 > 16
    characters for the wrong "Yes, 91 is prime.") → 4/6 = 66.67%, both orders."""
    data = R.write_alpaca_pairs(tmp_path / "alpaca")
    pairs = generic.load(data, fields=fields)
    assert [p.preferred for p in pairs] == [0, 1, 1, 0, 1, 0]
    assert pairs[1].question == "Translate to French.\n\nGood morning, my friend." and pairs[0].question.endswith(
        "healthy."
    )
    assert [p.id for p in pairs] == [str(i) for i in range(6)]
    out = tmp_path / "first"
    assert (
        run(
            "--benchmark",
            "generic",
            "--data",
            str(data),
            "--fields",
            fields,
            "--model",
            "first",
            "--output_dir",
            str(out),
        )
        == 0
    )
    assert report_of(out)["metrics"]["accuracy"] == 0.5
    fresh, again = fresh_and_reaggregated(tmp_path, "--benchmark", "generic", "--data", str(data), "--fields", fields)
    assert fresh["metrics"]["accuracy"] == round(4 / 6, 6) and again["metrics"] == fresh["metrics"]
    if ":" not in fields:
        assert "label 'preference' read as 1/2 (inferred from its values 1, 2" in capsys.readouterr().out


def test_arena_file_ties_skipped_and_repeated_question_ids(tmp_path):
    """MT-Bench human judgments: 6 rows, winner tie and tie (bothbad) skipped and counted → 4 items;
    question 81 keeps 3 of them (81#0, 81#1, 81#2, the turn-2 row last), question 82 one ("82").
    Responses are the last assistant turns, questions the user turn before (turn 2: the rewrite request).
    `longer`: the winner is the longer answer on all 4 → 100%; `first`: winners model_a on 2 → 50.0%."""
    data = R.write_mt_bench_judgments(tmp_path / "mt")
    fields = "id=question_id,responses=conversation_a+conversation_b,label=winner:model_a/model_b,category=turn"
    pairs = generic.load(data, fields=fields)
    assert [(p.id, p.preferred, p.category) for p in pairs] == [
        ("81#0", 0, "1"),
        ("81#1", 1, "1"),
        ("81#2", 1, "2"),
        ("82", 0, "1"),
    ]
    assert pairs.skipped == {
        "winner = 'tie', a tie: no preferred response": 1,
        "winner = 'tie (bothbad)', a tie: no preferred response": 1,
    }
    assert pairs[2].question.startswith("Rewrite your previous response") and pairs[0].question == R.Q81
    assert pairs[2].responses[1].startswith("Aloha. Amazing")
    out = tmp_path / "first"
    assert (
        run(
            "--benchmark",
            "generic",
            "--data",
            str(data),
            "--fields",
            fields,
            "--model",
            "first",
            "--output_dir",
            str(out),
        )
        == 0
    )
    report = report_of(out)
    assert report["metrics"]["accuracy"] == 0.5 and report["n_items"] == 4
    assert report["release"]["skipped"] == pairs.skipped
    assert "skipped 1 row(s): winner = 'tie (bothbad)'" in (out / "report.md").read_text()
    fresh, again = fresh_and_reaggregated(tmp_path, "--benchmark", "generic", "--data", str(data), "--fields", fields)
    assert fresh["metrics"]["accuracy"] == 1.0 and again["metrics"] == fresh["metrics"]


@pytest.mark.parametrize(
    "fields", ["id=uid,responses=answer_a+answer_b,label=better:A/B", "id=uid,responses=answer_a+answer_b,label=better"]
)
def test_letter_labels_any_case(tmp_path, fields):
    """better A, B, a, b → preferred 0, 1, 0, 1 (letters in any case; inferred or said)."""
    pairs = generic.load(R.write_ab_pairs(tmp_path), fields=fields)
    assert [(p.id, p.preferred) for p in pairs] == [("ab-1", 0), ("ab-2", 1), ("ab-3", 0), ("ab-4", 1)]


def test_zero_based_two_fields_and_list_field(tmp_path):
    rows = [
        {"prompt": "q1", "response_0": "a", "response_1": "bb", "better_response_id": 1},
        {"prompt": "q2", "response_0": "cc", "response_1": "d", "better_response_id": 0},
    ]
    pairs = generic.load(
        write_jsonl(tmp_path / "z.jsonl", rows), fields="responses=response_0+response_1,label=better_response_id:0/1"
    )
    assert [(p.responses, p.preferred) for p in pairs] == [(("a", "bb"), 1), (("cc", "d"), 0)]
    rows = [
        {"prompt": "q", "completions": ["x", "y"], "winner": 2},
        {"prompt": "r", "completions": ["z", "w"], "winner": 1},
    ]
    pairs = generic.load(write_jsonl(tmp_path / "l.jsonl", rows), fields="responses=completions,label=winner:1/2")
    assert [p.preferred for p in pairs] == [1, 0]


def test_own_tie_values_and_unknown_values(tmp_path):
    rows = [{"prompt": "q", "left": "a", "right": "b", "verdict": v} for v in ("left", "same", "right")]
    path = write_jsonl(tmp_path / "v.jsonl", rows)
    pairs = generic.load(path, fields="responses=left+right,label=verdict:left/right/same")
    assert [p.preferred for p in pairs] == [0, 1] and pairs.skipped == {
        "verdict = 'same', a tie: no preferred response": 1
    }
    with pytest.raises(EgtError, match=r"line 2.*'same' is not a value of left/right .*label=verdict:left/right/same"):
        generic.load(path, fields="responses=left+right,label=verdict:left/right")


def test_ambiguous_or_unknown_label_values_ask_for_the_encoding(tmp_path):
    rows = [{"prompt": "q", "output_1": "a", "output_2": "b", "label": 1}] * 2
    with pytest.raises(EgtError, match=r"label=label:FIRST/SECOND.*values \(1\) fit 0/1 and 1/2 alike"):
        generic.load(write_jsonl(tmp_path / "a.jsonl", rows), fields="responses=output_1+output_2")
    rows = [{"prompt": "q", "output_1": "a", "output_2": "b", "label": v} for v in (-1, 1)]
    with pytest.raises(EgtError, match=r"fit none of 0/1, 1/2, A/B"):
        generic.load(write_jsonl(tmp_path / "b.jsonl", rows), fields="responses=output_1+output_2,label=label")


@pytest.mark.parametrize(
    "writer, expected",
    [
        (
            R.write_alpaca_pairs,
            "fields: instruction, input, output_1, output_2, preference — try --fields "
            "'question=instruction+input,responses=output_1+output_2,label=preference'",
        ),
        (
            R.write_mt_bench_judgments,
            "fields: question_id, model_a, model_b, winner, judge, conversation_a, conversation_b, "
            "turn — try --fields 'id=question_id,responses=conversation_a+conversation_b,label=winner'",
        ),
        (R.write_ab_pairs, "try --fields 'id=uid,responses=answer_a+answer_b,label=better'"),
    ],
)
def test_mapping_errors_name_the_fields_and_suggest_a_mapping(tmp_path, capsys, writer, expected):
    data = writer(tmp_path / "d")
    assert (
        run("--benchmark", "generic", "--data", str(data), "--model", "first", "--output_dir", str(tmp_path / "o")) == 2
    )
    err = capsys.readouterr().err
    assert "no responses" in err and expected in err and not (tmp_path / "o").exists()
    suggestion = expected.rpartition("--fields '")[2].rstrip("'")
    assert len(generic.load(data, fields=suggestion)) >= 4  # the suggestion loads the file


def test_missing_mapped_field_names_the_record_fields(tmp_path):
    data = R.write_alpaca_pairs(tmp_path)
    with pytest.raises(
        EgtError, match=r"field 'output_3': missing; this record's fields: instruction, input, output_1"
    ):
        generic.load(data, fields="responses=output_1+output_3,label=preference:1/2")


@pytest.mark.parametrize(
    "spec, msg",
    [
        ("chosen=good", "map chosen and rejected together"),
        ("chosen=a,rejected=b,label=c", "not both"),
        ("responses=a+b+c", "one list field or two fields"),
        ("question=q:1/2", "only label takes an encoding"),
        ("label=p:1", "expected FIRST/SECOND"),
        ("label=p:1/1", "names a value twice"),
        ("label=p,preferred=q", "label .* or preferred"),
        ("images=a+b", "only question and responses join"),
        ("label=p,label=q", "mapped twice"),
    ],
)
def test_bad_mappings(spec, msg):
    with pytest.raises(EgtError, match=msg):
        field_mapping.parse_fields(spec)


# --------------------------------------------------------------------------------------------
# names as people type them


@pytest.mark.parametrize(
    "typed, name",
    [
        ("vl-rewardbench", "vl_rewardbench"),
        ("VL-RewardBench", "vl_rewardbench"),
        ("VLRewardBench", "vl_rewardbench"),
        ("Multimodal-RewardBench", "multimodal_rewardbench"),
        ("multimodal rewardbench", "multimodal_rewardbench"),
        ("MM-RLHF-RewardBench", "mm_rlhf_rewardbench"),
        ("mm_rlhf-rewardbench", "mm_rlhf_rewardbench"),
        ("RewardBench", "rewardbench"),
        ("Generic", "generic"),
        ("PAIRS", "pairs"),
    ],
)
def test_benchmark_names_as_typed(typed, name):
    assert get_benchmark(typed).name == name


def test_generic_fields_accepted_with_any_spelling():
    assert get_benchmark("GENERIC", "responses=a+b,label=c:1/2").name == "generic"
    with pytest.raises(EgtError, match="--fields applies to --benchmark generic only"):
        get_benchmark("VL-RewardBench", "question=q")


def test_help_lists_each_benchmark_once(capsys):
    import re

    assert run("--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    text = text[text.index("--benchmark BENCHMARK One of") : text.index("--fields FIELDS ")]  # the option's help
    for name in ("vl_rewardbench", "multimodal_rewardbench", "mm_rlhf_rewardbench", "rewardbench", "generic"):
        assert len(re.findall(rf"(?<![\w-]){name}(?![\w-])", text)) == 1, name
    assert "VL-RewardBench" in text and "EGT's own pairs format" in text


def test_release_counts_are_the_full_releases():
    assert dict(vl.RELEASE_COUNTS) == {"general": 183, "hallucination": 749, "reasoning": 318}
    assert sum(dict(vl.RELEASE_COUNTS).values()) == 1250
    assert sum(dict(mm_rlhf_rewardbench.RELEASE_COUNTS).values()) == 170
    assert Counter(vl.SUBSET_CATEGORIES.values()) == {"general": 2, "hallucination": 3, "reasoning": 1}


def test_a_benchmark_layout_through_generic_with_the_suggested_mapping(tmp_path, capsys):
    """Multimodal RewardBench's layout read as someone's own file: the error suggests
    id=ID,question=Text,responses=Output1+Output2,label=Better, and Better's values infer Output1/Output2."""
    data = R.write_mmrb_release(tmp_path)
    assert (
        run("--benchmark", "generic", "--data", str(data), "--model", "first", "--output_dir", str(tmp_path / "o")) == 2
    )
    assert "try --fields 'id=ID,question=Text,responses=Output1+Output2,label=Better'" in capsys.readouterr().err
    pairs = generic.load(data, fields="id=ID,question=Text,responses=Output1+Output2,label=Better")
    assert [p.preferred for p in pairs] == [1 if r["Better"] == "Output2" else 0 for r in R.MMRB_ROWS]
    assert pairs.notes == [
        "label 'Better' read as Output1/Output2 (inferred from its values output1, output2; "
        "write label=Better:Output1/Output2 to say so)"
    ]
