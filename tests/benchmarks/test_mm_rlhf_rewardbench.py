"""MM-RLHF-RewardBench: repeated ids, video frame folders, Acc and Acc+ by hand, the real file."""

from __future__ import annotations

from collections import Counter

import pytest

from egt.benchmarks import mm_rlhf_rewardbench as mmr
from egt.errors import EgtError
from real_data import shared_data

from .conftest import MM_RLHF_REAL, mm_rlhf_records, prediction, write_jsonl


def test_repeated_ids_become_unique_pair_ids(mm_rlhf_jsonl):
    pairs = mmr.load(mm_rlhf_jsonl, mm_rlhf_jsonl.parent)
    assert [p.id for p in pairs][:4] == ["aaa_1#0", "aaa_1#1", "aaa_1#2", "bbb_2#0"]
    assert [p.meta["question_id"] for p in pairs][:3] == ["aaa_1"] * 3
    assert all(p.preferred == 0 for p in pairs)
    assert Counter(p.category for p in pairs) == {"mcq": 3, "long": 2, "video": 2, "safety": 1, "short": 1}


def test_video_items_use_their_frames_in_natural_order(mm_rlhf_jsonl):
    video = next(p for p in mmr.load(mm_rlhf_jsonl, mm_rlhf_jsonl.parent) if p.category == "video")
    assert video.images == ["video/ccc_3/frame_1.jpg", "video/ccc_3/frame_2.jpg", "video/ccc_3/frame_10.jpg"]
    assert video.meta["frames"] == 3 and video.meta["video"] == "video/ccc_3"


def test_an_absent_frame_folder_stays_one_missing_path(tmp_path):
    path = write_jsonl(tmp_path / "b.jsonl", mm_rlhf_records())
    video = next(p for p in mmr.load(path, tmp_path) if p.category == "video")
    assert video.images == ["video/ccc_3"] and video.meta["frames"] == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"image": None}, "image"),
        ({"image": "other/a.png"}, "image"),
        ({"chosen": None}, "chosen"),
        ({"id": None}, "id"),
    ],
)
def test_malformed_records(tmp_path, change, field):
    rows = mm_rlhf_records()
    rows[0] = {**rows[0], **change}
    with pytest.raises(EgtError) as e:
        mmr.load(write_jsonl(tmp_path / "bad.jsonl", rows), tmp_path)
    assert "line 1" in str(e.value) and f"field {field!r}" in str(e.value)


def test_frame_folder_may_not_escape_the_root(tmp_path):
    rows = [{**mm_rlhf_records()[5], "video": "video/../../outside"}]
    with pytest.raises(EgtError, match="escapes the images root"):
        mmr.load(write_jsonl(tmp_path / "x.jsonl", rows), tmp_path)


def test_acc_and_acc_plus_by_hand(mm_rlhf_jsonl):
    """aaa_1 (mcq): right, right, tie · bbb_2 (long): right, right · ccc_3 (video): right, fail ·
    ddd_4 (safety): right · eee_5 (short): wrong.

    wrong: Acc = 6/9; Acc+ = questions all right = {bbb_2, ddd_4} = 2/5.
    half:  Acc = (6 + .5 + .5)/9 = 7/9; Acc+ still 2/5 (a half point is not a correct pair).
    """
    pairs = mmr.load(mm_rlhf_jsonl, mm_rlhf_jsonl.parent)
    outcomes = ["right", "right", "tie", "right", "right", "right", "fail", "right", "wrong"]
    preds = [prediction(p, o) for p, o in zip(pairs, outcomes)]
    out = mmr.BENCHMARK.aggregate(preds, pairs)
    assert out["metrics"]["acc"] == round(6 / 9, 6) and out["metrics"]["acc_plus"] == 0.4
    cats = out["categories"]
    assert cats["mcq"] == {"n": 3, "n_questions": 1, "accuracy": round(2 / 3, 6), "acc_plus": 0.0}
    assert cats["long"]["acc_plus"] == 1.0 and cats["video"]["accuracy"] == 0.5 and cats["short"]["acc_plus"] == 0.0
    half = mmr.BENCHMARK.aggregate(preds, pairs, "half")["metrics"]
    assert half["acc"] == round(7 / 9, 6) and half["acc_plus"] == 0.4


def test_acc_plus_is_computed_per_order_then_averaged(mm_rlhf_jsonl):
    """Right in the stored order everywhere, wrong once in the swapped order (aaa_1#0):
    Acc+ stored = 1, swapped = 4/5, headline = 0.9."""
    pairs = mmr.load(mm_rlhf_jsonl, mm_rlhf_jsonl.parent)
    preds = [prediction(p, "wrong" if (p.id == "aaa_1#0" and s) else "right", s) for p in pairs for s in (False, True)]
    m = mmr.BENCHMARK.aggregate(preds, pairs)["metrics"]
    assert m["acc_plus_stored_order"] == 1.0 and m["acc_plus_swapped_order"] == 0.8 and m["acc_plus"] == 0.9


def test_the_real_file_parses_to_170_pairs_over_46_questions():
    path = shared_data(*MM_RLHF_REAL)
    pairs = mmr.load(path, path.parent)
    assert len(pairs) == 170 and len({p.id for p in pairs}) == 170
    assert len({p.meta["question_id"] for p in pairs}) == 46
    assert Counter(p.category for p in pairs) == {"mcq": 42, "long": 37, "short": 34, "safety": 32, "video": 25}
    questions = {c: len({p.meta["question_id"] for p in pairs if p.category == c}) for c in mmr.CATEGORIES}
    assert questions == {"mcq": 10, "long": 10, "short": 10, "safety": 6, "video": 10}
