"""Checks against the real GSM8K files in ../shared/data (skipped when absent)."""

from __future__ import annotations

from egt.math.data import read_items, read_solutions
from egt.math.evaluate import score_solution_sets, summarize
from egt.math.pairs import math_pairs


def test_verifier_agrees_with_is_correct_flags(example_solutions):
    """Target: ≥ 99% agreement with the 5,276 real is_correct flags (we measure 100%)."""
    report = summarize(score_solution_sets(read_solutions(example_solutions)))
    agreement = report["flag_agreement"]
    assert agreement["flagged"] == 5276
    assert agreement["rate"] >= 0.99, agreement["examples"]
    assert agreement["disagreements"] == 0, agreement["examples"]
    assert report["correct"] == 2001
    assert report["unanswered"] == 11  # truncated solutions without an 'A:' line


def test_every_gsm8k_reference_has_an_answer(gsm8k_test, example_solutions):
    items = read_items(gsm8k_test)
    assert len(items) == 1319
    # the example file holds the same questions in the same order, so ids line up
    sets = read_solutions(example_solutions, items)
    assert [s.item.id for s in sets] == [it.id for it in items]
    assert all(s.item.gold.replace(",", "") == it.gold.replace(",", "") for s, it in zip(sets, items))


def test_math_pairs_from_the_example_solutions(example_solutions):
    pairs, counts = math_pairs(read_solutions(example_solutions))
    assert counts["questions_with_both"] == 731
    assert counts["pairs"] == len(pairs) == 2426
    assert {p.preferred for p in pairs} == {0, 1}  # the right solution is not always first
    for p in pairs[:50]:
        right = p.responses[p.preferred]
        assert right.strip() != p.responses[p.rejected].strip()
    subset = read_solutions(example_solutions, limit=200)
    by_verifier, _ = math_pairs(subset)
    by_flags, _ = math_pairs(subset, labels="flags")
    assert [p.to_json() for p in by_flags] == [p.to_json() for p in by_verifier]  # 100% agreement
    _, counts_one = math_pairs(subset, max_per_question=1)
    assert counts_one["pairs"] == counts_one["questions_with_both"] == len({p.id.split(":")[0] for p in by_verifier})


def test_comparison_prompts_from_the_example_solutions(example_solutions, tmp_path):
    """Every wrong (or unanswered) example solution becomes one comparison prompt."""
    from egt.math.journal import Journal
    from egt.math.selfcompare import run_build, write_build_outputs

    sets = read_solutions(example_solutions)
    by_id = {s.item.id: s for s in sets}
    records = run_build(
        [s.item for s in sets],
        lambda c, chunk: [(by_id[it.id].solutions, by_id[it.id].sources) for it in chunk],
        None,
        Journal(tmp_path, {}),
        chunk_size=256,
    )
    summary = write_build_outputs(tmp_path, records)
    assert summary["wrong"] + summary["unanswered"] == 3275 == summary["pending"]
    assert (tmp_path / "prompts.jsonl").read_text().count("\n") == 3275
    assert summary["sft_verified_records"] <= 2001 and summary["sft_comparison_records"] == 0
