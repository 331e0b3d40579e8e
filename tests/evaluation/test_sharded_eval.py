"""Data-parallel ``egt eval`` (egt.evaluation.sharded): 2 CPU processes (gloo) against 1.

The tiny untrained judge with ``--votes 2`` (sampled, seeded per batch) judges the lab's test
items in both orders, in batches of 2 requests dealt to 2 ranks; rank 0's ``predictions.jsonl``
equals the single-process file byte for byte and the report's metrics are identical.
"""

from __future__ import annotations

import json

import pytest

from egt.cli import main
from launch import launch_egt

N_ITEMS = 5  # × 2 orders = 10 requests = 5 batches of 2: rank 0 gets 3, rank 1 gets 2


def eval_args(judge, data, out) -> list[str]:
    return [
        "eval",
        "--model",
        str(judge),
        "--data",
        str(data),
        "--output_dir",
        str(out),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--limit",
        str(N_ITEMS),
        "--batch_size",
        "2",
        "--max_new_tokens",
        "8",
        "--prompt_style",
        "compact",
        "--votes",
        "2",
        "--seed",
        "3",
    ]


@pytest.mark.slow
def test_two_cpu_processes_write_the_single_process_predictions(tmp_path, small_lab, tiny_judge_dir):
    data = small_lab / "test.jsonl"
    assert main(eval_args(tiny_judge_dir, data, tmp_path / "one")) == 0

    launch_egt(eval_args(tiny_judge_dir, data, tmp_path / "two"))

    one, two = tmp_path / "one", tmp_path / "two"
    assert (two / "predictions.jsonl").read_bytes() == (one / "predictions.jsonl").read_bytes()
    assert len((one / "predictions.jsonl").read_text().splitlines()) == 2 * N_ITEMS
    r1, r2 = (json.loads((d / "report.json").read_text()) for d in (one, two))
    r1.pop("wall_seconds"), r2.pop("wall_seconds")
    assert r1 == r2
    assert (two / "report.md").read_text() == (one / "report.md").read_text()
