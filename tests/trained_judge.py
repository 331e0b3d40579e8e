"""The tiny judge after a few SFT steps: the fixture ``trained_judge_dir`` (tests/conftest.py).

A few SFT steps on the lab's traces are enough for the tiny judge to close most rollouts with a
parsable verdict (≈ 60% at τ = 1 within ~30 tokens), right on some items and wrong on others, so
verdicts, answer / sentence / peak entropies and the judge reward are numbers that differ between
rollouts. ~7 s on one core.
"""

from __future__ import annotations

from pathlib import Path

STEPS = 30
MAX_NEW_TOKENS = 48  # covers its rollouts (≈ 25–45 tokens)


def train_judge(sft_data: Path, out: Path) -> Path:
    """SFT a fresh tiny judge on ``sft_data`` (both presentation orders) for :data:`STEPS` steps, on one thread."""
    import torch
    from trl import SFTConfig

    from egt.models.training import cpu_sft_defaults
    from egt.train.sft import JudgeSFTArgs, train_judge_sft

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = SFTConfig(
            **{
                **cpu_sft_defaults(),
                "output_dir": str(out),
                "max_steps": STEPS,
                "per_device_train_batch_size": 16,
                "learning_rate": 3e-3,
                "lr_scheduler_type": "constant",
                "warmup_steps": 0,
                "logging_steps": STEPS,
                "disable_tqdm": True,
                "report_to": [],
            }
        )
        train_judge_sft(JudgeSFTArgs(data=str(sft_data), order="both"), config)
    finally:
        torch.set_num_threads(threads)
    return out


def judge_rewards(texts, rows, logic_sentences: int = 2):
    """``(terms, rewards [B], correct [B])`` of completions as the RL recipe should score them, from
    their texts and dataset rows (``preferred``, ``swapped``): R1-Reward's R = 0.5·format +
    accuracy·(1 + 0.5·logic) with the rule logic checker; O+ is accuracy 1."""
    import torch

    from egt.rl.rewards import RuleLogicChecker, judge_reward_terms

    checker = RuleLogicChecker(logic_sentences)
    terms = [judge_reward_terms(t, r["preferred"], r["swapped"], checker) for t, r in zip(texts, rows, strict=True)]
    rewards = torch.tensor([0.5 * t.format + t.accuracy * (1 + 0.5 * t.logic) for t in terms])
    return terms, rewards, torch.tensor([t.accuracy == 1.0 for t in terms])
