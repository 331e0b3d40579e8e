"""Comparers: reply parsing, the scripted reference comparer, and an OpenAI-compatible stand-in on
127.0.0.1 that times out, rate-limits or fails (retries; failures recorded, retried on rerun)."""

from __future__ import annotations

import time

import pytest

from egt.errors import EgtError
from egt.math import verify
from egt.math.compare import (
    ComparerFailed,
    ComparisonRequest,
    OpenAIComparer,
    ReferenceComparer,
    parse_comparison,
    solution_steps,
)
from openai_standin import OpenAIStandIn

REFERENCE = "Tom has 3 + 4 = 7 pens.\nTom has 7 * 2 = 14 pens.\nTom has 14 - 5 = 9 pens.\n#### 9"
WRONG = "Tom has 3 + 4 = 7 pens.\nTom has 7 * 2 = 15 pens.\nTom has 15 - 5 = 10 pens.\n#### 10"
GOOD_REPLY = (
    "Step 1: Tom has 3 + 4 = 7 pens. — agrees.\nStep 2: Tom has 7 * 2 = 15 pens. — wrong: 7 * 2 = 14.\n"
    "First wrong step: 2\nCorrected solution:\n" + REFERENCE
)


def test_parse_comparison():
    c = parse_comparison(GOOD_REPLY)
    assert c is not None and c.first_wrong_step == 2 and c.corrected == REFERENCE
    assert c.analysis.startswith("Step 1:")
    assert parse_comparison("Step 1 is wrong. No correction given.") is None
    assert parse_comparison("First wrong step: 1\nCorrected solution:\n   ") is None
    none_step = parse_comparison("All fine.\nFirst wrong step: none\nCorrected solution:\n#### 9")
    assert none_step.first_wrong_step is None and none_step.corrected == "#### 9"


def test_reference_comparer_names_the_first_wrong_step_and_corrects():
    reply = ReferenceComparer().compare([ComparisonRequest("q", REFERENCE, WRONG)])[0]
    c = parse_comparison(reply)
    assert c.first_wrong_step == 2
    assert verify(c.corrected, REFERENCE)
    assert solution_steps(c.corrected)[0] == solution_steps(WRONG)[0]  # the agreeing step is kept


def test_reference_comparer_matches_operands_not_only_results():
    """``7 * 2 = 14`` written as ``8 + 6 = 14`` has the right value but is not the reference's step."""
    lucky = "Tom has 3 + 4 = 7 pens.\nTom has 8 + 6 = 14 pens.\nTom has 14 - 5 = 9 pens.\n#### 9"
    assert (
        parse_comparison(ReferenceComparer().compare_one(ComparisonRequest("q", REFERENCE, lucky))).first_wrong_step
        == 2
    )
    renamed = WRONG.replace("Tom has 3", "Ann has 3")
    assert (
        parse_comparison(ReferenceComparer().compare_one(ComparisonRequest("q", REFERENCE, renamed))).first_wrong_step
        == 2
    )
    strict = ReferenceComparer(match="text").compare_one(ComparisonRequest("q", REFERENCE, renamed))
    assert parse_comparison(strict).first_wrong_step == 1


def test_reference_comparer_on_missing_steps_and_unanswered():
    short = "Tom has 3 + 4 = 7 pens.\n#### 7"
    c = parse_comparison(ReferenceComparer().compare_one(ComparisonRequest("q", REFERENCE, short)))
    assert c.first_wrong_step == 2 and verify(c.corrected, REFERENCE)
    c = parse_comparison(ReferenceComparer().compare_one(ComparisonRequest("q", REFERENCE, "gibberish")))
    assert c.first_wrong_step == 1 and verify(c.corrected, REFERENCE)


# --------------------------------------------------------------------------------------------
# the comparer against an OpenAI-compatible stand-in on 127.0.0.1 (tests/openai_standin.py)


def test_http_comparer_retries_after_a_timeout():
    with OpenAIStandIn(answer=lambda body: GOOD_REPLY, faults=["slow"], slow_seconds=1.0) as server:
        comparer = OpenAIComparer(server.url, "fake", timeout=0.3, max_retries=3)
        started = time.monotonic()
        reply = comparer.compare([ComparisonRequest("q", REFERENCE, WRONG)])[0]
        elapsed = time.monotonic() - started
    assert reply == GOOD_REPLY
    assert len(server.requests) == 2 and server.requests[0]["model"] == "fake"
    assert elapsed < 5


def test_http_comparer_retries_rate_limits_then_records_failure():
    with OpenAIStandIn(answer=lambda body: GOOD_REPLY, faults=[429, 503, 500, 500, 500]) as server:
        comparer = OpenAIComparer(server.url, "fake", timeout=2, max_retries=2)
        first = comparer.compare_one(ComparisonRequest("q", REFERENCE, WRONG))  # 429, 503, then 500: given up
        second = comparer.compare_one(ComparisonRequest("q", REFERENCE, WRONG))  # 500, 500, then answered
    assert isinstance(first, ComparerFailed) and "HTTP 500" in str(first)
    assert second == GOOD_REPLY and len(server.requests) == 6


def test_http_comparer_does_not_retry_a_client_error_and_stops_on_a_wrong_key():
    with OpenAIStandIn(status_for=lambda body: 400) as server:
        reply = OpenAIComparer(server.url, "fake", timeout=2, max_retries=3).compare_one(
            ComparisonRequest("q", REFERENCE, WRONG)
        )
    assert isinstance(reply, ComparerFailed) and "HTTP 400" in str(reply) and len(server.requests) == 1
    with OpenAIStandIn(status_for=lambda body: 401) as server:
        with pytest.raises(EgtError, match="HTTP 401.*API key"):
            OpenAIComparer(server.url, "fake", timeout=2, max_retries=3).compare(
                [ComparisonRequest("q", REFERENCE, WRONG)]
            )
    assert len(server.requests) == 1


def test_failed_comparisons_are_recorded_and_retried_on_rerun(tmp_path, problems):
    """A run whose endpoint keeps failing finishes with 'failed'; a rerun with the endpoint up keeps them."""
    from egt.math.data import MathItem
    from egt.math.journal import Journal
    from egt.math.selfcompare import run_build, write_build_outputs

    items = [MathItem(p["id"], p["question"], p["answer"], p["answer"].rsplit("#### ", 1)[1]) for p in problems[:3]]

    def wrong(chunk_index, chunk):  # the reference's steps with a wrong final answer
        return [(["\n".join(solution_steps(it.reference)) + "\n#### 0"], None) for it in chunk]

    reply_for_item0 = ReferenceComparer().compare_one(
        ComparisonRequest(items[0].question, items[0].reference, wrong(0, items[:1])[0][0][0])
    )
    same_gold = sum(it.gold == items[0].gold for it in items)
    with OpenAIStandIn(status_for=lambda body: 502) as server:
        down = OpenAIComparer(server.url, "fake", timeout=1, max_retries=0)
        records = run_build(items, wrong, down, Journal(tmp_path, {"k": 1}), chunk_size=2)
    summary = write_build_outputs(tmp_path, records)
    assert summary["failed"] == 3 and summary["kept"] == 0 and summary["sft_comparison_records"] == 0

    with OpenAIStandIn(answer=lambda body: reply_for_item0) as server:
        up = OpenAIComparer(server.url, "fake", timeout=2, max_retries=1, concurrency=2)
        records = run_build(items, wrong, up, Journal(tmp_path, {"k": 1}), chunk_size=2)
    summary = write_build_outputs(tmp_path, records)
    assert len(server.requests) == 3 and summary["failed"] == 0
    assert summary["kept"] == same_gold and summary["rejected"] == 3 - same_gold  # the canned reply fits item 0
