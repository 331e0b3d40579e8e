"""Resumability: a run killed at any point and rerun writes exactly what an uninterrupted run does.

"Killed at any point" is simulated two ways: by raising in the middle of a run, and by cutting a
finished run's journal at every kind of byte offset (mid-line = a torn write, line boundaries =
between items) and rerunning from the cut journal.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from egt.errors import EgtError
from egt.math.compare import ReferenceComparer
from egt.math.data import MathItem
from egt.math.generate import SamplingArgs, sample_solutions
from egt.math.journal import JOURNAL_FILE, Journal, chunk_seed
from egt.math.selfcompare import run_build, write_build_outputs

OUTPUTS = ("items.jsonl", "sft.jsonl", "prompts.jsonl", "summary.json")


def items_of(problems):
    return [MathItem(p["id"], p["question"], p["answer"], p["answer"].rsplit("#### ", 1)[1]) for p in problems]


def read_outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in OUTPUTS}


# --------------------------------------------------------------------------------------------
# the journal itself


def test_journal_drops_a_torn_last_line_and_keeps_the_rest(tmp_path):
    j = Journal(tmp_path, {"a": 1})
    j.append([{"id": "x", "v": 1}, {"id": "y", "v": 2}])
    with open(tmp_path / JOURNAL_FILE, "ab") as fh:
        fh.write(b'{"id": "z", "v"')  # a write cut by a kill
    again = Journal(tmp_path, {"a": 1})
    assert set(again.records) == {"x", "y"}
    again.append([{"id": "z", "v": 3}])
    assert set(Journal(tmp_path, {"a": 1}).records) == {"x", "y", "z"}


def test_journal_refuses_other_settings_and_hand_edits(tmp_path):
    Journal(tmp_path, {"seed": 0}).append([{"id": "x"}])
    with pytest.raises(EgtError, match="other settings.*seed"):
        Journal(tmp_path, {"seed": 1})
    assert Journal(tmp_path, {"seed": 1}, overwrite=True).records == {}
    (tmp_path / JOURNAL_FILE).write_text('{"id": "x"}\nnot json\n{"id": "y"}\n')
    with pytest.raises(EgtError, match=r"journal.jsonl: line 2"):
        Journal(tmp_path, {"seed": 1})


def test_chunk_seeds_do_not_depend_on_history():
    assert chunk_seed(0, 3) == chunk_seed(0, 3) != chunk_seed(0, 4) != chunk_seed(1, 3)


# --------------------------------------------------------------------------------------------
# self-compare build with a real (tiny, untrained) model sampling


def build(tmp: Path, problems, loaded, comparer=None) -> dict[str, bytes]:
    sampling = SamplingArgs(n_samples=2, temperature=1.0, max_new_tokens=10, batch_size=2, seed=3)

    def attempts_for(c, chunk):
        return [(s, None) for s in sample_solutions(loaded, [it.question for it in chunk], sampling, chunk_seed(3, c))]

    records = run_build(
        items_of(problems),
        attempts_for,
        comparer or ReferenceComparer(),
        Journal(tmp, {"k": 2}),
        chunk_size=sampling.batch_size,
    )
    write_build_outputs(tmp, records)
    return read_outputs(tmp)


class Crash(Exception):
    pass


class CrashingComparer(ReferenceComparer):
    """Raises on its n-th call, as a kill would interrupt the run there."""

    def __init__(self, after: int):
        super().__init__()
        self.calls, self.after = 0, after

    def compare(self, requests):
        self.calls += 1
        if self.calls == self.after:
            raise Crash
        return super().compare(requests)


def test_build_raising_mid_run_then_rerun_equals_uninterrupted(tmp_path, problems, tiny_loaded):
    reference = build(tmp_path / "straight", problems[:5], tiny_loaded)
    summary = (tmp_path / "straight" / "summary.json").read_text()
    assert '"kept": ' in summary and '"kept": 0' not in summary  # the scripted comparer corrects
    with pytest.raises(Crash):
        build(tmp_path / "resumed", problems[:5], tiny_loaded, CrashingComparer(after=2))  # mid-chunk 0
    assert not (tmp_path / "resumed" / "sft.jsonl").exists()  # no partial output
    assert build(tmp_path / "resumed", problems[:5], tiny_loaded) == reference


def test_build_killed_at_any_byte_then_rerun_equals_uninterrupted(tmp_path, problems, tiny_loaded):
    straight = tmp_path / "straight"
    reference = build(straight, problems[:5], tiny_loaded)
    journal = (straight / JOURNAL_FILE).read_bytes()
    line_ends = [i + 1 for i, b in enumerate(journal) if b == ord("\n")]
    cuts = sorted({0, line_ends[0], line_ends[0] + 7, line_ends[2], len(journal) - 3})
    for cut in cuts:
        run = tmp_path / f"cut{cut}"
        run.mkdir()
        shutil.copy(straight / "run.json", run / "run.json")
        (run / JOURNAL_FILE).write_bytes(journal[:cut])
        assert build(run, problems[:5], tiny_loaded) == reference, f"cut at byte {cut}"


def test_eval_killed_at_any_byte_then_rerun_equals_uninterrupted(tmp_path, problems, tiny_loaded):
    from egt.math.evaluate import evaluate_model

    sampling = SamplingArgs(n_samples=3, temperature=1.0, max_new_tokens=8, batch_size=2, seed=1)
    items = items_of(problems[:5])
    straight = evaluate_model(tiny_loaded, items, sampling, Journal(tmp_path / "a", {"s": 1}))
    journal = (tmp_path / "a" / JOURNAL_FILE).read_bytes()
    cut = journal.index(b"\n", journal.index(b"\n") + 1) + 5  # inside the third record
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / JOURNAL_FILE).write_bytes(journal[:cut])
    shutil.copy(tmp_path / "a" / "run.json", tmp_path / "b" / "run.json")
    assert evaluate_model(tiny_loaded, items, sampling, Journal(tmp_path / "b", {"s": 1})) == straight
