"""bench/harness.py's pure parts: flags and quick sizes, timing aggregation, targets, JSON results.

No model and no timing of real work: the clocks are only read, never asserted on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import harness  # noqa: E402


def script_parser():
    parser = harness.make_parser("A bench script.\n\nMore words.", repeats=7)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--long", action="store_true")
    return parser


def test_common_flags_have_one_spelling_and_default():
    parser = script_parser()
    args = parser.parse_args([])
    assert (args.threads, args.repeats, args.quick, args.output_dir, args.seed) == (2, 7, False, "runs/bench", 0)
    args = parser.parse_args(["--threads", "1", "--output_dir", "out", "--seed", "3", "--pairs", "8"])
    assert (args.threads, args.output_dir, args.seed, args.pairs) == (1, "out", 3, 8)
    assert parser.description == "A bench script."


def test_quick_sets_only_flags_left_at_their_default():
    parser = script_parser()
    quick = {"pairs": 16, "repeats": 2}
    args = parser.parse_args(["--quick", "--repeats", "5"])
    harness.apply_quick(parser, args, quick)
    assert (args.pairs, args.repeats) == (16, 5)  # an explicit --repeats wins
    args = parser.parse_args([])
    harness.apply_quick(parser, args, quick)
    assert (args.pairs, args.repeats) == (64, 7)  # without --quick nothing changes


def test_quick_naming_an_unknown_flag_is_an_error():
    parser = script_parser()
    with pytest.raises(KeyError, match="items"):
        harness.apply_quick(parser, parser.parse_args(["--quick"]), {"items": 4})


def test_samples_best_and_median():
    s = harness.Samples()
    for wall, cpu in ((3.0, 1.0), (1.0, 2.0), (2.0, 4.0), (10.0, 3.0)):
        s.add(wall, cpu)
    assert (s.best(), s.median(), s.best("cpu"), s.median("cpu")) == (1.0, 2.5, 1.0, 2.5)
    assert s.summary() == {"n": 4, "wall_best": 1.0, "wall_median": 2.5, "cpu_best": 1.0, "cpu_median": 2.5}


def test_paired_ratio_is_the_median_of_per_round_ratios():
    # rounds: 2/1 = 2, 6/2 = 3, 4/4 = 1 → median 2; the ratio of the means would be 4 / (7/3) ≈ 1.71
    assert harness.paired_ratio([2.0, 6.0, 4.0], [1.0, 2.0, 4.0]) == 2.0
    with pytest.raises(ValueError):
        harness.paired_ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        harness.paired_ratio([], [])


def test_interleave_alternates_the_order_and_skips_warmup_rounds():
    calls = []
    sides = {"a": lambda: calls.append("a") or "A", "b": lambda: calls.append("b") or "B"}
    samples, outputs = harness.interleave(sides, repeats=3, warmup=1)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert [len(s.wall) for s in samples.values()] == [3, 3]
    assert outputs == {"a": "A", "b": "B"}
    calls.clear()
    harness.interleave(sides, repeats=2, warmup=0, alternate=False)
    assert calls == ["a", "b", "a", "b"]


def test_measure_returns_the_output_and_both_clocks():
    synced = []
    out, wall, cpu = harness.measure(lambda: 42, sync=lambda: synced.append(1))
    assert out == 42 and wall >= 0 and cpu >= 0 and synced == [1, 1]


@pytest.mark.parametrize(
    ("value", "target", "op", "passed"),
    [(1.1, 1.15, "<=", True), (1.2, 1.15, "<=", False), (4.0, 4.0, ">=", True), (0.0, 0.0, ">", False)],
)
def test_check(value, target, op, passed):
    assert harness.Check("ratio", value, target, op).passed is passed


def test_check_rejects_an_unknown_comparison():
    with pytest.raises(ValueError):
        harness.Check("ratio", 1.0, 1.0, "==")


def test_finish_writes_the_results_json_and_returns_0(tmp_path, capsys):
    args = script_parser().parse_args(["--output_dir", str(tmp_path / "out"), "--pairs", "8"])
    checks = [harness.Check("speed-up", 5.0, 4.0, ">="), harness.Check("ratio", 2.0, 1.5)]
    assert harness.finish("bench/rm_batching.py", args, {"speedup": 5.0, "where": tmp_path}, checks) == 0
    document = json.loads((tmp_path / "out" / "rm_batching.json").read_text())
    assert document["script"] == "rm_batching"
    assert document["args"]["pairs"] == 8 and document["args"]["threads"] == 2
    assert {"torch", "torch_threads", "cpu_count", "python"} <= set(document["machine"])
    assert document["results"] == {"speedup": 5.0, "where": str(tmp_path)}
    assert [(c["name"], c["passed"]) for c in document["checks"]] == [("speed-up", True), ("ratio", False)]
    printed = capsys.readouterr().out
    assert "PASS" in printed and "FAIL" in printed and "rm_batching.json" in printed
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_print_table_shows_none_as_a_dash(capsys):
    harness.print_table("title", ["a", "b"], [[1, None]], caption="under")
    printed = capsys.readouterr().out
    assert "title" in printed and "-" in printed and "under" in printed
