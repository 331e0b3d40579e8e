"""``egt traces``'s options: the data, the teacher, how it is asked, where the traces go (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from egt.data.presentation import check_order
from egt.errors import EgtError
from egt.judge.prompt import INSTRUCTIONS

__all__ = ["TracesArgs"]


@dataclass
class TracesArgs:
    """What to write traces for, with which teacher, and how (docs/cli.md, egt traces)."""

    # ---- the data
    data: str = field(
        metadata={"help": "The pairs to write traces for: any file egt eval reads (.jsonl, .json, .parquet, a folder)."}
    )
    benchmark: str = field(
        default="", metadata={"help": "The data's layout as egt eval's --benchmark (empty = EGT's own pairs format)."}
    )
    fields: str = field(default="", metadata={"help": "generic layout: OURS=THEIRS field mapping, as egt eval's."})
    images_dir: str = field(default="", metadata={"help": "Images root; default: the dataset's folder."})
    limit: int = field(default=0, metadata={"help": "Only the first N pairs (0 = all)."})
    output_dir: str = field(
        default="runs/traces",
        metadata={"help": "Output folder: traces.jsonl, stats.json, dropped.jsonl, requests.jsonl, images/."},
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Start over when requests.jsonl holds answers for another teacher/settings."}
    )
    # ---- the teacher
    model: str = field(
        default="",
        metadata={
            "help": "The teacher: the model name the endpoint serves (with --base_url), or a local checkpoint / hub id."
        },
    )
    base_url: str = field(
        default="",
        metadata={
            "help": (
                "OpenAI-compatible API root (vLLM, SGLang, a hosted API), e.g. http://127.0.0.1:8000/v1; "
                "empty = --model is a local checkpoint."
            )
        },
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "Environment variable holding the API key (unset: no key sent)."}
    )
    concurrency: int = field(default=8, metadata={"help": "Requests to the endpoint at once."})
    timeout: float = field(default=120.0, metadata={"help": "Seconds per request attempt before it times out."})
    max_retries: int = field(
        default=4,
        metadata={
            "help": "Retries after a timeout / 429 / 5xx / connection error (backoff 0.5 s doubling to 8 s, or the "
            "server's Retry-After); then the request counts as failed and a rerun asks again."
        },
    )
    backend: Literal["transformers", "vllm"] = field(
        default="transformers", metadata={"help": "Local teacher: transformers | vllm (GPU, pip install 'egt[vllm]')."}
    )
    batch_size: int = field(default=8, metadata={"help": "Local teacher: requests per generate call."})
    # ---- how it is asked
    prompt_style: str = field(
        default="r1_reward",
        metadata={"help": "The judge's prompt the teacher answers: r1_reward | compact (use the one you will train)."},
    )
    order: Literal["stored", "random", "both"] = field(
        default="both",
        metadata={
            "help": "Presentation orders to write a trace for: both (default; SFT wants one per order) | stored | "
            "random (one order per pair, by the seeded coin egt train sft --order random uses)."
        },
    )
    samples: int = field(
        default=1,
        metadata={
            "help": "Ask up to N times per order and keep the first faithful trace (more pairs kept from a weaker "
            "teacher; needs --temperature > 0)."
        },
    )
    temperature: float = field(default=0.0, metadata={"help": "Teacher sampling temperature (0 = greedy)."})
    max_tokens: int = field(default=1024, metadata={"help": "Longest trace the teacher may write."})
    seed: int = field(default=0, metadata={"help": "Seed: the random order's coin and each request's sampling seed."})
    reveal_label: bool = field(
        default=False,
        metadata={
            "help": "Tell the teacher which response the label prefers (rationale-style traces; off: the trace is "
            "the teacher's own judgement). Recorded in stats.json."
        },
    )

    def check(self) -> None:
        """Every option mistake as one line, before any data is read or model loaded."""
        check_order(self.order)
        if self.prompt_style not in INSTRUCTIONS:
            raise EgtError(f"--prompt_style: unknown style {self.prompt_style!r} (one of {' | '.join(INSTRUCTIONS)})")
        if not self.model:
            raise EgtError("--model is required: the endpoint's model name (with --base_url) or a local checkpoint")
        for name in ("samples", "concurrency", "batch_size", "max_tokens"):
            if getattr(self, name) < 1:
                raise EgtError(f"--{name}: must be ≥ 1, got {getattr(self, name)}")
        if self.max_retries < 0 or self.timeout <= 0 or self.temperature < 0:
            raise EgtError("--max_retries must be ≥ 0, --timeout > 0 and --temperature ≥ 0")
        if self.samples > 1 and self.temperature == 0:
            raise EgtError(
                f"--samples {self.samples}: a greedy teacher (--temperature 0) answers the same each time; "
                "pass --temperature > 0 (e.g. 0.7)"
            )
        if self.reveal_label and not self.base_url:
            raise EgtError("--reveal_label: only an endpoint teacher (--base_url) is told the label")

    def teacher_settings(self) -> dict:
        """What determines a teacher's answers: a stored answer is reused only under the same settings."""
        kind = "openai" if self.base_url else f"local:{self.backend}"
        return {
            "teacher": kind,
            "model": self.model,
            "prompt_style": self.prompt_style,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "reveal_label": self.reveal_label,
        }
