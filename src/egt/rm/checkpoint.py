"""A reward model on disk: backbone folder + head weights + ``egt_reward.json``; nothing is pickled.

::

    out/config.json, model.safetensors, processor files   the backbone (``save_pretrained``)
    out/adapter_config.json, adapter_model.safetensors    … or, under LoRA, its peft adapter
    out/reward_head.safetensors                           the head's weights
    out/egt_reward.json                                   head config, pooling, base model of an
                                                          adapter; written last, it marks a whole
                                                          checkpoint (:data:`egt.judge.args.JUDGE_KINDS`)

Loading refuses a checkpoint whose stored head differs from the head asked for, whose head
weights do not match its declared head, or whose backbone file lacks a weight (transformers would
initialise it at random and only log it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from egt.data.atomic import atomic_write_json
from egt.errors import EgtError
from egt.rm.head import HeadConfig

REWARD_META_FILE = "egt_reward.json"
HEAD_WEIGHTS_FILE = "reward_head.safetensors"
FORMAT_VERSION = 1


def is_peft(module: nn.Module) -> bool:
    """A backbone wrapped in peft adapters (LoRA)."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(module, PeftModel)


def reward_meta(head: HeadConfig, input_size: int, is_vision: bool) -> dict[str, Any]:
    """The ``egt_reward.json`` of a reward model (before adapter and caller's extra keys)."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": "scalar_reward_model",
        "pooling": "last_non_pad_token",
        "head": asdict(head),
        "input_size": input_size,
        "is_vision": is_vision,
    }


def save_reward_model(
    out_dir: str | Path,
    backbone: nn.Module,
    head: nn.Module,
    meta: dict[str, Any],
    processor: Any = None,
    extra_meta: dict | None = None,
) -> Path:
    """Write ``backbone`` (its peft adapter when wrapped), ``processor``, the ``head`` weights and
    ``meta`` + ``extra_meta`` as ``egt_reward.json`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta)
    backbone.save_pretrained(out)  # a peft model writes adapter_config.json + adapter_model.safetensors
    if is_peft(backbone):
        meta["adapter"] = True
        meta["base_model"] = backbone.peft_config["default"].base_model_name_or_path
    if processor is not None:
        processor.save_pretrained(out)
    state = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    save_file(state, str(out / HEAD_WEIGHTS_FILE), metadata={"format": "pt"})
    meta.update(extra_meta or {})
    atomic_write_json(out / REWARD_META_FILE, meta)  # written last: its presence marks a whole checkpoint
    return out


def read_meta_file(folder: str | Path, name: str, what: str) -> tuple[Path, dict[str, Any]]:
    """``(path, parsed)`` of the marker file ``folder/name``; an :class:`EgtError` saying ``folder``
    is not ``what`` when the file is missing, or that it is malformed."""
    meta_path = Path(folder) / name
    if not meta_path.is_file():
        raise EgtError(f"{folder}: not {what} (no {name})")
    try:
        return meta_path, json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EgtError(f"{meta_path}: malformed JSON ({e.msg})") from None


def read_reward_meta(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``egt_reward.json``; an :class:`EgtError` if it is missing or of another format."""
    meta_path, meta = read_meta_file(path, REWARD_META_FILE, "a reward model checkpoint")
    if meta.get("format_version") != FORMAT_VERSION or not isinstance(meta.get("head"), dict):
        raise EgtError(f"{meta_path}: unsupported reward model format {meta.get('format_version')!r}")
    return meta


def stored_head(path: Path, meta: dict[str, Any], asked: HeadConfig | None) -> HeadConfig:
    """The head the checkpoint declares; refused when ``asked`` (if given) builds another head."""
    stored = HeadConfig(**meta["head"]).validate()
    size = meta["input_size"]
    if asked is not None and asked.signature(size) != stored.signature(size):
        raise EgtError(
            f"{path}: the checkpoint's reward head is {asdict(stored)} but the config asks for "
            f"{asdict(asked)}; refusing to load (train a new model or drop the head options)"
        )
    return stored


def load_backbone(path: Path, meta: dict[str, Any], *, dtype: str, device: str, for_training: bool) -> tuple[Any, Any]:
    """``(backbone, processor)`` of a checkpoint: the saved model, or its base model with the saved
    adapter (merged unless ``for_training``). The processor saved beside it wins over the base's."""
    from transformers import AutoTokenizer

    from egt.models.load import load_model
    from egt.models.processors import load_processor

    if meta.get("adapter"):
        from peft import PeftModel

        loaded = load_model(meta["base_model"], dtype=dtype, device=device, for_training=for_training)
        backbone = PeftModel.from_pretrained(loaded.model, str(path), is_trainable=for_training)
        if not for_training:
            backbone = backbone.merge_and_unload()
    else:
        with missing_weights() as missing:
            loaded = load_model(str(path), dtype=dtype, device=device, for_training=for_training)
        if missing:
            raise EgtError(
                f"{path}: the checkpoint is missing {len(missing)} backbone weight(s) ({', '.join(missing[:3])}"
                f"{', …' if len(missing) > 3 else ''}); refusing to load them initialised at random"
            )
        backbone = loaded.model
    processor = (
        (load_processor(str(path)) if meta["is_vision"] else AutoTokenizer.from_pretrained(str(path)))
        if (path / "tokenizer_config.json").is_file()
        else loaded.processor
    )
    tokenizer = getattr(processor, "tokenizer", processor)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return backbone, processor


@contextlib.contextmanager
def missing_weights() -> Iterator[list[str]]:
    """The weights a ``from_pretrained`` inside the block did not find in its checkpoint (tied ones
    excepted), from transformers' own loading report; empty where this transformers has none."""
    import transformers.modeling_utils as modeling_utils

    missing: list[str] = []
    report = getattr(modeling_utils, "log_state_dict_report", None)
    if report is None:  # pragma: no cover - another transformers: nothing to read
        yield missing
        return

    def read(*args: Any, **kwargs: Any) -> Any:
        info = kwargs.get("loading_info")
        missing.extend(sorted(getattr(info, "missing_keys", ())))
        return report(*args, **kwargs)

    modeling_utils.log_state_dict_report = read
    try:
        yield missing
    finally:
        modeling_utils.log_state_dict_report = report


def load_head_weights(head: nn.Module, weights_path: Path, head_type: str) -> None:
    """Load ``reward_head.safetensors`` into ``head``; refused when the shapes differ."""
    if not weights_path.is_file():
        raise EgtError(f"{weights_path.parent}: no {HEAD_WEIGHTS_FILE} (not a complete reward model checkpoint)")
    state = load_file(str(weights_path))
    expected = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        raise EgtError(
            f"{weights_path}: head weights {found} do not match the declared {head_type!r} head {expected}; "
            "refusing to load"
        )
    device = next(head.parameters()).device
    head.load_state_dict({k: v.to(device) for k, v in state.items()})
