"""Settings of RL for the judge (``egt train rl``): our fields, parsed beside TRL's ``GRPOConfig``.

Everything TRL's GRPO offers stays a ``GRPOConfig`` field and passes straight through: ``loss_type``
(``dapo`` = DAPO's token-level loss, ``grpo``, ``dr_grpo``, ``bnpo``, ``cispo``, ``sapo``, …),
``epsilon`` / ``epsilon_high`` (DAPO clip-higher: 0.2 / 0.28), ``beta`` (KL; 0 in DAPO and Dr. GRPO),
``num_generations`` (G), ``mask_truncated_completions`` (DAPO), ``scale_rewards``, ``use_vllm``, …
The fields below are what EGT adds: the data and curriculum, the reward weights, the advantage
estimator, two DAPO pieces TRL lacks (dynamic sampling with refill, the soft overlong penalty) and
R1-Reward's StableReinforce (the log-ratio pre-clip, the advantage filter).
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
        default=4, metadata={"help": "S, the number of quantile stages of the staged curriculum (and of shuffle)."}
    )
    curriculum_repeat: Literal["hold", "restart", "shuffle"] = field(
        default="hold",
        metadata={
            "help": (
                "Passes after the first, when the steps cover the subset more than once: hold (the whole subset, "
                "freshly shuffled each pass: after one pass the easiest items are the ones the judge gets right, "
                "groups with no GRPO signal, so replaying them first starves the learner; curriculum pacing "
                "functions also stay on the full set, Hacohen & Weinshall 2019) | restart (the curriculum again "
                "from its start) | shuffle (the curriculum again, shuffled inside its S stages)."
            )
        },
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
                "DAPO dynamic sampling (Yu et al. 2025, arXiv 2503.14476 §3.2): drop the groups whose rollouts all "
                "score alike and generate for the next prompts, in the sampler's order, until the batch is full."
            )
        },
    )
    dynamic_sampling_metric: Literal["reward", "accuracy"] = field(
        default="reward",
        metadata={
            "help": (
                "What must be equal (to 1e-6) over a group's rollouts to drop it: reward (the total R, i.e. exactly "
                "the groups with advantage 0) | accuracy (DAPO's 'acc': also drops a group whose verdicts agree "
                "but whose format scores differ)."
            )
        },
    )
    max_generation_batches: int = field(
        default=10,
        metadata={
            "help": (
                "Dynamic sampling: most generation batches per training batch (DAPO's recipe: 10); then train on the "
                "groups kept, the empty slots masked out of the loss."
            )
        },
    )

    # ---- StableReinforce (R1-Reward, Zhang et al. 2025, arXiv 2505.02835 §3.1) -----------------------
    ratio_preclip: float = field(
        default=0.0,
        metadata={
            "help": (
                "Pre-CLIP: clamp the log-ratio to [-log R, log R] before the exponential and the PPO clip "
                "(0 = off; R1-Reward uses R = 1000)."
            )
        },
    )
    advantage_filter_sigma: float = field(
        default=0.0,
        metadata={
            "help": (
                "Advantage filter: standardise the batch's advantages over its tokens and zero those beyond "
                "+-S standard deviations (0 = off; R1-Reward uses S = 3)."
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
