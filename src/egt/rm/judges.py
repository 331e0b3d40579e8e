"""Judge kinds of this package for :data:`egt.judge.args.JUDGE_KINDS`.

A folder with ``egt_reward.json`` is a scalar reward model, one with ``egt_ensemble.json`` an
ensemble. Importing this module registers both (once); the factories import torch lazily.
"""

from __future__ import annotations

from egt.judge.args import JUDGE_KINDS, JudgeArgs
from egt.judge.base import Judge

REWARD_MARKER = "egt_reward.json"  # = egt.rm.model.REWARD_META_FILE
ENSEMBLE_MARKER = "egt_ensemble.json"  # = egt.rm.ensemble.ENSEMBLE_META_FILE


def make_reward_model_judge(args: JudgeArgs) -> Judge:
    from egt.rm.scoring import RewardModelJudge

    return RewardModelJudge.from_pretrained(
        args.model, batch_size=args.batch_size, dtype=args.dtype, device=args.device
    )


def make_ensemble_judge(args: JudgeArgs) -> Judge:
    from egt.rm.ensemble import RewardEnsemble

    return RewardEnsemble.load(args.model, batch_size=args.batch_size, dtype=args.dtype, device=args.device)


def register() -> None:
    """Add the reward-model and ensemble judge kinds to ``JUDGE_KINDS`` (idempotent)."""
    known = {marker for marker, _ in JUDGE_KINDS}
    for marker, factory in ((REWARD_MARKER, make_reward_model_judge), (ENSEMBLE_MARKER, make_ensemble_judge)):
        if marker not in known:
            JUDGE_KINDS.append((marker, factory))


register()
