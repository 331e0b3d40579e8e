"""This process's place in an ``accelerate launch``: rank, world size and a barrier, or None for one process.

Shared by data-parallel ``egt eval`` (:mod:`egt.evaluation.sharded`, :mod:`egt.benchmarks.run`) and
data-parallel ``egt score`` (:mod:`egt.pipelines.scoring.sharded`). Rank and world size come from
``accelerate.PartialState``, initialised only when the launcher set ``WORLD_SIZE`` > 1, so a plain
single process never touches torch.distributed (CPU ranks use gloo).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

__all__ = ["Distributed", "distributed_state"]


@dataclass
class Distributed:
    """This process's rank, the world size and a barrier (accelerate's ``PartialState``)."""

    rank: int
    world: int
    state: object

    def barrier(self) -> None:
        self.state.wait_for_everyone()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def model_args_for_rank(self, model_args):
        """Put each rank's model on its own accelerator (``auto``/``cuda`` → this rank's device)."""
        if model_args.device in ("auto", "cuda"):
            return replace(model_args, device=str(self.state.device))
        return model_args


def distributed_state() -> Distributed | None:
    """The launcher's process group, or None for a single process (no torch.distributed set-up)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    return Distributed(rank=state.process_index, world=state.num_processes, state=state)
