"""Trainer callbacks of RL of the judge."""

from __future__ import annotations

import time

import torch
from transformers import TrainerCallback


class TimeLimit(TrainerCallback):
    """Stop training after ``seconds`` of wall-clock time, checked after each optimiser step; rank 0's
    clock decides for all ranks (a rank stopping alone would hang the others)."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.start is not None and time.perf_counter() - self.start >= self.seconds
        distributed = torch.distributed
        if distributed.is_available() and distributed.is_initialized():
            flag = torch.tensor([float(stop)], device="cuda" if distributed.get_backend() == "nccl" else "cpu")
            distributed.broadcast(flag, src=0)
            stop = bool(flag.item())
        if stop:
            control.should_training_stop = True
