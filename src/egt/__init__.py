"""EGT: entropy-guided training of multimodal reward models.

Generative reasoning judges (EGT, R1-Reward), scalar Bradley–Terry reward models (BaseReward),
entropy-weighted RL (GTPO / GRPO-S), self-compare math fine-tuning (SkyMath) and the reward
benchmarks they are measured on. See ``docs/methods.md`` for the algorithms.
"""

__version__ = "0.1.0"
