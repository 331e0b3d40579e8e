"""Settings of RL for the judge (``egt train rl``): our fields, parsed beside TRL's ``GRPOConfig``.

Everything TRL's GRPO offers stays a ``GRPOConfig`` field and passes straight through: ``loss_type``
(``dapo`` = DAPO's token-level loss, ``grpo``, ``dr_grpo``, ``bnpo``, ``cispo``, ``sapo``, …),
``epsilon`` / ``epsilon_high`` (DAPO clip-higher: 0.2 / 0.28), ``beta`` (KL; 0 in DAPO and Dr. GRPO),
``num_generations`` (G), ``mask_truncated_completions`` (DAPO), ``scale_rewards``, ``use_vllm``, …
The fields below are what EGT adds: the data and curriculum, the reward weights, the advantage
estimator, and two DAPO pieces TRL lacks (dynamic sampling, the soft overlong penalty).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from egt.models.args import ImageSizeArgs
from egt.rl.rewards import FORMAT_WEIGHT, LOGIC_WEIGHT


@dataclass
class JudgeRLArgs(ImageSizeArgs):
    """EGT stage-2 settings; TRL's ``GRPOConfig`` fields are accepted beside these."""

    # ---- model and data ------------------------------------------------------------------
    model: str = field(
        default="runs/sft/judge", metadata={"help": "The SFT'd judge folder (also the reference model when beta > 0)."}
    )
    data: str = field(
        default="runs/lab/rl_pool.jsonl", metadata={"help": "Pairs to train on (JSONL, parquet or a datasets folder)."}
    )
    images_dir: str = field(default="", metadata={"help": "Images root; default: the dataset's folder."})
    limit: int = field(default=0, metadata={"help": "Use only the first N pairs of the data (0 = all)."})
    order: Literal["stored", "random", "both"] = field(
        default="random",
        metadata={
            "help": (
                "Order the two responses are shown in: stored | random (seeded coin per item) | both (each item twice)."
            )
        },
    )
    prompt_style: str = field(
        default="", metadata={"help": "r1_reward | compact; empty = the style saved with the judge."}
    )
    dtype: str = field(
        default="float32",
        metadata={
            "help": (
                "Dtype the weights load in: float32 (CPU) | bfloat16 (GPU recipes) | auto. Trainable weights are "
                "trained as float32 masters under --bf16 autocast unless DeepSpeed / FSDP keeps the masters."
            )
        },
    )

    # ---- curation manifest and curriculum (EGT §3, docs/methods.md §3) ----------------------------
    manifest: str = field(
        default="",
        metadata={
            "help": "Curation manifest (DIR or DIR/manifest.jsonl); only kept items are trained on. Empty = all pairs."
        },
    )
    curriculum: str = field(
        default="sorted",
        metadata={
            "help": (
                "sorted (low → high entropy, EGT) | staged (S quantile stages, shuffled inside) | reverse (high → low, "
                "the anti-curriculum) | off (TRL's shuffle). sorted/staged/reverse need a manifest."
            )
        },
    )
    curriculum_by: str = field(
        default="",
        metadata={
            "help": (
                "Manifest score to order by: answer | sentence | mixed | vote | peak (items with format failures last, "
                "as egt curate orders them); empty = the manifest's own 'by' (else answer, EGT's best signal)."
            )
        },
    )
    curriculum_stages: int = field(
        default=4, metadata={"help": "S, the number of quantile stages of the staged curriculum."}
    )
    save_curriculum_order: bool = field(
        default=True, metadata={"help": "Write each rank's order and the ids it consumed to <checkpoints>/curriculum/."}
    )

    # ---- reward (R1-Reward §3.2, docs/methods.md §4) --------------------------------------------
    format_weight: float = field(
        default=FORMAT_WEIGHT,
        metadata={"help": "w_f in R = w_f·format + accuracy·(1 + w_l·logic); R1-Reward uses 0.5."},
    )
    logic_weight: float = field(default=LOGIC_WEIGHT, metadata={"help": "w_l in R; R1-Reward uses 0.5."})
    logic_checker: str = field(
        default="rule",
        metadata={
            "help": (
                "rule (last sentences of the reasoning) | none | openai (an OpenAI-compatible endpoint, as R1-Reward)."
            )
        },
    )
    logic_sentences: int = field(
        default=2, metadata={"help": "Rule checker: how many final sentences may carry the conclusion."}
    )
    logic_endpoint: str = field(
        default="", metadata={"help": "openai checker: API root, e.g. http://localhost:8000/v1."}
    )
    logic_model: str = field(default="", metadata={"help": "openai checker: model name."})
    overlong_buffer: int = field(
        default=0,
        metadata={
            "help": (
                "DAPO soft overlong penalty: length of the buffer before max_completion_length (0 = off; DAPO uses "
                "4096 of 20480)."
            )
        },
    )

    # ---- advantages (docs/methods.md §5) ----------------------------------------------------------
    advantage_estimator: str = field(
        default="gtpo",
        metadata={
            "help": (
                "grpo | dr_grpo | gtpo (token-level entropy shaping) | grpo_s (sequence-level) | trl (TRL's own "
                "advantages, for scale_rewards=batch etc.)."
            )
        },
    )
    gtpo_alpha1: float = field(
        default=1.0, metadata={"help": "GTPO α1, weight of the base reward (Tan et al. 2025 use 1)."}
    )
    gtpo_alpha2: float = field(
        default=0.1, metadata={"help": "GTPO α2, weight of the entropy term (Tan et al. 2025 use 0.1)."}
    )
    gtpo_normalize: str = field(
        default="joint",
        metadata={
            "help": "GTPO normalisation of shaped token rewards: joint (our choice) | separate (O+ and O− apart)."
        },
    )
    grpo_s_beta1: float = field(
        default=1.0, metadata={"help": "GRPO-S β1, weight of the base reward (Tan et al. 2025 use 1)."}
    )
    grpo_s_beta2: float = field(
        default=0.1, metadata={"help": "GRPO-S β2, weight of the entropy term (Tan et al. 2025 use 0.1)."}
    )
    correct_reward: str = field(
        default="judge_accuracy",
        metadata={"help": "Reward function whose value > 0.5 marks a response correct (O+) for GTPO / GRPO-S."},
    )
    dynamic_sampling: bool = field(
        default=False,
        metadata={
            "help": (
                "DAPO dynamic sampling without refill: groups whose rewards are all equal are masked out of the loss "
                "(TRL has no over-sampling)."
            )
        },
    )

    time_limit_seconds: float = field(
        default=0.0,
        metadata={"help": "Stop (and save) after this much training time, e.g. a job's wall-clock limit (0 = none)."},
    )

    # ---- output ------------------------------------------------------------------------------
    max_new_tokens: int = field(
        default=0,
        metadata={"help": "Generation budget saved with the judge for evaluation (0 = max_completion_length)."},
    )
    keep_checkpoints: bool = field(
        default=True,
        metadata={"help": "Keep <output_dir>.checkpoints after a successful run (needed to resume later)."},
    )


def cpu_rl_defaults() -> dict:
    """GRPOConfig defaults that run the tiny judge on a laptop CPU (a recipe or the command line overrides any).

    DAPO settings by default: token-level loss (``loss_type=dapo``), clip-higher ``epsilon_high=0.28``,
    no KL (``beta=0``). Learning rate suits the tiny from-scratch judge, not a 7B model (1e-6).
    """
    return dict(
        output_dir="runs/rl/judge",
        use_cpu=True,
        bf16=False,
        report_to="none",
        activation_checkpointing=False,
        learning_rate=2e-4,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        per_device_train_batch_size=16,
        gradient_accumulation_steps=1,
        num_generations=8,
        max_completion_length=64,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        beta=0.0,
        loss_type="dapo",
        epsilon=0.2,
        epsilon_high=0.28,
        num_iterations=1,
        max_steps=40,
        logging_steps=1,
        save_strategy="no",
        dataloader_num_workers=0,
        seed=0,
        disable_dropout=True,
        disable_tqdm=True,
    )
