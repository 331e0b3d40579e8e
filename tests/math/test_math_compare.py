"""Comparers: reply parsing, the scripted reference comparer, and an HTTP endpoint on 127.0.0.1
that times out before it answers (retries with backoff; failures recorded, retried on rerun)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from egt.math import verify
from egt.math.compare import (
    ComparerFailed,
    ComparisonRequest,
    OpenAIComparer,
    ReferenceComparer,
    parse_comparison,
    solution_steps,
)

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
# a fake OpenAI-compatible endpoint, loopback only


@contextmanager
def fake_endpoint(slow_first: int, delay: float, reply: str = GOOD_REPLY, status: int = 200):
    """Serve /v1/chat/completions on 127.0.0.1; the first ``slow_first`` requests sleep ``delay`` s."""
    calls = {"n": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            with lock:
                calls["n"] += 1
                n = calls["n"]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert body["messages"][0]["role"] == "user"
            if n <= slow_first:
                time.sleep(delay)
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timed out)
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", calls
    finally:
        server.shutdown()
        server.server_close()


def test_http_comparer_retries_after_a_timeout():
    sleeps = []
    with fake_endpoint(slow_first=1, delay=1.0) as (url, calls):
        comparer = OpenAIComparer(url, "fake", timeout=0.3, retries=3, backoff=0.05, sleep=sleeps.append)
        started = time.monotonic()
        reply = comparer.compare([ComparisonRequest("q", REFERENCE, WRONG)])[0]
        elapsed = time.monotonic() - started
    assert reply == GOOD_REPLY
    assert calls["n"] == 2 and sleeps == [0.05]
    assert elapsed < 5


def test_http_comparer_backs_off_exponentially_then_records_failure():
    sleeps = []
    with fake_endpoint(slow_first=100, delay=0.5) as (url, calls):
        comparer = OpenAIComparer(url, "fake", timeout=0.15, retries=3, backoff=0.01, sleep=sleeps.append)
        reply = comparer.compare_one(ComparisonRequest("q", REFERENCE, WRONG))
    assert isinstance(reply, ComparerFailed) and "timed out" in str(reply)
    assert sleeps == [0.01, 0.02, 0.04] and calls["n"] == 4


def test_http_comparer_does_not_retry_a_client_error():
    with fake_endpoint(slow_first=0, delay=0, status=400) as (url, calls):
        reply = OpenAIComparer(url, "fake", timeout=2, retries=3, backoff=0.01, sleep=lambda s: None).compare_one(
            ComparisonRequest("q", REFERENCE, WRONG)
        )
    assert isinstance(reply, ComparerFailed) and "HTTP 400" in str(reply) and calls["n"] == 1


def test_failed_comparisons_are_recorded_and_retried_on_rerun(tmp_path, problems):
    """A run whose endpoint never answers finishes with 'failed'; a rerun with the endpoint up keeps them."""
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
    with fake_endpoint(slow_first=100, delay=0.4) as (url, _):
        down = OpenAIComparer(url, "fake", timeout=0.1, retries=1, backoff=0.01, sleep=lambda s: None)
        records = run_build(items, wrong, down, Journal(tmp_path, {"k": 1}), chunk_size=2)
    summary = write_build_outputs(tmp_path, records)
    assert summary["failed"] == 3 and summary["kept"] == 0 and summary["sft_comparison_records"] == 0

    with fake_endpoint(slow_first=0, delay=0, reply=reply_for_item0) as (url, calls):
        up = OpenAIComparer(url, "fake", timeout=2, retries=1, backoff=0.01, sleep=lambda s: None)
        records = run_build(items, wrong, up, Journal(tmp_path, {"k": 1}), chunk_size=2)
    summary = write_build_outputs(tmp_path, records)
    assert calls["n"] == 3 and summary["failed"] == 0
    assert summary["kept"] == same_gold and summary["rejected"] == 3 - same_gold  # the canned reply fits item 0
