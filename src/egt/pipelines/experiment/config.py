"""Settings of ``egt experiment``: one typed dataclass, loaded from a preset YAML plus overrides.

A preset fixes every choice before any RL run — RL hyperparameters are the same for every arm and
never tuned per arm; which regime runs T2–T5 and which signal is "the best" are rules written here,
not picked after looking at RL results (EGT arXiv 2602.01884 RQ1–RQ4; GTPO arXiv 2508.04349).
Budgets are in steps and epochs, never seconds, so results do not depend on the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from egt.errors import EgtError
from egt.lab.noise import BASE_FLIP, REGION_COLOURS, REGION_FLIP, REGION_MIN_AMBIGUITY

SIGNALS = ("answer", "sentence", "mixed", "vote", "peak")
TEACHERS = ("scripted", "annotator")
REGIMES = ("converged", "weak")
TABLES = ("T0", "T1", "T2", "T3", "T4", "T5", "N")
CURRICULA = ("sorted", "staged", "off", "reverse")
ESTIMATORS = ("grpo", "dr_grpo", "gtpo", "grpo_s")
BACKENDS = ("transformers", "vllm")
RL_STRENGTHS = ("gentle", "strong")


def _list(*values):
    return field(default_factory=lambda: list(values))


@dataclass
class ExperimentConfig:
    """The EGT experiment (issue 15): lab → SFT → score → select → RL → evaluate, per seed and arm."""

    # ---- where, how many, how parallel ----------------------------------------------------------
    output_dir: str = field(
        default="runs/experiment", metadata={"help": "Output folder; a rerun skips every finished cell."}
    )
    preset: str = field(default="custom", metadata={"help": "Name of the preset (recorded in results.json)."})
    seeds: list[int] = _list(0, 1, 2)
    workers: int = field(default=1, metadata={"help": "Cells run in this many processes at once."})
    threads: int = field(
        default=0, metadata={"help": "Torch threads per worker; 0 = CPU cores // workers (at least 1)."}
    )
    tables: list[str] = field(
        default_factory=lambda: [t for t in TABLES if t != "N"],
        metadata={"help": "Tables to run: T0–T5 (issue 15) and N (noise models × judges × RL strengths, issue 26)."},
    )

    # ---- the lab (one per seed; the teachers differ only in the SFT traces) ----------------------
    n_sft: int = field(default=5000, metadata={"help": "Lab items with teacher traces."})
    n_rl_pool: int = field(default=2000, metadata={"help": "Noisy pool to score, select from and train RL on."})
    n_test: int = field(default=500, metadata={"help": "Clean test items (greedy, both orders)."})
    teachers: list[str] = _list(*TEACHERS)
    rl_teacher: str = field(
        default="annotator",
        metadata={
            "help": (
                "Teacher of the SFT judge that RL starts from: annotator (perceives near-boundary hues with the "
                "annotators' "
                "confusion model, so the judge's doubt lands on ambiguous items) | scripted."
            )
        },
    )

    # ---- your own data and model instead of the lab (all four data paths, or none) --------------
    sft_data: str = field(
        default="", metadata={"help": "Pairs with teacher traces (meta.traces) for SFT; empty = the lab's."}
    )
    pool: str = field(
        default="", metadata={"help": "The noisy preference pool to score and select from; empty = the lab's."}
    )
    test: str = field(default="", metadata={"help": "Clean-label test pairs; empty = the lab's."})
    images_dir: str = field(
        default="", metadata={"help": "Images root of the three files; empty = each file's folder."}
    )
    model: str = field(
        default="tiny", metadata={"help": "SFT starting point: tiny (built from the data) or a checkpoint / hub id."}
    )
    prompt_style: str = field(
        default="compact", metadata={"help": "Judge prompt: compact (tiny judge) | r1_reward (EGT / R1-Reward)."}
    )
    device: str = field(default="cpu", metadata={"help": "Device of scoring and evaluation: cpu | cuda | auto."})
    dtype: str = field(
        default="float32", metadata={"help": "Model dtype: float32 | bfloat16 (entropies stay float32 either way)."}
    )
    gpu: bool = field(
        default=False,
        metadata={"help": "Train on the GPU in bf16 (use_cpu false, bf16 true) instead of the CPU defaults."},
    )

    # ---- SFT: one run per seed and teacher; its epoch checkpoints are T0's rows and the regimes ----
    sft_epochs: float = field(default=10.0, metadata={"help": "Epochs of the one SFT run per seed and teacher."})
    sft_checkpoint_epochs: list[float] = _list(2.0, 4.0, 10.0)
    sft_learning_rate: float = field(default=1e-3, metadata={"help": "SFT learning rate (tiny judge from scratch)."})
    sft_batch_size: int = field(default=32, metadata={"help": "SFT batch size."})
    regimes: list[str] = _list(*REGIMES)
    converged_epoch: float = field(
        default=10.0, metadata={"help": "SFT checkpoint of the converged regime (sharp doubt, little headroom)."}
    )
    weak_epoch: float = field(
        default=2.0, metadata={"help": "SFT checkpoint of the weak regime (headroom, diffuse doubt)."}
    )
    main_regime: str = field(
        default="weak", metadata={"help": "Regime of T2–T5 (fixed in the preset before any RL run)."}
    )

    # ---- entropy scoring (docs/methods.md §2) ------------------------------------------------------------
    rollouts: int = field(default=4, metadata={"help": "K rollouts per pool item (EGT: 4)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the scoring rollouts."})
    peak_k: int = field(
        default=3, metadata={"help": "k of the peak signal: mean of the k highest reasoning-token entropies."}
    )
    score_batch_size: int = field(default=32, metadata={"help": "Pool items per generate call while scoring."})
    backend: str = field(
        default="transformers",
        metadata={
            "help": (
                "Rollout backend of the scoring steps: transformers | vllm (vllm samples rollouts with vLLM and "
                "measures "
                "entropies by the teacher-forced float32 pass; GPU only, pip install 'egt[vllm]')."
            )
        },
    )

    # ---- selection (EGT §3.3) ----------------------------------------------------------------------
    fraction: float = field(default=0.25, metadata={"help": "Subset size of T1, T3, T4, T5 as a fraction of the pool."})
    signals: list[str] = _list(*SIGNALS)
    main_signal: str = field(
        default="auto",
        metadata={
            "help": (
                "Signal of T2–T5 and of RQ4's highest-entropy arm: a name, or auto = the signal whose entropy "
                "correlates most "
                "negatively (Spearman) with rollout accuracy against the pool's own labels on that seed — observable "
                "without "
                "the lab's hidden truth, so a user could apply the same rule."
            )
        },
    )
    subset_sizes: list[float] = _list(0.1, 0.25, 0.5, 1.0)

    # ---- RL: identical for every arm ---------------------------------------------------------------
    rl_steps: int = field(default=120, metadata={"help": "Optimiser steps of every RL arm (equal budgets)."})
    rl_eval_every: int = field(default=40, metadata={"help": "Evaluate on the clean test every N steps (curves)."})
    rl_learning_rate: float = field(
        default=1e-5, metadata={"help": "RL learning rate (bench/rl_lab.py: 1e-5 improves the tiny judge)."}
    )
    rl_prompts_per_step: int = field(default=8, metadata={"help": "Prompts per RL step."})
    rl_generations: int = field(default=8, metadata={"help": "G, rollouts per prompt."})
    rl_max_completion_length: int = field(
        default=48, metadata={"help": "Generation budget of RL rollouts (lab traces are ~35 tokens)."}
    )
    rl_estimator: str = field(default="grpo", metadata={"help": "Estimator of T1–T3 and T5 (T4 compares them)."})
    rl_curriculum: str = field(
        default="off", metadata={"help": "Order of T1/T2 arms: off = shuffled, so T1 measures selection alone."}
    )
    curricula: list[str] = _list(*CURRICULA)
    estimators: list[str] = _list(*ESTIMATORS)
    online_stages: int = field(
        default=3, metadata={"help": "T5: stages of the online curriculum (re-score the rest between stages)."}
    )

    # ---- issue 26: noise models × judges × RL strengths (table N; docs/experiment.md) -----------
    blocks: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Table N's cells, one string per block: 'NOISE/REGIME/STRENGTH: ARM ARM …' with NOISE random | "
            "systematic, REGIME a regime, STRENGTH gentle (rl_learning_rate × rl_steps) | strong "
            "(strong_learning_rate × strong_steps); ARMs: sft full full_ds random oracle egt accuracy pass_rate "
            "keep75 keep75_ds entropyNN randomNN (NN = percent kept). Blocks run in the order given."
        },
    )
    strong_learning_rate: float = field(default=1e-4, metadata={"help": "RL learning rate of the strong setting."})
    strong_steps: int = field(
        default=250, metadata={"help": "Steps of the strong setting (250 × 8 prompts = one pass over 2,000 items)."}
    )
    strong_eval_every: int = field(default=125, metadata={"help": "Clean-test curve points of the strong setting."})
    egt_stages: int = field(
        default=4,
        metadata={
            "help": "The egt arm's one low→high pass: its subset in this many entropy stages, each trained for "
            "its share of the budget before the next (no restart)."
        },
    )
    pass_band: str = field(
        default="0.25,0.75",
        metadata={"help": "pass_rate arm: keep items whose rollout pass rate is in [LOW, HIGH] (egt curate)."},
    )
    max_generation_batches: int = field(
        default=3, metadata={"help": "Dynamic-sampling arms: generation batches per step at most (DAPO refill)."}
    )
    # the systematic model's settings, passed to egt lab make (egt.lab.LabConfig: the same defaults)
    region_colours: str = field(
        default=",".join(REGION_COLOURS),
        metadata={"help": "Systematic noise: the biased region's colours (egt lab make)."},
    )
    region_min_ambiguity: float = field(
        default=REGION_MIN_AMBIGUITY, metadata={"help": "Systematic noise: the region's ambiguity."}
    )
    region_flip: float = field(default=REGION_FLIP, metadata={"help": "Systematic noise: flip rate inside the region."})
    base_flip: float = field(default=BASE_FLIP, metadata={"help": "Systematic noise: flip rate outside the region."})
    control_drop: float = field(
        default=0.05,
        metadata={
            "help": "Positive control: full-pool RL on systematic labels must lower region accuracy by this on "
            "every seed."
        },
    )

    # ---- evaluation and statistics ---------------------------------------------------------------
    eval_batch_size: int = field(default=100, metadata={"help": "Judgements per generate call in evaluation."})
    bootstrap_resamples: int = field(
        default=2000,
        metadata={"help": "Resamples of the bootstrap CIs (T tables: items × seeds; table N: seeds, then items)."},
    )

    def check(self) -> None:
        def one_of(name: str, value: str, allowed) -> None:
            if value not in allowed:
                raise EgtError(f"field {name!r}: {value!r} is not one of {' | '.join(allowed)}")

        def all_of(name: str, values, allowed) -> None:
            for v in values:
                one_of(name, v, allowed)

        all_of("tables", self.tables, TABLES)
        all_of("teachers", self.teachers, TEACHERS)
        all_of("regimes", self.regimes, REGIMES)
        all_of("signals", self.signals, SIGNALS)
        all_of("curricula", self.curricula, CURRICULA)
        all_of("estimators", self.estimators, ESTIMATORS)
        one_of("rl_teacher", self.rl_teacher, TEACHERS)
        one_of("main_regime", self.main_regime, self.regimes)
        one_of("main_signal", self.main_signal, ("auto", *self.signals))
        one_of("rl_estimator", self.rl_estimator, ESTIMATORS)
        one_of("rl_curriculum", self.rl_curriculum, CURRICULA)
        one_of("backend", self.backend, BACKENDS)
        if self.rl_teacher not in self.teachers:
            raise EgtError(f"field 'rl_teacher': {self.rl_teacher!r} must be one of teachers {self.teachers}")
        if not self.seeds:
            raise EgtError("field 'seeds': give at least one seed")
        for name in ("converged_epoch", "weak_epoch"):
            if getattr(self, name) not in self.sft_checkpoint_epochs:
                raise EgtError(
                    f"field {name!r}: {getattr(self, name)} is not in sft_checkpoint_epochs "
                    f"{self.sft_checkpoint_epochs}"
                )
        if max(self.sft_checkpoint_epochs) > self.sft_epochs:
            raise EgtError(
                f"field 'sft_checkpoint_epochs': {max(self.sft_checkpoint_epochs)} > sft_epochs {self.sft_epochs}"
            )
        if not 0 < self.fraction <= 1 or any(not 0 < s <= 1 for s in self.subset_sizes):
            raise EgtError("fields 'fraction' and 'subset_sizes': each must be in (0, 1]")
        if self.rl_steps < 1 or self.rl_eval_every < 1:
            raise EgtError("fields 'rl_steps' and 'rl_eval_every' must be ≥ 1")
        if "T5" in self.tables and (self.online_stages < 1 or self.rl_steps % self.online_stages):
            raise EgtError(f"field 'online_stages': must divide rl_steps {self.rl_steps}, got {self.online_stages}")
        user_data = [self.sft_data, self.pool, self.test]
        if any(user_data) and not all(user_data):
            raise EgtError("fields 'sft_data', 'pool', 'test': give all three (your own data) or none (the lab)")
        if "N" in self.tables:
            from egt.pipelines.experiment.grid import parse_blocks

            if not self.blocks:
                raise EgtError("field 'blocks': table N needs at least one block")
            for block in parse_blocks(self.blocks):
                one_of("blocks", block.regime, self.regimes)
            if not self.uses_lab:
                raise EgtError("table N needs the lab (its noise models and biased region)")
        if self.workers < 1:
            raise EgtError(f"field 'workers': must be ≥ 1, got {self.workers}")

    @property
    def uses_lab(self) -> bool:
        return not self.pool

    def strength(self, name: str) -> tuple[float, int, int]:
        """``(learning rate, steps, eval every)`` of an RL strength (gentle: the T tables' own)."""
        if name == "strong":
            return self.strong_learning_rate, self.strong_steps, self.strong_eval_every
        return self.rl_learning_rate, self.rl_steps, self.rl_eval_every

    def worker_threads(self) -> int:
        import os

        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)
