"""Settings every trainer of a model shares: CPU defaults of TRL's SFT, and where checkpoints go.

- :func:`cpu_sft_defaults`: the ``SFTConfig`` values that train a tiny model on a laptop CPU (the
  tiny judge's stage-1 recipe, docs/methods.md; a command line overrides any of them).
- :func:`resume_value`: a ``resume_from_checkpoint`` string as ``Trainer.train`` takes it.
- :class:`ConvertedCheckpointMixin`: resume loads a checkpoint's weights through the model's own key
  conversion (``Trainer`` alone loads none of a Qwen2.5-VL's, silently).
- :func:`checkpoint_dir`: a trainer writes its checkpoints to ``<output_dir>.checkpoints``, beside
  the final model, so the model folder itself appears atomically at the end of a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cpu_device_defaults() -> dict[str, Any]:
    """The trainer settings a CPU-only machine needs (bf16 would be refused), and nothing else."""
    return {"use_cpu": True, "bf16": False, "report_to": "none"}


def cpu_defaults_without_accelerator() -> dict[str, Any]:
    """``TrainingArguments`` for a CPU run when no CUDA device is found, else nothing (imports torch)."""
    import torch

    if torch.cuda.is_available():
        return {}
    return {**cpu_device_defaults(), "fp16": False, "dataloader_pin_memory": False}


def cpu_sft_defaults() -> dict[str, Any]:
    """SFTConfig defaults that run a tiny model on a laptop CPU (override any on the command line).

    No gradient checkpointing: a tiny model's activations are small, and recomputing them costs
    ~10% of a step. A caller with its own recipe overrides the optimiser and schedule keys.
    """
    return dict(
        **cpu_device_defaults(),
        output_dir="runs/sft/judge",
        activation_checkpointing=False,
        learning_rate=1e-3,
        adam_beta2=0.95,
        per_device_train_batch_size=32,
        num_train_epochs=1.0,
        lr_scheduler_type="cosine",
        warmup_steps=50,
        logging_steps=10,
        save_strategy="no",
        max_length=512,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=False,
    )


def checkpoint_dir(output_dir: str | Path) -> Path:
    """``<output_dir>.checkpoints``: trainer checkpoints live beside the final model, so the model
    folder is written atomically at the end."""
    out = Path(output_dir)
    return out.with_name(out.name + ".checkpoints")


def resume_value(value: Any) -> Any:
    """A ``resume_from_checkpoint`` value as ``Trainer.train`` takes it.

    The CLI and YAML give strings; ``Trainer.train`` treats the string ``"true"`` as a checkpoint path
    ("Can't find a valid checkpoint at True"), so ``true / 1 / yes`` become ``True`` (the newest
    checkpoint in the trainer's ``output_dir``), ``false / 0 / no / none / ""`` become ``None``, and a
    path stays a path.
    """
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("", "false", "0", "no", "none"):
        return None
    return value


class ConvertedCheckpointMixin:
    """Resume a ``Trainer`` from a checkpoint whose weights are stored under the released key names.

    ``save_pretrained`` writes a Qwen2.5-VL (and any model with a checkpoint conversion mapping) under
    the released names (``model.layers.*``, ``visual.*``) while the module's own names are
    ``model.language_model.layers.*``, ``model.visual.*``. ``Trainer._load_from_checkpoint`` loads
    the file with ``load_state_dict(strict=False)``: no key matches, nothing is loaded, a log line
    at warning level is all that is said, and the run goes on from the weights it started with —
    the optimiser's state and the step count restored, the model not (an interrupted 10-epoch SFT
    run resumed at 99% test accuracy and ended at 50%). Here the checkpoint is read by
    ``from_pretrained``, which applies the conversion, and copied in strictly; a key that still does
    not fit is an error that names it. DeepSpeed, FSDP and adapter checkpoints go the trainer's way.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        import os

        from egt.errors import EgtError

        model = self.model if model is None else model
        full = any(
            os.path.isfile(os.path.join(resume_from_checkpoint, name))
            for name in ("model.safetensors", "model.safetensors.index.json")
        )
        if not full or self.is_deepspeed_enabled or self.is_fsdp_enabled or not hasattr(model, "from_pretrained"):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(model.parameters()).dtype
        loaded = type(model).from_pretrained(resume_from_checkpoint, dtype=dtype)
        fit = model.load_state_dict(loaded.state_dict(), strict=False)
        del loaded
        if fit.missing_keys or fit.unexpected_keys:
            raise EgtError(
                f"{resume_from_checkpoint}: the checkpoint does not fit the model (missing: {fit.missing_keys[:3]}, "
                f"unexpected: {fit.unexpected_keys[:3]}); resume with the model and settings it was trained with"
            )


def ensure_float32_masters(model: Any, *, engine_keeps_masters: bool) -> list[str]:
    """Cast the trainable parameters of ``model`` that are bf16 / fp16 to float32; return their names.

    An optimizer step on bf16 weights rounds each update to bf16's 8-bit mantissa: at lr 1e-6 one
    AdamW step leaves ~98% of a real checkpoint's weights exactly as they were (``bench/gpu_check.py``
    (c); ``tests/models/test_real_shaped.py``). DeepSpeed (bf16 optimizer) and accelerate's FSDP
    (which upcasts low-precision parameters under mixed precision) keep float32 masters themselves
    (``engine_keeps_masters``); single-process and plain DDP runs do not, so the trainable weights
    become float32 here and bf16 compute comes from the trainer's autocast (``--bf16 true``). Frozen
    parameters (a LoRA base, a reference model) stay as loaded.
    """
    import torch

    if engine_keeps_masters:
        return []
    cast = []
    for name, param in model.named_parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.float()
            cast.append(name)
    if cast:
        import logging

        logging.getLogger(__name__).warning(
            "%d trainable parameter tensors were %s: training float32 master weights under autocast instead "
            "(no DeepSpeed / FSDP engine keeps a master copy)",
            len(cast),
            "bf16/fp16",
        )
    return cast


def trainer_keeps_masters(trainer: Any) -> bool:
    """Whether a ``transformers.Trainer``'s engine keeps float32 master weights (DeepSpeed, FSDP)."""
    return bool(getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False))
