"""The scalar reward model (BaseReward, docs/methods.md §6): backbone → last non-pad token → head.

:class:`RewardModel` wraps any causal (V)LM that :func:`egt.models.load.load_model` takes — a
Qwen2.5-VL, a Qwen2 text LM, … — and reads the backbone's *base* model (``model.base_model``, no
LM head is run) so only the final hidden states are computed::

    hidden = backbone.base_model(input_ids, attention_mask, pixel_values, ...)   # [B, L, h]
    pooled = hidden[b, last position where attention_mask == 1]                 # [B, h]
    reward = head(pooled)                                                       # [B]

The class only wires its parts together:

- :mod:`egt.rm.head`: the ``linear`` / ``mlp`` head, last-token pooling, the Bradley–Terry and LM losses;
- :mod:`egt.rm.encoding`: positions from the mask (M-RoPE for the Qwen2-VL family) and image
  features computed once per distinct image;
- :mod:`egt.rm.prefix`: rows that begin alike run their common prefix once (batched scoring);
- :mod:`egt.rm.checkpoint`: the folder on disk (safetensors, ``egt_reward.json``, peft adapters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from egt.errors import EgtError
from egt.rm import checkpoint
from egt.rm.checkpoint import read_reward_meta
from egt.rm.encoding import encode_images_once, mrope_settings, position_ids
from egt.rm.head import HeadConfig, build_head, next_token_loss, pool_last_token


class RewardModel(nn.Module):
    """A backbone (V)LM with a scalar head; ``forward(**batch)`` returns rewards ``[B]`` (float32).

    ``batch`` is what the processor returns (``input_ids``, ``attention_mask`` and, for a VLM,
    ``pixel_values``, ``image_grid_thw``, …); every extra key goes to the backbone unchanged.
    """

    # forward's ``**inputs`` are backbone inputs, not loss kwargs (``num_items_in_batch``): say so,
    # or ``transformers.Trainer`` infers the opposite from the signature.
    accepts_loss_kwargs = False

    def __init__(
        self,
        backbone: nn.Module,
        head: HeadConfig | None = None,
        *,
        is_vision: bool | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.head_config = (head or HeadConfig()).validate()
        config = self.backbone_config
        self.is_vision = getattr(config, "vision_config", None) is not None if is_vision is None else is_vision
        self.hidden_size = hidden_size_of(config)
        self.mrope = mrope_settings(config)  # Qwen2-VL family: positions computed here, vectorised
        init_std = getattr(config, "initializer_range", None) or getattr(
            getattr(config, "text_config", None), "initializer_range", 0.02
        )
        with torch.random.fork_rng(devices=[]):  # a seeded head without touching the global RNG
            if seed is not None:
                torch.manual_seed(seed)
            self.head = build_head(self.head_config, self.hidden_size, init_std=init_std)
        self.head.to(device=next(backbone.parameters()).device, dtype=next(backbone.parameters()).dtype)

    # ---------------------------------------------------------------------------------------- #
    # forward

    @property
    def backbone_config(self) -> Any:
        return self.backbone.config

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    @property
    def head_dtype(self) -> torch.dtype:
        return self.head[0].weight.dtype

    @property
    def attn_implementation(self) -> str:
        config = self.backbone_config
        return str(getattr(getattr(config, "text_config", None) or config, "_attn_implementation", None))

    @property
    def can_share_prefix(self) -> bool:
        """Prefix sharing needs positions worked out here (Qwen2-VL family or a text backbone)."""
        return bool(self.mrope) or not self.is_vision

    def base(self) -> nn.Module:
        """The backbone without its LM head (``Qwen2_5_VLModel``, ``Qwen2Model``, …)."""
        inner = self.backbone
        if checkpoint.is_peft(inner):
            inner = inner.get_base_model()
        return inner.base_model

    def position_ids(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, image_grid_thw: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Positions of a padded batch (:func:`egt.rm.encoding.position_ids`): ``[3, B, L]``, ``[B, L]`` or None."""
        return position_ids(input_ids, attention_mask, image_grid_thw, mrope=self.mrope, is_vision=self.is_vision)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **inputs: Any) -> torch.Tensor:
        """The backbone's final hidden states ``[B, L, h]`` (no LM head), positions from :meth:`position_ids`."""
        inputs.pop("return_loss", None)
        if "position_ids" not in inputs:
            positions = self.position_ids(input_ids, attention_mask, inputs.get("image_grid_thw"))
            if positions is not None:
                inputs.pop("mm_token_type_ids", None)
                inputs["position_ids"] = positions
        return self.run_base(input_ids, attention_mask, **inputs).last_hidden_state

    def run_base(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **inputs: Any) -> Any:
        """One pass of the base model; its output. ``image_sources`` (``[n_images]``, from
        :func:`egt.models.qwen_vl.encode_qwen_vl`) sends each distinct image through the vision
        tower once (:func:`egt.rm.encoding.encode_images_once`)."""
        sources = inputs.pop("image_sources", None)
        if sources is not None and inputs.get("pixel_values") is not None:
            inputs = encode_images_once(self.base(), inputs, sources)
        inputs.setdefault("use_cache", False)
        return self.base()(input_ids=input_ids, attention_mask=attention_mask, **inputs)

    def rewards_from_hidden(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[B, L, h]`` → rewards ``[B]`` at each row's last non-pad token."""
        return self.rewards_from_pooled(pool_last_token(hidden, attention_mask))

    def rewards_from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """The head on pooled hidden states ``[B, h]`` → rewards ``[B]`` (float32)."""
        return self.head(pooled.to(self.head_dtype)).squeeze(-1).float()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        lm_labels: torch.Tensor | None = None,
        **inputs: Any,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Rewards ``[B]`` (float32) of a processor batch.

        With ``lm_labels`` (``[B', L]`` targets for the first ``B'`` rows, see :meth:`lm_loss`)
        returns ``(rewards, lm_loss)`` from the same forward pass.
        """
        hidden = self.hidden_states(input_ids, attention_mask, **inputs)  # [B, L, h]
        rewards = self.rewards_from_hidden(hidden, attention_mask)
        if lm_labels is None:
            return rewards
        return rewards, self.lm_loss(hidden[: lm_labels.shape[0]], lm_labels)

    def lm_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy of the backbone's LM head (:func:`egt.rm.head.next_token_loss`)."""
        return next_token_loss(hidden, labels, self.backbone.get_output_embeddings())

    # Trainer machinery (activation checkpointing, special-token alignment) sees the backbone.
    @property
    def config(self) -> Any:
        return self.backbone_config

    def activation_checkpointing_enable(self, **kwargs: Any) -> None:
        self.backbone.activation_checkpointing_enable(**kwargs)
        if hasattr(self.backbone, "enable_input_require_grads"):
            self.backbone.enable_input_require_grads()

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        self.activation_checkpointing_enable(**kwargs)

    # ---------------------------------------------------------------------------------------- #
    # saving and loading (:mod:`egt.rm.checkpoint`)

    def reward_meta(self) -> dict[str, Any]:
        return checkpoint.reward_meta(self.head_config, self.hidden_size, self.is_vision)

    def save_pretrained(self, out_dir: str | Path, processor: Any = None, extra_meta: dict | None = None) -> Path:
        """Write backbone (safetensors), processor, head weights and ``egt_reward.json`` to ``out_dir``."""
        return checkpoint.save_reward_model(
            out_dir, self.backbone, self.head, self.reward_meta(), processor=processor, extra_meta=extra_meta
        )

    def merge_adapter(self) -> None:
        """Fold a LoRA adapter into the backbone weights (before a final, self-contained save)."""
        if checkpoint.is_peft(self.backbone):
            self.backbone = self.backbone.merge_and_unload()

    @classmethod
    def from_backbone(
        cls,
        path: str | Path,
        head: HeadConfig | None = None,
        *,
        dtype: str = "auto",
        device: str = "auto",
        seed: int = 0,
        for_training: bool = True,
    ) -> tuple[RewardModel, Any]:
        """A fresh reward model (new head, seeded) on any backbone :func:`load_model` takes."""
        from egt.models.load import load_model

        loaded = load_model(str(path), dtype=dtype, device=device, for_training=for_training)
        model = cls(loaded.model, head, is_vision=loaded.is_vision, seed=seed)
        return model.train(for_training), loaded.processor

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        head: HeadConfig | None = None,
        *,
        dtype: str = "auto",
        device: str = "auto",
        for_training: bool = False,
    ) -> tuple[RewardModel, Any]:
        """Load ``(model, processor)``; refuse a checkpoint whose head differs from ``head``.

        ``head=None`` takes the head the checkpoint declares. The stored head weights must also
        match the declared head, or loading stops with an :class:`EgtError`.
        """
        path = Path(path)
        meta = read_reward_meta(path)
        stored = checkpoint.stored_head(path, meta, head)
        backbone, processor = checkpoint.load_backbone(
            path, meta, dtype=dtype, device=device, for_training=for_training
        )
        model = cls(backbone, stored, is_vision=meta["is_vision"])
        model.load_head(path / checkpoint.HEAD_WEIGHTS_FILE)
        if not for_training:
            model.eval()
        return model, processor

    def load_head(self, weights_path: Path) -> None:
        checkpoint.load_head_weights(self.head, weights_path, self.head_config.type)


def hidden_size_of(config: Any) -> int:
    """The backbone's hidden size (its own, or its text model's)."""
    for cfg in (config, getattr(config, "text_config", None)):
        size = getattr(cfg, "hidden_size", None) if cfg is not None else None
        if size:
            return int(size)
    raise EgtError(f"{type(config).__name__}: cannot find the backbone's hidden size")
