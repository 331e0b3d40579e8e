"""Scalar multimodal reward models (BaseReward, docs/methods.md §6).

- :mod:`egt.rm.model`: :class:`RewardModel` — backbone → last non-pad token → ``linear`` / ``mlp`` head;
  ``save_pretrained`` / ``from_pretrained`` (safetensors, head type in ``egt_reward.json``).
- :mod:`egt.rm.collate`: chat rendering and the multimodal preference collator.
- :mod:`egt.rm.sources`: sources in several formats mixed by weight / count under a seed.
- :mod:`egt.rm.trainer`: the Bradley–Terry loss and a narrow ``transformers.Trainer`` subclass.
- :mod:`egt.rm.scoring`: batched scoring and the reward model as a judge.
- :mod:`egt.rm.ensemble`: mean of z-normalised member rewards, text-only routing.
- :mod:`egt.rm.rl`: a TRL reward function and the hybrid rule for GRPO.
- :mod:`egt.rm.judges`: registers the ``egt_reward.json`` / ``egt_ensemble.json`` judge kinds.

"""

import egt.rm.judges  # noqa: F401  (registers the judge kinds)
