"""``python -m advantage_probe OUT egt-args…``: run ``egt`` with every rank's RL generation batches
written to ``OUT/rank<r>.step<s>.pt`` (for tests/rl/test_accelerate.py).

Each file holds what that rank's ``JudgeGRPOTrainer`` saw and handed to TRL's loss for one
generation batch, in generation order: the rows' ``id`` / ``preferred`` / ``swapped``, the
completion ids and mask ``[B_local, T]``, the rollout entropies the estimator read and the
advantages ``[B_local, T]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from egt.cli import main
from egt.rl.trainer import JudgeGRPOTrainer


def install(out: Path) -> None:
    generate, token_advantages = JudgeGRPOTrainer._generate_and_score_completions, JudgeGRPOTrainer._token_advantages

    def keep_entropies(self, mask, entropies, mode):
        self._probe_entropies = None if entropies is None else entropies.detach().float().cpu()
        return token_advantages(self, mask, entropies, mode)

    def record(self, inputs):
        output = generate(self, inputs)
        rank, step = self.accelerator.process_index, self.state.global_step
        torch.save(
            {
                "rows": [{k: row[k] for k in ("id", "preferred", "swapped")} for row in inputs],
                "completion_ids": output["completion_ids"].cpu(),
                "completion_mask": output["completion_mask"].cpu(),
                "entropies": self._probe_entropies,
                "advantages": output["advantages"].detach().cpu(),
            },
            out / f"rank{rank}.step{step}.pt",
        )
        return output

    JudgeGRPOTrainer._token_advantages = keep_entropies
    JudgeGRPOTrainer._generate_and_score_completions = record


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    install(out)
    sys.exit(main(sys.argv[2:]))
