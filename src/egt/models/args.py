"""Command-line settings for loading a model: plain dataclasses, no torch or transformers import.

Commands parse these before anything heavy is imported, so their ``--help`` stays fast;
:mod:`egt.models.load` and :mod:`egt.entropy.backends` use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImageSizeArgs:
    """The image size bounds of a Qwen-VL processor, one setting for every command (and vLLM)."""

    min_pixels: int | None = field(
        default=None,
        metadata={"help": "Smallest image area in pixels a Qwen-VL processor resizes to (default: the checkpoint's)."},
    )
    max_pixels: int | None = field(
        default=None,
        metadata={
            "help": (
                "Largest image area in pixels (28x28 per image token); default: the checkpoint's, capped at "
                "1003520 = 1280 tokens. Larger images are downscaled, keeping their aspect ratio; saved with a "
                "trained judge, so scoring, RL and vLLM see the same image tokens."
            )
        },
    )


@dataclass
class LoadingArgs(ImageSizeArgs):
    """How to load a model (shared by every command that loads one)."""

    dtype: str = field(default="auto", metadata={"help": "auto | float32 | bfloat16 | float16."})
    device: str = field(default="auto", metadata={"help": "auto (cuda if available) | cpu | cuda | cuda:N."})
    attn_implementation: str | None = field(
        default=None, metadata={"help": "eager | sdpa | flash_attention_2 (transformers' default when unset)."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Run code shipped with the checkpoint (off)."})


@dataclass
class ModelArgs(LoadingArgs):
    """Which model to load, and how."""

    model: str = field(default="runs/demo/judge", metadata={"help": "Local checkpoint folder or hub id."})


@dataclass
class VllmArgs:
    """How to start vLLM's engine (``--backend vllm`` only)."""

    vllm_gpu_memory_utilization: float = field(
        default=0.5,
        metadata={
            "help": (
                "Fraction of the GPU vLLM may take; the transformers copy of the weights (for the float32 entropy "
                "pass) needs the rest."
            )
        },
    )
    vllm_tensor_parallel_size: int = field(default=1, metadata={"help": "GPUs one vLLM engine spans."})
    vllm_max_model_len: int = field(default=0, metadata={"help": "vLLM's context length (0 = the model's own)."})
    vllm_max_images: int = field(
        default=4, metadata={"help": "Images per prompt vLLM reserves room for (limit_mm_per_prompt)."}
    )

    def engine_kwargs(self, image_bounds: tuple[int, int] | None = None) -> dict:
        """``vllm.LLM`` keywords; ``image_bounds`` = the loaded processor's ``(min_pixels, max_pixels)``."""
        out = {
            "gpu_memory_utilization": self.vllm_gpu_memory_utilization,
            "tensor_parallel_size": self.vllm_tensor_parallel_size,
            "limit_mm_per_prompt": {"image": self.vllm_max_images},
        }
        if image_bounds is not None:
            out["mm_processor_kwargs"] = {"min_pixels": image_bounds[0], "max_pixels": image_bounds[1]}
        if self.vllm_max_model_len:
            out["max_model_len"] = self.vllm_max_model_len
        return out
