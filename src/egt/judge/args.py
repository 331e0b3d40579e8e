"""Which judge to run (``--model`` and how it generates), and the registry of checkpoint judge kinds.

``egt eval`` parses :class:`JudgeArgs`; turning them into a judge is
:func:`egt.pipelines.judges.make_judge`, which registers this project's checkpoint kinds first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from egt.judge.base import Judge
from egt.models.args import LoadingArgs

__all__ = ["JUDGE_BACKENDS", "JUDGE_KINDS", "JudgeArgs"]


@dataclass
class JudgeArgs(LoadingArgs):
    """Which judge to run and how it generates."""

    model: str = field(
        default="random",
        metadata={"help": "The judge: random | first | longer (baselines) | a model folder or hub id."},
    )
    batch_size: int = field(default=32, metadata={"help": "Requests per forward / generate call."})
    max_new_tokens: int = field(
        default=0, metadata={"help": "Generation budget; 0 = the checkpoint's default (or 256)."}
    )
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy decoding."})
    prompt_style: str = field(default="", metadata={"help": "r1_reward | compact; empty = the checkpoint's own."})
    seed: int = field(default=0, metadata={"help": "Seed for the random judge, random order and sampling."})
    backend: str = field(
        default="transformers",
        metadata={
            "help": (
                "Generation backend of a generative judge: transformers | vllm (vLLM's offline engine, one request per "
                "judgement seeded by (seed, id, order); GPU only, pip install 'egt[vllm]')."
            )
        },
    )


JUDGE_BACKENDS = ("transformers", "vllm")  # egt.entropy.backends.BACKENDS, without importing torch here
# (marker file in the checkpoint folder, factory) — other packages append their judge kinds here
# (egt.rm.judges: reward model and ensemble; egt.pipelines.judges imports it before choosing).
JUDGE_KINDS: list[tuple[str, Callable[[JudgeArgs], Judge]]] = []
