"""Helpers of the resume tests: kill a run right after a checkpoint, count the checkpoints a rerun
writes, compare weights, and run on one thread so two runs do the same arithmetic."""

from __future__ import annotations

import contextlib


class Killed(Exception):
    """Stands for a kill right after a checkpoint was written."""


@contextlib.contextmanager
def _patched_save(trainer_cls, after):
    original = trainer_cls._save_checkpoint

    def save(self, model, trial):
        original(self, model, trial)
        after(self.state.global_step)

    trainer_cls._save_checkpoint = save
    try:
        yield
    finally:
        trainer_cls._save_checkpoint = original


def killed_after_checkpoint(trainer_cls, step: int):
    """While active, ``trainer_cls`` raises :class:`Killed` once checkpoint-``step`` is on disk."""

    def after(saved: int) -> None:
        if saved == step:
            raise Killed

    return _patched_save(trainer_cls, after)


@contextlib.contextmanager
def saved_steps(trainer_cls):
    """Yields the list of the steps ``trainer_cls`` writes checkpoints at while active."""
    steps: list[int] = []
    with _patched_save(trainer_cls, steps.append):
        yield steps


@contextlib.contextmanager
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def max_weight_difference(a: dict, b: dict) -> float:
    """Largest absolute difference between two state dicts with the same keys."""
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)
