"""Data-parallel ``egt score`` (egt.pipelines.scoring.sharded): 2 CPU processes (gloo) against 1, and resume.

The merged file of an ``accelerate launch`` run with 2 processes is the single-process file byte for
byte (each fixed batch is computed exactly as one process computes it). A rank that dies mid-run
leaves its part file; a rerun — here with another number of processes — scores only the items no
part holds and merges. The judge is the one trained for a few SFT steps, so the files compared hold
verdicts and entropies, not nulls (``assert_informative``).
"""

from __future__ import annotations

import pytest

from egt.entropy.score_store import partial_path, read_partial, read_scores
from egt.evaluation.distributed import Distributed
from egt.models.args import ModelArgs
from egt.pipelines.scoring import run, sharded
from egt.pipelines.scoring.config import ScoringConfig
from egt.pipelines.scoring.run import score_pool
from launch import launch_egt
from trained_judge import MAX_NEW_TOKENS

from .conftest import assert_informative, assert_same_rollouts_close_entropies

N_ITEMS, BATCH = 8, 2


# one worker runs the module: its scored reference file and loaded judge are made once
pytestmark = pytest.mark.xdist_group("sharded_scoring")


def cfg(**overrides) -> ScoringConfig:
    base = dict(rollouts=2, max_new_tokens=MAX_NEW_TOKENS, batch_size=BATCH, prompt_style="compact", seed=0)
    return ScoringConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_lab, trained_judge_dir, trained):
    out = tmp_path_factory.mktemp("ref") / "scores.jsonl"
    score_pool(
        ModelArgs(model=str(trained_judge_dir), device="cpu"),
        small_lab / "rl_pool.jsonl",
        out,
        cfg(),
        limit=N_ITEMS,
        loaded=trained,
    )
    assert_informative(read_scores(out)[1])
    return out


@pytest.mark.slow
def test_two_cpu_processes_write_the_single_process_file(tmp_path, small_lab, trained_judge_dir, reference):
    out = tmp_path / "scores.jsonl"
    launch_egt(
        [
            "score",
            "--model",
            str(trained_judge_dir),
            "--device",
            "cpu",
            "--data",
            str(small_lab / "rl_pool.jsonl"),
            "--output_dir",
            str(out.parent),
            "--rollouts",
            "2",
            "--max_new_tokens",
            str(MAX_NEW_TOKENS),
            "--batch_size",
            str(BATCH),
            "--prompt_style",
            "compact",
            "--limit",
            str(N_ITEMS),
        ]
    )
    # each rank runs one thread (the reference: this process's threads), so the float sums of a
    # trained judge's entropies differ in the last digits; rollouts and verdicts must be identical
    (meta, records), (ref_meta, ref_records) = read_scores(out), read_scores(reference)
    assert_same_rollouts_close_entropies(ref_records, records, atol=1e-4)
    assert meta["header"] == ref_meta["header"]
    assert not sharded.part_paths(out) and not partial_path(out).exists()


class _Rank:
    """A stand-in for accelerate's state: rank r of world w, barriers are no-ops (one process)."""

    def __init__(self, rank: int, world: int):
        self.process_index, self.num_processes, self.device = rank, world, "cpu"

    def wait_for_everyone(self) -> None:
        pass


def test_a_dead_rank_then_a_rerun_scores_only_what_is_missing(
    tmp_path, small_lab, trained_judge_dir, trained, reference, monkeypatch
):
    out = tmp_path / "scores.jsonl"
    args = ModelArgs(model=str(trained_judge_dir), device="cpu")
    data = small_lab / "rl_pool.jsonl"

    # rank 1 of 2 scores its first batch (batch 1 of 4), then dies before its second (batch 3)
    monkeypatch.setattr(run, "distributed_state", lambda: Distributed(1, 2, _Rank(1, 2)))

    def die(batch: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_pool(args, data, out, cfg(), limit=N_ITEMS, loaded=trained, on_batch=die)
    part = sharded.part_path(out, 1)
    assert sorted(read_partial(part)[1]) == ["rl_pool-00002", "rl_pool-00003"] and not out.exists()
    with open(part, "a") as fh:  # and its last line was cut mid-write by the kill
        fh.write('{"id": "rl_pool-00006", "index": 6, "answer_ent')

    # rerun as one process, even with another --batch_size: the parts' batches are kept
    monkeypatch.setattr(run, "distributed_state", lambda: None)
    scored = []
    summary = score_pool(args, data, out, cfg(batch_size=3), limit=N_ITEMS, loaded=trained, on_batch=scored.append)
    assert summary["resumed"] == 2 and summary["scored_now"] == N_ITEMS - 2
    assert scored == [0, 2, 3]  # batch 1 is not run again
    assert out.read_bytes() == reference.read_bytes()
    assert not sharded.part_paths(out)
    again = score_pool(args, data, out, cfg(), limit=N_ITEMS, loaded=trained)
    assert again["complete_already"]
