"""A checkpoint's processor as the judge needs it: images and text, with bounded image sizes.

Two things a real Qwen2-VL / Qwen2.5-VL folder needs that the tiny lab judge never did:

- **No torchvision, no video.** ``AutoProcessor`` on a released folder also builds the video
  processor, whose Qwen implementation needs torchvision — which a CPU box (or any image-only user)
  may not have. :func:`load_processor` then builds the same processor *without* the video processor
  (the folder's own image processor settings, tokenizer and chat template), and says in one line
  what video would need. The class it builds is a subclass that keeps the stock class's name, so a
  judge saved with it is written exactly as the stock processor writes itself and loads anywhere.
- **Bounded image sizes.** Qwen's image processor turns an image into ``h·w / 28²`` tokens between
  ``min_pixels`` and ``max_pixels`` (released: 3,136 and 12,845,056 — up to 16,384 tokens for one
  image). :func:`set_image_bounds` sets one pair of bounds on the processor; every command, the
  trainers and the vLLM engine (``mm_processor_kwargs``) read them from there, so the image a judge is
  scored with is the image it is trained on. Default: the checkpoint's own, with ``max_pixels``
  capped at :data:`DEFAULT_MAX_PIXELS` (1,280 tokens, Qwen's own recommended cap), which leaves room
  for the prompt and a 1,024-token completion in the recipes' 4,096-token context.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from egt.errors import EgtError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "image_bounds",
    "image_only_processor",
    "image_resizer",
    "load_processor",
    "set_image_bounds",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 1280 * 28 * 28  # 1,003,520 pixels = 1,280 image tokens for Qwen2(.5)-VL
VIDEO_NEEDS = "video inputs need torchvision: pip install 'egt[gpu]'"


def _has_torchvision() -> bool:
    import importlib.util

    return importlib.util.find_spec("torchvision") is not None


def _image_only_class(base: type, video_type: str | None) -> type:
    """A subclass of ``base`` (a Qwen-VL processor) without the video processor, named as ``base``.

    Saved, it writes what the stock processor would: a ``video_processor`` entry (``video_type``, on the
    image processor's settings, as transformers builds it from a released folder), so the folder loads
    with ``AutoProcessor`` wherever torchvision is installed (vLLM, a GPU box)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        kwargs.pop("video_processor", None)
        base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    def get_attributes(cls):
        return ["image_processor", "tokenizer"]

    def to_dict(self):
        out = base.to_dict(self)
        if video_type and "video_processor" not in out:
            video = {k: v for k, v in self.image_processor.to_dict().items() if k != "image_processor_type"}
            out["video_processor"] = {**video, "video_processor_type": video_type}
        return out

    return type(
        base.__name__,
        (base,),
        {
            "__init__": __init__,
            "get_attributes": classmethod(get_attributes),
            "to_dict": to_dict,
            "__module__": __name__,
        },
    )


# The video processor transformers builds for a model type; its auto mapping blanks these names out
# when torchvision is missing, which is exactly when the image-only processor is built.
VIDEO_PROCESSORS = {
    "qwen2_vl": "Qwen2VLVideoProcessor",
    "qwen2_5_vl": "Qwen2VLVideoProcessor",
    "qwen3_vl": "Qwen3VLVideoProcessor",
    "qwen3_vl_moe": "Qwen3VLVideoProcessor",
}


def _video_processor_type(folder: Path) -> str | None:
    """The video processor class transformers builds for the folder's model type, if we know it."""
    config = folder / "config.json"
    model_type = json.loads(config.read_text()).get("model_type") if config.is_file() else None
    return VIDEO_PROCESSORS.get(model_type)


def _processor_class_name(folder: Path) -> str | None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            found = json.loads(path.read_text()).get("processor_class")
            if found:
                return found
    return None


def _chat_template(folder: Path, tokenizer: Any) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    as_json = folder / "chat_template.json"
    if as_json.is_file():
        return json.loads(as_json.read_text()).get("chat_template")
    return getattr(tokenizer, "chat_template", None)


def image_only_processor(folder: str | Path, *, trust_remote_code: bool = False):
    """The folder's Qwen-VL processor without its video processor (no torchvision needed)."""
    import inspect

    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    folder = Path(folder)
    name = _processor_class_name(folder)
    base = getattr(transformers, name, None) if name else None
    if base is None or "video_processor" not in inspect.signature(base.__init__).parameters:
        raise EgtError(f"{folder}: the processor ({name or 'unknown class'}) needs torchvision; {VIDEO_NEEDS}")
    image_processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    return _image_only_class(base, _video_processor_type(folder))(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=_chat_template(folder, tokenizer)
    )


def load_processor(name_or_path: str, *, trust_remote_code: bool = False):
    """``AutoProcessor.from_pretrained``, or the image-only processor when torchvision is missing."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (ImportError, OSError) as e:
        video = "torchvision" in str(e).lower() or "video processor" in str(e).lower()
        if _has_torchvision() or not video or not Path(name_or_path).is_dir():
            raise EgtError(f"{name_or_path}: cannot load the processor ({str(e).strip().splitlines()[0]})") from None
    processor = image_only_processor(name_or_path, trust_remote_code=trust_remote_code)
    log.warning("%s: torchvision is not installed, so the processor is image-only (%s)", name_or_path, VIDEO_NEEDS)
    return processor


def image_bounds(processor: Any) -> tuple[int, int] | None:
    """``(min_pixels, max_pixels)`` of a Qwen-VL image processor, or None for any other processor."""
    ip = getattr(processor, "image_processor", None)
    size = getattr(ip, "size", None)
    low, high = getattr(size, "shortest_edge", None), getattr(size, "longest_edge", None)
    if low is None or high is None or not hasattr(ip, "merge_size"):
        return None
    return int(low), int(high)


def set_image_bounds(processor: Any, min_pixels: int | None = None, max_pixels: int | None = None) -> None:
    """Set the image size bounds of a Qwen-VL processor (module doc); other processors are left alone.

    ``None`` keeps the checkpoint's ``min_pixels`` and caps its ``max_pixels`` at
    :data:`DEFAULT_MAX_PIXELS`; an explicit value is used as given.
    """
    bounds = image_bounds(processor)
    if bounds is None:
        return
    low = bounds[0] if min_pixels is None else int(min_pixels)
    high = min(bounds[1], DEFAULT_MAX_PIXELS) if max_pixels is None else int(max_pixels)
    factor = processor.image_processor.patch_size * processor.image_processor.merge_size
    if high < factor * factor:
        raise EgtError(f"field 'max_pixels': {high} is below one image token ({factor}×{factor} = {factor**2} pixels)")
    if low > high:
        raise EgtError(f"fields 'min_pixels' / 'max_pixels': min {low} exceeds max {high}")
    ip = processor.image_processor
    ip.size = type(ip.size)(**{**dict(ip.size), "shortest_edge": low, "longest_edge": high})
    for attr, value in (("min_pixels", low), ("max_pixels", high)):
        if getattr(ip, attr, None) is not None:
            setattr(ip, attr, value)


def image_resizer(processor: Any):
    """A function PIL image → the image at the size ``processor`` resizes it to (Qwen's
    ``smart_resize`` within the processor's bounds, bicubic as the processor), or None when the
    processor is not a Qwen-VL one. The processor then leaves the image as it is."""
    bounds = image_bounds(processor)
    if bounds is None:
        return None
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    ip = processor.image_processor
    factor = ip.patch_size * ip.merge_size

    def fit(image):
        height, width = smart_resize(
            image.height, image.width, factor=factor, min_pixels=bounds[0], max_pixels=bounds[1]
        )
        if (width, height) == image.size:
            return image
        return image.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)

    return fit
