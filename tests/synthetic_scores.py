"""Synthetic scores over the conftest's small lab pool: values chosen so the answers are known.

Shared by the analysis and curation tests (their conftests import the fixtures from here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egt.records import read_pairs


def synthetic_records(pairs) -> list[dict]:
    """Item i of N: answer entropy i/N, accuracy 1 − i/N (ρ = −1), flipped iff i ≥ N/2 (AUROC 1).

    Sentence entropy (N − i)/N runs the other way (AUROC 0); peak entropy 2i/N the same way as the
    answer; vote entropy is constant (undefined ρ); ``ambiguity`` i/N, so the lab's ceiling AUROC
    for flipped is 1; hard iff i is odd; no format failures.
    """
    n = len(pairs)
    records = []
    for i, p in enumerate(pairs):
        records.append(
            {
                "id": p.id,
                "index": i,
                "preferred": p.preferred,
                "answer_entropy": i / n,
                "sentence_entropy": (n - i) / n,
                "vote_entropy": 0.0,
                "peak_entropy": 2 * i / n,
                "accuracy": 1 - i / n,
                "format_rate": 1.0,
                "format_failures": 0,
                "verdicts": [p.preferred, 1 - p.preferred],
                "swapped": [False, False],
                "texts": [f"<think>item {i} & <b>not bold</b></think><answer>1</answer>", "x"],
                "flipped": i >= n / 2,
                "hard": i % 2 == 1,
                "difficulty": i / n,
                "ambiguity": i / n,
            }
        )
    return records


def write_scores(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def pool(small_lab):
    return read_pairs(small_lab / "rl_pool.jsonl")


@pytest.fixture
def scores_file(tmp_path, pool) -> Path:
    return write_scores(tmp_path / "scores.jsonl", synthetic_records(pool))
