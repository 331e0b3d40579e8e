"""``egt experiment``: EGT's central claim, run end to end on the shapes lab (or a user's pool).

Per seed: lab → SFT (one run; its epoch checkpoints give T0 and the two regimes) → score the pool
once with every entropy signal → per arm: select → RL at the preset's fixed budget → clean-test
evaluation (every ``rl_eval_every`` steps for curves). Tables T0–T5, plots and ``results.md`` are
written from whatever cells have finished. Modules: ``config`` (the preset), ``grid`` (arms and
table rows), ``steps`` (lab, SFT, scoring), ``cells`` (one RL cell), ``runner`` (resumable,
parallel execution), ``tables`` / ``plots`` (outputs).
"""

from egt.pipelines.experiment.config import ExperimentConfig
from egt.pipelines.experiment.runner import run_experiment
from egt.pipelines.experiment.tables import write_results

__all__ = ["ExperimentConfig", "run_experiment", "write_results"]
