"""Load any judge / policy / backbone: the tiny lab model, a local checkpoint or a hub id.

One function, :func:`load_model`, for every capability: Qwen2.5-VL / Qwen2-VL (and other
image-text-to-text models) load through ``AutoModelForImageTextToText`` + ``AutoProcessor``;
text-only models (Qwen2.5, Llama, …) through ``AutoModelForCausalLM`` + ``AutoTokenizer``.
``trust_remote_code`` stays off unless the caller asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

import egt.models.tiny  # noqa: F401  (registers TinyVLProcessor with AutoProcessor)
from egt.errors import EgtError
from egt.models.args import ModelArgs
from egt.models.generation import reset_generation_config
from egt.models.processors import load_processor, set_image_bounds


@dataclass
class LoadedModel:
    model: Any
    processor: Any  # a ProcessorMixin for VLMs, a tokenizer for text-only models
    is_vision: bool

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise EgtError(f"field 'dtype': unknown dtype {dtype!r} (float32, bfloat16, float16, auto)") from None


def load_model(
    name_or_path: str,
    *,
    dtype: str = "auto",
    device: str = "auto",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    for_training: bool = False,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> LoadedModel:
    """Load model + processor; a missing local path or an unreachable hub id is a user error.

    ``for_training`` loads the weights in float32 whatever ``dtype`` says: they are the optimizer's
    master weights, and bf16 compute comes from the trainer's autocast (``--bf16 true``); see
    :func:`egt.models.training.ensure_float32_masters`. ``min_pixels`` / ``max_pixels``: the image
    size bounds of a Qwen-VL processor (:func:`egt.models.processors.set_image_bounds`).
    """
    path = Path(name_or_path)
    looks_local = path.exists() or name_or_path.startswith((".", "/", "runs"))
    if looks_local and not (path / "config.json").is_file():
        raise EgtError(f"{name_or_path}: not a model folder (no config.json)")
    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise EgtError(f"{name_or_path}: cannot load the model config ({str(e).splitlines()[0]})") from None
    dev = resolve_device(device)
    weights_dtype = torch.float32 if for_training else resolve_dtype(dtype, dev)
    kwargs: dict[str, Any] = {"dtype": weights_dtype, "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    is_vision = getattr(config, "vision_config", None) is not None
    if is_vision:
        model = AutoModelForImageTextToText.from_pretrained(name_or_path, **kwargs)
        processor = load_processor(name_or_path, trust_remote_code=trust_remote_code)
        set_image_bounds(processor, min_pixels, max_pixels)
    else:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
        processor = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    reset_generation_config(model)  # our sampling definition, not the checkpoint's (egt.models.generation)
    tokenizer = getattr(processor, "tokenizer", processor)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not for_training:
        tokenizer.padding_side = "left"  # generation needs left padding
        model.eval()
    return LoadedModel(model=model.to(dev), processor=processor, is_vision=is_vision)


def load_from_args(args: ModelArgs, **overrides: Any) -> LoadedModel:
    return load_model(
        args.model,
        dtype=args.dtype,
        device=args.device,
        attn_implementation=args.attn_implementation,
        trust_remote_code=args.trust_remote_code,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        **overrides,
    )
