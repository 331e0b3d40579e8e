"""Reinforcement learning of the judge (EGT stage 2; docs/methods.md §4–5, docs/rl.md).

- :mod:`egt.rl.advantages`      the advantage estimators: pure tensor functions, ``[B, T]`` out.
- :mod:`egt.rl.estimators`      their registry: name → function, parameters, whether it needs entropies.
- :mod:`egt.rl.rewards`         the judge reward (format, accuracy, logic).
- :mod:`egt.rl.curriculum`      the entropy curriculum: a sampler over the curation manifest's order.
- :mod:`egt.rl.rollout_entropy` float32 token entropies of the rollout policy (a forward hook).
- :mod:`egt.rl.dynamic_sampling` DAPO dynamic sampling's pieces: uniform groups, the fill plan, rows regrouped.
- :mod:`egt.rl.stable_reinforce` R1-Reward's StableReinforce: log-ratio pre-clip, advantage filter.
- :mod:`egt.rl.dataset`         pairs (+ manifest) → the GRPO prompt dataset and its curriculum.
- :mod:`egt.rl.trainer`         ``JudgeGRPOTrainer``: TRL's ``GRPOTrainer`` with the above wired in.
- :mod:`egt.rl.callbacks`       trainer callbacks (a wall-clock limit).
- :mod:`egt.rl.recipe`          ``train_judge_rl``: settings → a trained judge folder.
- :mod:`egt.rl.config`          ``JudgeRLArgs``, the settings beside TRL's ``GRPOConfig``.

This package imports only lower layers (models, entropy, judge, records, curation, data), never
``egt.evaluation`` or ``egt.pipelines``.
"""
