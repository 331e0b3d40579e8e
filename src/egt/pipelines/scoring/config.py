"""``egt score``'s settings: how it samples and summarises rollouts, and where the entropies come from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from egt.data.presentation import check_order
from egt.errors import EgtError

__all__ = ["ENTROPY_DESCRIPTIONS", "ENTROPY_SOURCES", "ScoringConfig"]

ENTROPY_SOURCES = ("generation", "teacher_forced")
ENTROPY_DESCRIPTIONS = {
    "generation": "softmax(logits / temperature), in-generation, nats",
    "teacher_forced": (
        "softmax(logits / temperature), teacher-forced forward over prompt + completion, float32 head, nats"
    ),
}


@dataclass
class ScoringConfig:
    """How ``egt score`` samples and summarises rollouts (EGT arXiv 2602.01884; docs/methods.md §2)."""

    rollouts: int = field(default=4, metadata={"help": "K rollouts per item (docs/methods.md §2: K = 4, our choice)."})
    temperature: float = field(
        default=1.0,
        metadata={"help": "Sampling temperature τ; the entropies are of softmax(logits/τ) (docs/methods.md §2: 1.0)."},
    )
    seed: int = field(
        default=0, metadata={"help": "Seed; each item's rollouts are seeded by (seed, item id, rollout)."}
    )
    max_new_tokens: int = field(
        default=0, metadata={"help": "Generation budget; 0 = the checkpoint's saved default (or 256)."}
    )
    prompt_style: str = field(default="", metadata={"help": "r1_reward | compact; empty = the checkpoint's own."})
    order: Literal["stored", "random", "both"] = field(
        default="stored",
        metadata={
            "help": (
                "Presentation order of the two responses: stored | random (a seeded coin per item and rollout) | "
                "both (odd rollouts swapped: each order K/2 times). "
                "Verdicts are always written as stored indices."
            )
        },
    )
    batch_size: int = field(default=8, metadata={"help": "Items per generate call (× rollouts rows)."})
    keep_texts: bool = field(default=True, metadata={"help": "Keep every rollout's text (the review page shows them)."})
    lam: float = field(
        default=0.5,
        metadata={"help": "λ of the mixed score λ·rank(H_ans) + (1−λ)·rank(H_sent) (docs/methods.md §2: 0.5)."},
    )
    peak_k: int = field(
        default=3,
        metadata={
            "help": (
                "k of the peak entropy: the mean of the k highest token entropies in the reasoning. A reasoning "
                "judge's doubt sits in a few forking tokens, which the sentence mean dilutes."
            )
        },
    )

    entropy_source: str = field(
        default="generation",
        metadata={
            "help": (
                "generation (recorded inside generate, the default) | teacher_forced (one batched forward over "
                "prompt + sampled completion after generating: egt.entropy.teacher_forced). Recorded in the scores "
                "header."
            )
        },
    )
    keep_token_ids: bool = field(
        default=False,
        metadata={
            "help": (
                "Also keep every rollout's token ids (``token_ids``), so 'egt score --rescore' re-measures exactly the "
                "sampled tokens instead of re-tokenising the texts."
            )
        },
    )
    backend: str = field(
        default="transformers",
        metadata={
            "help": (
                "transformers (model.generate, the default) | vllm (vLLM's offline engine on a GPU: pip install "
                "'egt[vllm]'; entropies then always come from the teacher-forced pass). egt.entropy.backends."
            )
        },
    )

    def check(self) -> None:
        if self.backend not in ("transformers", "vllm"):
            raise EgtError(f"--backend: unknown backend {self.backend!r} (one of transformers, vllm)")
        if self.entropy_source not in ENTROPY_SOURCES:
            raise EgtError(
                f"--entropy_source: unknown source {self.entropy_source!r} (one of {', '.join(ENTROPY_SOURCES)})"
            )
        if self.rollouts < 1:
            raise EgtError(f"--rollouts: must be ≥ 1, got {self.rollouts}")
        if not self.temperature > 0:
            raise EgtError(f"--temperature: must be > 0 (entropy-guided scoring samples), got {self.temperature}")
        check_order(self.order)
        if self.batch_size < 1:
            raise EgtError(f"--batch_size: must be ≥ 1, got {self.batch_size}")
        if not 0.0 <= self.lam <= 1.0:
            raise EgtError(f"--lam: must be in [0, 1], got {self.lam}")
        if self.max_new_tokens < 0:
            raise EgtError(f"--max_new_tokens: must be ≥ 0, got {self.max_new_tokens}")
        if self.peak_k < 1:
            raise EgtError(f"--peak_k: must be ≥ 1, got {self.peak_k}")
