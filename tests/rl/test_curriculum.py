"""Curriculum over the curation manifest (docs/methods.md §3): orders, TRL's repeat semantics, the curation order."""

from __future__ import annotations

import json

import pytest
from trl.trainer.utils import RepeatSampler

from egt.curation.manifest import kept_order_keys, read_manifest
from egt.errors import EgtError
from egt.rl.curriculum import Curriculum, CurriculumSampler, PromptStream, curriculum_order, stage_bounds

SCORES = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0]  # row → entropy; sorted order is 9,1,5,3,7,2,8,4,6,0


def test_sorted_is_low_to_high_and_restart_replays_it_every_epoch():
    order = curriculum_order(SCORES, "sorted")
    assert order == [9, 1, 5, 3, 7, 2, 8, 4, 6, 0]
    assert curriculum_order(SCORES, "sorted", epoch=3, repeat="restart") == order
    assert curriculum_order([0.5, 0.1, 0.5, 0.1], "sorted") == [1, 3, 0, 2]  # ties by row


def test_reverse_is_the_sorted_order_backwards_with_missing_first():
    """The anti-curriculum (high → low) of T3: the most uncertain items, missing entropies included, come first."""
    assert curriculum_order(SCORES, "reverse") == [0, 6, 4, 8, 2, 7, 3, 5, 1, 9]
    scores, ids = [None, 0.2, 0.1, 0.2, float("nan")], ["e", "d", "c", "a", "b"]
    assert curriculum_order(scores, "reverse", ids=ids) == [0, 4, 1, 3, 2]


def test_missing_entropy_sorts_last_and_ties_break_by_id():
    """The curation contract (egt.curation.manifest): null last, ties by id."""
    scores, ids = [None, 0.2, 0.1, 0.2, float("nan")], ["e", "d", "c", "a", "b"]
    assert curriculum_order(scores, "sorted", ids=ids) == [2, 3, 1, 4, 0]


def test_staged_keeps_quantile_stages_and_shuffles_inside_them():
    assert stage_bounds(10, 4) == [(0, 2), (2, 5), (5, 8), (8, 10)]
    ranked = curriculum_order(SCORES, "sorted")
    order = curriculum_order(SCORES, "staged", stages=4, seed=1, epoch=0)
    for start, end in stage_bounds(10, 4):
        assert sorted(order[start:end]) == sorted(ranked[start:end])
    assert order == curriculum_order(SCORES, "staged", stages=4, seed=1, epoch=0)  # deterministic
    others = [
        curriculum_order(SCORES, "staged", stages=4, seed=s, epoch=e, repeat="restart")
        for s, e in ((2, 0), (1, 1), (3, 5))
    ]
    assert any(o != order for o in others)  # seed and epoch reshuffle inside the stages
    assert curriculum_order(SCORES, "staged", stages=10) == ranked  # one item per stage: fully sorted


def test_off_reproduces_trl_repeat_sampler_in_every_epoch():
    trl = RepeatSampler(list(range(10)), mini_repeat_count=2, batch_size=3, repeat_count=2, shuffle=True, seed=7)
    ours = CurriculumSampler(
        list(range(10)), Curriculum("off"), mini_repeat_count=2, batch_size=3, repeat_count=2, seed=7
    )
    for epoch in range(3):
        ours.set_epoch(epoch)
        assert list(ours) == list(trl)  # TRL's generator advances once per epoch


def test_sampler_keeps_repeat_semantics_with_the_curriculum_order():
    sampler = CurriculumSampler(
        list(range(10)), Curriculum("sorted", SCORES), mini_repeat_count=2, batch_size=3, repeat_count=2, seed=0
    )
    # batches of 3 prompts in sorted order, each prompt twice, each batch twice, the last incomplete batch dropped
    expected = []
    for chunk in ([9, 1, 5], [3, 7, 2], [8, 4, 6]):
        expected += [i for _ in range(2) for i in chunk for _ in range(2)]
    assert list(sampler) == expected and len(sampler) == len(expected)
    seen = []
    sampler = CurriculumSampler(
        list(range(10)), Curriculum("staged", SCORES, 2), 1, 5, seed=4, on_order=lambda e, o: seen.append((e, o))
    )
    sampler.set_epoch(2)
    assert list(sampler) == seen[0][1] == curriculum_order(SCORES, "staged", 2, seed=4, epoch=2) and seen[0][0] == 2
    assert seen[0][1] != curriculum_order(SCORES, "staged", 2, seed=4, epoch=2, repeat="restart")  # hold: uniform
    with pytest.raises(EgtError, match="3 scores for 10"):
        CurriculumSampler(list(range(10)), Curriculum("sorted", [1.0, 2.0, 3.0]), 1)
    with pytest.raises(EgtError, match="unknown curriculum"):
        Curriculum("random")


def test_the_trainer_visits_kept_items_in_the_curation_order(tmp_path):
    """Format failures rank after every clean item and vote ties break by sentence entropy, as in egt curate."""
    from egt.curation.manifest import curriculum_order as curation_order

    rows = [
        {
            "id": "a",
            "scores": {"vote": 0.0, "sentence": 0.3, "format_failures": 0},
            "kept": True,
            "rank": 0,
            "by": "vote",
        },
        {
            "id": "b",
            "scores": {"vote": 0.0, "sentence": 0.1, "format_failures": 0},
            "kept": True,
            "rank": 1,
            "by": "vote",
        },
        {
            "id": "c",
            "scores": {"vote": 0.0, "sentence": 0.0, "format_failures": 2},
            "kept": True,
            "rank": 2,
            "by": "vote",
        },
        {
            "id": "d",
            "scores": {"vote": 0.5, "sentence": 0.0, "format_failures": 0},
            "kept": True,
            "rank": 3,
            "by": "vote",
        },
    ]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data_ids = ["d", "c", "b", "a"]
    positions, keys = kept_order_keys(read_manifest(tmp_path), data_ids)
    visited = [data_ids[positions[i]] for i in curriculum_order(keys, "sorted")]
    assert visited == [e.id for e in curation_order(read_manifest(tmp_path))] == ["b", "a", "d", "c"]
    assert [data_ids[positions[i]] for i in curriculum_order(keys, "reverse")] == ["c", "d", "a", "b"]


def test_curriculum_repeat_decides_the_passes_after_the_first():
    """Pass 0 is the curriculum whatever ``repeat``; later passes: restart replays it, shuffle replays the
    progression shuffled inside the S stages, hold permutes the whole subset."""
    ranked = [9, 1, 5, 3, 7, 2, 8, 4, 6, 0]
    for repeat in ("hold", "restart", "shuffle"):
        assert curriculum_order(SCORES, "sorted", seed=3, epoch=0, repeat=repeat) == ranked
    assert curriculum_order(SCORES, "sorted", seed=3, epoch=1, repeat="restart") == ranked
    shuffled = curriculum_order(SCORES, "sorted", stages=2, seed=3, epoch=1, repeat="shuffle")
    assert sorted(shuffled[:5]) == sorted(ranked[:5]) and sorted(shuffled[5:]) == sorted(ranked[5:])
    assert shuffled == curriculum_order(SCORES, "staged", stages=2, seed=3, epoch=1, repeat="restart")  # staged
    assert shuffled != ranked
    held = [curriculum_order(SCORES, "sorted", seed=3, epoch=e, repeat="hold") for e in (1, 2)]
    assert sorted(held[0]) == list(range(10)) and held[0] != ranked and held[0] != held[1]
    assert sorted(held[0][:5]) != sorted(ranked[:5])  # not confined to the easy half: the whole subset
    assert curriculum_order(SCORES, "reverse", stages=2, seed=3, epoch=1, repeat="shuffle")[:5] != ranked[::-1][:5]
    assert sorted(curriculum_order(SCORES, "reverse", stages=2, seed=3, epoch=1, repeat="shuffle")[:5]) == sorted(
        ranked[::-1][:5]
    )
    with pytest.raises(EgtError, match="curriculum_repeat"):
        Curriculum("sorted", SCORES, repeat="again")


def test_prompt_stream_is_the_samplers_batches_one_after_another():
    """10 rows, 3 prompts a batch: 3 batches per pass (row 0, the highest entropy, is the dropped remainder);
    pass 1 follows ``repeat``; ``position`` is (pass, prompts of it consumed)."""
    curriculum = Curriculum("sorted", SCORES, repeat="restart")
    stream = PromptStream(curriculum, 10, 3, seed=0)
    taken = [stream.take() for _ in range(4)]
    assert taken == [[9, 1, 5], [3, 7, 2], [8, 4, 6], [9, 1, 5]]
    assert stream.cursor == 4 and stream.position() == (1, 3) and stream.position(3) == (0, 9)
    sampler = CurriculumSampler(list(range(10)), curriculum, mini_repeat_count=1, batch_size=3)
    assert [i for batch in taken[:3] for i in batch] == list(sampler)
    off = PromptStream(None, 10, 3, seed=7)  # TRL's RepeatSampler permutation per pass
    trl = RepeatSampler(list(range(10)), mini_repeat_count=1, batch_size=3, shuffle=True, seed=7)
    assert [i for _ in range(3) for i in off.take()] == list(trl)
    assert [i for _ in range(3) for i in off.take()] == list(trl)  # its generator's second permutation
    with pytest.raises(EgtError, match="no full generation batch"):
        PromptStream(curriculum, 10, 11, seed=0)
