"""Scalar multimodal reward models (BaseReward, docs/methods.md §6).

- :mod:`egt.rm.model`: :class:`RewardModel` — backbone → last non-pad token → head, wired together:
- :mod:`egt.rm.head`: the ``linear`` / ``mlp`` head, last-token pooling, the Bradley–Terry and LM losses;
- :mod:`egt.rm.encoding`: positions (M-RoPE for the Qwen2-VL family) and image features, once per image;
- :mod:`egt.rm.prefix`: prefix sharing — rows that begin alike run their common prefix once;
- :mod:`egt.rm.checkpoint`: the checkpoint folder (safetensors, ``egt_reward.json``, peft adapters).
- :mod:`egt.rm.backbones`: the ``tiny`` / ``tiny-text`` backbones built from the data's texts.
- :mod:`egt.rm.collate`: chat rendering and the multimodal preference collator.
- :mod:`egt.rm.sources`: sources in several formats mixed by weight / count under a seed.
- :mod:`egt.rm.trainer`: a narrow ``transformers.Trainer`` subclass for the Bradley–Terry loss.
- :mod:`egt.rm.scoring`: batched scoring and the reward model as a judge.
- :mod:`egt.rm.ensemble`: mean of z-normalised member rewards, text-only routing.
- :mod:`egt.rm.rl`: a TRL reward function and the hybrid rule for GRPO.
- :mod:`egt.rm.judges`: registers the ``egt_reward.json`` / ``egt_ensemble.json`` judge kinds.

"""

import egt.rm.judges  # noqa: F401  (registers the judge kinds)
