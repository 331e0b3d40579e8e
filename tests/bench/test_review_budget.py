"""bench/review_budget.py: the simulated reviewer's corrections go through egt relabel and fix the flips."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import review_budget  # noqa: E402
from egt.records import read_pairs  # noqa: E402


def test_reviewing_every_flipped_item_leaves_no_flip_and_keeping_changes_nothing(tmp_path, small_lab):
    data = small_lab / "rl_pool.jsonl"
    pairs = read_pairs(data)
    truth = {p.id: bool(p.meta["flipped"]) for p in pairs}
    labels = {p.id: p.preferred for p in pairs}
    flipped = [i for i, f in truth.items() if f]
    before = len(flipped) / len(pairs)
    assert 0 < before < 1
    fixes = review_budget.corrections(flipped, truth, labels)
    assert {f["action"] for f in fixes} == {"flip"} and all(f["label"] == labels[f["id"]] for f in fixes)
    assert review_budget.flip_rate_after(data, fixes, tmp_path / "all") == 0.0
    clean = [i for i, f in truth.items() if not f][:3]
    assert (
        review_budget.flip_rate_after(data, review_budget.corrections(clean, truth, labels), tmp_path / "c") == before
    )
