"""Reinforcement learning of the judge: advantage estimators and loss aggregation.

The maths lives in :mod:`egt.rl.advantages` (pure tensor functions, a registry by name); the
trainer only wires them in. See ``docs/methods.md`` §5.
"""
