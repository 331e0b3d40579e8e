"""Data-parallel judging for ``egt eval`` under ``accelerate launch``: batches dealt to ranks, merged in order.

Launched with N processes (``accelerate launch --config_file configs/accelerate/cpu_2proc.yaml -m
egt.cli eval ...`` or any multi-GPU config), :func:`egt.benchmarks.run.evaluate_benchmark` judges
through :func:`run_judge_sharded` instead of :func:`egt.evaluation.runner.run_judge`:

* The requests (every item in every order asked for, in the single-process order) are cut into the
  same fixed batches of ``batch_size`` one process uses; batch b goes to rank ``b mod N``. Each batch
  is judged exactly as one process judges it — same rows, same padding — and a voting judge is
  re-seeded with the batch's own number (``VotingJudge`` seeds call n with ``seed + n``), so every
  prediction equals the single-process one.
* Every rank's predictions are gathered to every rank (``torch.distributed.all_gather_object``;
  gloo on CPU) and put back in batch order, so the merged list — and the metrics aggregated from
  it — is the single-process list. Only rank 0 writes ``report.json``, ``report.md`` and
  ``predictions.jsonl`` (``egt.commands.evaluate``).

Not covered: a generative judge sampling at ``--temperature`` > 0 without ``--votes`` draws from
torch's global stream, which is not reproducible item by item in one process either. Unlike
``egt score`` there is no resumable store: a killed run is rerun whole. Measured on CPU only (2
processes, tiny judge: ``tests/evaluation/test_sharded_eval.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["run_judge_sharded"]


def run_judge_sharded(judge, requests: Sequence, batch_size: int, dist) -> list:
    """Predictions for ``requests``, judged in batches dealt round-robin over ``dist``'s ranks."""
    import torch.distributed as td

    from egt.evaluation.runner import run_judge
    from egt.judge.voting import VotingJudge

    starts = list(range(0, len(requests), batch_size))
    mine = []
    for number in range(dist.rank, len(starts), dist.world):
        if isinstance(judge, VotingJudge):
            judge._calls = number  # the seed one process gives its batch `number`
        batch = requests[starts[number] : starts[number] + batch_size]
        mine.append((number, run_judge(judge, batch, batch_size=batch_size, desc=f"judging (rank {dist.rank})")))
    gathered: list = [None] * dist.world
    td.all_gather_object(gathered, mine)
    by_number = dict(pair for part in gathered for pair in part)
    if sorted(by_number) != list(range(len(starts))):  # pragma: no cover - a launcher bug
        raise RuntimeError(f"data-parallel eval: got batches {sorted(by_number)} of {len(starts)}")
    return [p for number in range(len(starts)) for p in by_number[number]]
