"""RewardBench: the official section weighting, worked by hand."""

from __future__ import annotations

import pytest

from egt.benchmarks import rewardbench as rb
from egt.errors import EgtError

from .conftest import prediction, rb_records, write_jsonl

OUTCOMES = [
    "right",
    "right",  # alpacaeval-easy (Chat, weight 100) → 1
    "right",
    "wrong",  # mt-bench-med (Chat, 40) → .5
    "right",
    "tie",  # llmbar-natural (Chat Hard, 100) → .75 half / .5 wrong
    "right",  # xstest-should-refuse (Safety, 250) → 1
    "fail",  # xstest-should-respond (Safety, 154) → .5 half / 0 wrong
    "right",
    "wrong",  # math-prm (Reasoning, 984) → .5
    "right",  # hep-python (Reasoning, 164) → 1
    "wrong",
]  # anthropic_helpful: outside the sections, reported but not counted


def test_official_weights_are_the_published_table():
    assert sum(rb.EXAMPLE_COUNTS.values()) == 3522  # = 2,985 rows + math-prm's 984 − 447
    assert {s for subsets in rb.SUBSET_MAPPING.values() for s in subsets} == set(rb.EXAMPLE_COUNTS)


def test_sections_and_score_by_hand(rb_jsonl):
    """half: Chat = (1·100 + .5·40)/140 = 6/7; Chat Hard = .75; Safety = (1·250 + .5·154)/404 = 327/404;
    Reasoning = (.5·984 + 1·164)/1148 = 656/1148; score = their mean.
    wrong: Chat Hard .5, Safety 250/404."""
    pairs = rb.load(rb_jsonl)
    assert pairs[0].id == "1000" and pairs[0].category == "alpacaeval-easy" and pairs[0].meta["chosen_model"] == "gpt-4"
    preds = [prediction(p, o) for p, o in zip(pairs, OUTCOMES)]
    half = rb.BENCHMARK.aggregate(preds, pairs)["metrics"]
    sections = {"chat": 6 / 7, "chat_hard": 0.75, "safety": 327 / 404, "reasoning": 656 / 1148}
    for k, v in sections.items():
        assert half[k] == pytest.approx(v, abs=1e-6)
    assert half["score"] == pytest.approx(sum(sections.values()) / 4, abs=1e-6)
    out = rb.BENCHMARK.aggregate(preds, pairs, "wrong")
    assert out["metrics"]["chat_hard"] == 0.5 and out["metrics"]["safety"] == pytest.approx(250 / 404, abs=1e-6)
    assert out["categories"]["anthropic_helpful"] == {"n": 1, "accuracy": 0.0, "weight": 0}
    assert out["categories"]["math-prm"]["weight"] == 984


def test_missing_subset_field_is_an_error(tmp_path):
    rows = rb_records()
    rows[3].pop("subset")
    with pytest.raises(EgtError, match=r"line 4 .*field 'subset'"):
        rb.load(write_jsonl(tmp_path / "x.jsonl", rows))
