"""RL training data (egt.rl.dataset): evaluation's presentation coin, the manifest's kept items, the curriculum keys."""

from __future__ import annotations

import json

import pytest

from egt.errors import EgtError
from egt.records import read_pairs
from egt.rl.curriculum import curriculum_order
from egt.rl.dataset import presentation_rows, rl_training_data


def test_training_rows_are_shown_as_evaluation_shows_them(small_lab):
    """RL and evaluation flip the same seeded coin per id, so a judge trains on the presentations it is tested on."""
    from egt.evaluation.runner import presentations

    pairs = read_pairs(small_lab / "rl_pool.jsonl")
    for order in ("stored", "random", "both"):
        for seed in (0, 3):
            assert presentation_rows(pairs, order, seed) == presentations(pairs, order, seed)
    swapped = [s for _, s in presentation_rows(pairs, "random", 0)]
    assert 0 < sum(swapped) < len(swapped)
    with pytest.raises(EgtError, match="--order: unknown presentation order 'shuffled'"):
        presentation_rows(pairs, "shuffled", 0)


def test_the_manifest_keeps_its_kept_items_in_data_order_and_keys_the_curriculum(small_lab, tmp_path):
    data = str(small_lab / "rl_pool.jsonl")
    ids = [p.id for p in read_pairs(data)[:6]]
    scores = [(0.5, True), (0.1, True), (0.9, False), (None, True), (0.3, True), (0.2, False)]
    lines = [
        {"id": ids[k], "scores": {"answer": s}, "kept": kept, "by": "answer"} for k, (s, kept) in enumerate(scores)
    ]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines[::-1]))
    got = rl_training_data(data, seed=0, style="compact", is_vision=False, manifest=str(tmp_path), order="both")
    kept = [ids[0], ids[1], ids[3], ids[4]]
    assert [p.id for p in got.pairs] == kept  # the data's order, kept items only
    assert got.dataset["id"] == [i for i in kept for _ in range(2)] and got.dataset["swapped"] == [False, True] * 4
    assert got.curriculum.mode == "sorted" and list(got.curriculum.ids) == got.dataset["id"]
    visited = [got.dataset["id"][i] for i in curriculum_order(got.curriculum.scores, "sorted")]
    assert visited == [ids[1]] * 2 + [ids[4]] * 2 + [ids[0]] * 2 + [ids[3]] * 2  # low → high, missing last


def test_a_curriculum_needs_a_manifest_and_off_takes_every_pair(small_lab):
    data = str(small_lab / "rl_pool.jsonl")
    with pytest.raises(EgtError, match="curriculum 'staged' orders by the curation manifest.*pass --manifest DIR"):
        rl_training_data(data, seed=0, style="compact", is_vision=False, curriculum="staged")
    got = rl_training_data(data, seed=0, style="compact", is_vision=False, curriculum="off", limit=3, order="stored")
    assert len(got.pairs) == 3 and got.dataset["swapped"] == [False] * 3 and got.curriculum.mode == "off"
