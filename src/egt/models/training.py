"""Settings every trainer of a model shares: CPU defaults of TRL's SFT, and where checkpoints go.

- :func:`cpu_sft_defaults`: the ``SFTConfig`` values that train a tiny model on a laptop CPU (the
  tiny judge's stage-1 recipe, docs/methods.md; a command line overrides any of them).
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
