"""The scalar reward model (BaseReward, docs/methods.md §6): backbone → last non-pad token → head.

:class:`RewardModel` wraps any causal (V)LM that :func:`egt.models.load.load_model` takes — a
Qwen2.5-VL, a Qwen2 text LM, … — and reads the backbone's *base* model (``model.base_model``, no
LM head is run) so only the final hidden states are computed::

    hidden = backbone.base_model(input_ids, attention_mask, pixel_values, ...)   # [B, L, h]
    pooled = hidden[b, last position where attention_mask == 1]                 # [B, h]
    reward = head(pooled)                                                       # [B]

When several rows of a batch begin alike (the two responses of a pair, the completions of one
prompt), :meth:`RewardModel.shared_prefix_rewards` runs their common prefix once
(:mod:`egt.rm.prefix`); :func:`egt.rm.scoring.score_items` uses it.

Heads: ``linear`` (``Linear(h, 1)``) and BaseReward's ``mlp`` (``Linear(h, w) → act → Linear(w, 1)``,
``w = h`` and ``act = SiLU`` by default; BaseReward found two layers with SiLU best, one linear
layer worst). The pooled position is found from the mask itself, so left and right padding
give the same reward; text backbones get position ids from the mask for the same reason.

On disk a reward model is the backbone folder (``save_pretrained``: ``config.json``,
``model.safetensors``, the processor) plus ``reward_head.safetensors`` and ``egt_reward.json``
(the head config; also the marker :data:`egt.judge.factory.JUDGE_KINDS` looks for). Nothing is
pickled. A backbone wrapped in LoRA is saved as its peft adapter with a pointer to the base.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from egt.errors import EgtError
from egt.io import atomic_write_json

REWARD_META_FILE = "egt_reward.json"
HEAD_WEIGHTS_FILE = "reward_head.safetensors"
FORMAT_VERSION = 1
HEAD_TYPES = ("linear", "mlp")
# attention implementations that take a custom 4-D mask: prefix sharing packs a group into one row
PACKABLE_ATTENTION = ("sdpa", "eager")


@dataclass
class HeadConfig:
    """Which head sits on the pooled hidden state."""

    type: str = "mlp"  # linear | mlp (BaseReward's choice)
    hidden_size: int = 0  # width of the mlp's inner layer; 0 = the backbone's hidden size
    activation: str = "silu"  # any name in transformers' ACT2FN; BaseReward: silu

    def validate(self) -> HeadConfig:
        if self.type not in HEAD_TYPES:
            raise EgtError(f"field 'head': unknown head type {self.type!r} (one of {', '.join(HEAD_TYPES)})")
        from transformers.activations import ACT2FN

        if self.type == "mlp" and self.activation not in ACT2FN:
            raise EgtError(f"field 'head_activation': unknown activation {self.activation!r}")
        if self.hidden_size < 0:
            raise EgtError(f"field 'head_hidden_size': must be ≥ 0, got {self.hidden_size}")
        return self


def build_head(cfg: HeadConfig, input_size: int, init_std: float = 0.02) -> nn.Module:
    """``linear``: ``Linear(h, 1)``; ``mlp``: ``Linear(h, w) → act → Linear(w, 1)``.

    The output layer starts small (std ``init_std``, zero bias), so a fresh model's rewards are
    ≈ 0 and its Bradley–Terry loss ≈ ln 2.
    """
    from transformers.activations import ACT2FN

    cfg.validate()
    if cfg.type == "linear":
        head = nn.Sequential(nn.Linear(input_size, 1))
    else:
        width = cfg.hidden_size or input_size
        head = nn.Sequential(nn.Linear(input_size, width), ACT2FN[cfg.activation], nn.Linear(width, 1))
    nn.init.normal_(head[-1].weight, std=init_std)
    nn.init.zeros_(head[-1].bias)
    return head


def last_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-pad token of each row, for left, right or no padding.

    ``attention_mask``: ``[B, L]`` of 0/1 → ``[B]`` long. A row with no token at all maps to 0.
    """
    length = attention_mask.shape[-1]
    positions = torch.arange(length, device=attention_mask.device).expand_as(attention_mask)  # [B, L]
    return (positions * attention_mask.long()).argmax(dim=-1)  # last index where the mask is 1


def pool_last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``hidden`` ``[B, L, h]`` → the hidden state at each row's last non-pad token, ``[B, h]``."""
    index = last_token_positions(attention_mask)  # [B]
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on each row's first real token (left padding safe), ``[B, L]``."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


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
        self.mrope = _mrope_settings(config)  # Qwen2-VL family: positions computed here, vectorised
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

    def base(self) -> nn.Module:
        """The backbone without its LM head (``Qwen2_5_VLModel``, ``Qwen2Model``, …)."""
        inner = self.backbone
        if _is_peft(inner):
            inner = inner.get_base_model()
        return inner.base_model

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **inputs: Any) -> torch.Tensor:
        """The backbone's final hidden states ``[B, L, h]`` (no LM head).

        ``image_sources`` (``[n_images]``, from :func:`egt.models.qwen_vl.encode_qwen_vl`) maps each
        image occurrence to its distinct image in ``pixel_values``: each distinct image goes through
        the vision tower once and its features are reused. Qwen2-VL-family backbones get their 3-D
        positions from :func:`egt.models.qwen_vl.mrope_position_ids` (one vectorised pass per batch).
        """
        inputs.pop("return_loss", None)
        if "position_ids" not in inputs:
            positions = self.position_ids(input_ids, attention_mask, inputs.get("image_grid_thw"))
            if positions is not None:
                inputs.pop("mm_token_type_ids", None)
                inputs["position_ids"] = positions
        return self._run(input_ids, attention_mask, **inputs).last_hidden_state

    def position_ids(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, image_grid_thw: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Positions of a padded batch: ``[3, B, L]`` for the Qwen2-VL family, ``[B, L]`` for a
        text backbone, ``None`` for other VLMs (the backbone works them out itself)."""
        if self.mrope:
            from egt.models.qwen_vl import mrope_position_ids

            return mrope_position_ids(
                input_ids,
                attention_mask,
                image_grid_thw,
                image_token_id=self.mrope["image_token_id"],
                spatial_merge_size=self.mrope["spatial_merge_size"],
            )
        return None if self.is_vision else positions_from_mask(attention_mask)

    def _run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **inputs: Any) -> Any:
        """One pass of the base model (features of distinct images computed once); its output."""
        sources = inputs.pop("image_sources", None)
        if sources is not None and inputs.get("pixel_values") is not None:
            inputs = self._encode_images_once(inputs, sources)
        inputs.setdefault("use_cache", False)
        return self.base()(input_ids=input_ids, attention_mask=attention_mask, **inputs)

    @property
    def can_share_prefix(self) -> bool:
        """Prefix sharing needs positions worked out here (Qwen2-VL family or a text backbone)."""
        return bool(self.mrope) or not self.is_vision

    def shared_prefix_rewards(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        slot: torch.Tensor,
        min_saved_tokens: int = 0,
        layout: str | None = None,
        **inputs: Any,
    ) -> torch.Tensor:
        """Rewards ``[B]`` of a right-padded batch whose rows sharing a ``slot`` (``[B]``, see
        :func:`egt.rm.prefix.group_slots`) run their common prefix through the backbone once
        (:mod:`egt.rm.prefix`).

        ``layout``: ``"packed"`` (one pass with a 4-D mask; the default for ``sdpa`` / ``eager``
        attention) or ``"cached"`` (two passes through a copied KV cache; the default otherwise,
        e.g. flash attention). Falls back to the plain forward when sharing would save fewer than
        ``min_saved_tokens`` token positions (the packed mask and row bookkeeping cost something;
        nothing shared at all always falls back), when an image lies outside a shared prefix, or
        for backbones without :attr:`can_share_prefix`.
        """
        from transformers import DynamicCache

        from egt.rm import prefix as px

        plan = px.plan_prefix(input_ids, attention_mask, slot)
        lengths = attention_mask.sum(dim=1)
        image_id = self.mrope["image_token_id"] if self.mrope else None
        beyond = torch.arange(input_ids.shape[1], device=input_ids.device) >= plan.prefix_len[:, None]
        has_pixels = inputs.get("pixel_values") is not None
        if (
            not self.can_share_prefix
            or plan.saved_tokens < max(1, min_saved_tokens)
            or int(plan.prefix_len.min()) < 1
            or (has_pixels and "image_sources" not in inputs)
            or (image_id is not None and bool(((input_ids == image_id) & beyond).any()))
        ):
            return self(input_ids, attention_mask, **inputs)
        inputs.pop("return_loss", None)
        inputs.pop("mm_token_type_ids", None)
        grid = inputs.get("image_grid_thw")
        positions = self.position_ids(input_ids, attention_mask, grid)  # of the full rows: every layout keeps them
        if has_pixels:
            inputs = self._leader_images(inputs, input_ids, attention_mask, plan.leaders)
        elif grid is not None:
            inputs.pop("image_grid_thw")
        layout = layout or ("packed" if self.attn_implementation in PACKABLE_ATTENTION else "cached")
        if layout == "packed":  # one pass, [prefix | rest | rest …] per group
            packed = px.packed_layout(plan, lengths)
            hidden = self._run(
                packed.pack(input_ids),
                packed.attention_mask(self.head[0].weight.dtype),
                position_ids=packed.pack(positions),
                **inputs,
            ).last_hidden_state  # [G, Lp, h]
            return self.rewards_from_pooled(hidden[plan.slot, packed.last])
        if layout != "cached":
            raise ValueError(f"layout must be 'packed' or 'cached', got {layout!r}")
        prefix_ids, rest_ids = px.split_rows(input_ids, plan, lengths)  # two passes through a copied cache
        prefix_pos, rest_pos = px.split_rows(positions, plan, lengths)
        prefix_mask, rest_mask = px.split_masks(plan, lengths)
        cache = self._run(
            prefix_ids, prefix_mask, position_ids=prefix_pos, past_key_values=DynamicCache(), use_cache=True, **inputs
        ).past_key_values
        cache.reorder_cache(plan.slot)  # [G, …] → [B, …]: each row gets its group's keys and values
        hidden = self._run(
            rest_ids,
            torch.cat([prefix_mask[plan.slot], rest_mask], dim=1),
            position_ids=rest_pos,
            past_key_values=cache,
            use_cache=True,
        ).last_hidden_state  # [B, C, h]
        return self.rewards_from_hidden(hidden, rest_mask)

    def _leader_images(
        self, inputs: dict[str, Any], input_ids: torch.Tensor, attention_mask: torch.Tensor, leaders: torch.Tensor
    ) -> dict[str, Any]:
        """Image features for the rows in ``leaders`` only (a group's prefix holds its images): each
        distinct image through the vision tower once, the leaders' occurrences handed on."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        from egt.rm.prefix import image_rows

        grid = inputs["image_grid_thw"]
        inputs = self._encode_images_once(inputs, inputs.pop("image_sources"))
        rows = image_rows(
            input_ids,
            attention_mask,
            grid.prod(-1) // self.mrope["spatial_merge_size"] ** 2,
            self.mrope["image_token_id"],
        )
        keep = torch.isin(rows, leaders.to(rows.device)).tolist()
        features = inputs["mm_encoder_outputs"]["image"].pooler_output
        inputs["mm_encoder_outputs"] = {
            "image": BaseModelOutputWithPooling(
                pooler_output=tuple(f for f, k in zip(features, keep, strict=True) if k)
            )
        }
        inputs["image_grid_thw"] = grid[torch.tensor(keep, device=grid.device)]
        return inputs

    @property
    def attn_implementation(self) -> str:
        config = self.backbone_config
        return str(getattr(getattr(config, "text_config", None) or config, "_attn_implementation", None))

    def _encode_images_once(self, inputs: dict[str, Any], sources: torch.Tensor) -> dict[str, Any]:
        """Replace ``pixel_values`` (the distinct images) by their features, one vision pass per
        distinct image, handed to the backbone per occurrence as ``mm_encoder_outputs``;
        ``image_grid_thw`` (per occurrence) stays, the 3-D positions need it. The vision tower's
        index tensors come precomputed from :func:`egt.models.qwen_vl.vision_layout`."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        from egt.models.qwen_vl import vision_layout

        inputs = dict(inputs)
        grid = inputs["image_grid_thw"]  # [n_occurrences, 3]
        sources = sources.tolist()
        first = {}
        for occurrence, s in enumerate(sources):
            first.setdefault(s, occurrence)
        distinct_grid = grid[[first[s] for s in range(len(first))]]  # [n_distinct, 3]
        layout = vision_layout(distinct_grid, self.backbone_config.vision_config)  # index tensors, once per grid
        features = (
            self.base()
            .get_image_features(inputs.pop("pixel_values"), distinct_grid, return_dict=True, **layout)
            .pooler_output
        )  # per distinct image
        inputs["mm_encoder_outputs"] = {
            "image": BaseModelOutputWithPooling(pooler_output=tuple(features[s] for s in sources))
        }
        return inputs

    def rewards_from_hidden(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.rewards_from_pooled(pool_last_token(hidden, attention_mask))

    def rewards_from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """The head on pooled hidden states ``[B, h]`` → rewards ``[B]`` (float32)."""
        return self.head(pooled.to(self.head[0].weight.dtype)).squeeze(-1).float()

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
        """Next-token cross-entropy of the backbone's LM head on ``hidden`` ``[B, L, h]``; ``labels``
        ``[B, L]`` with −100 where no loss is taken."""
        targets = labels[:, 1:]  # [B, L-1]: position t predicts token t+1
        keep = targets != -100
        if not keep.any():
            return hidden.sum() * 0.0
        logits = self.backbone.get_output_embeddings()(hidden[:, :-1][keep]).float()  # [N, V], labelled positions only
        return torch.nn.functional.cross_entropy(logits, targets[keep])

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
    # saving and loading

    def reward_meta(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": "scalar_reward_model",
            "pooling": "last_non_pad_token",
            "head": asdict(self.head_config),
            "input_size": self.hidden_size,
            "is_vision": self.is_vision,
        }

    def save_pretrained(self, out_dir: str | Path, processor: Any = None, extra_meta: dict | None = None) -> Path:
        """Write backbone (safetensors), processor, head weights and ``egt_reward.json`` to ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        meta = self.reward_meta()
        if _is_peft(self.backbone):
            self.backbone.save_pretrained(out)  # adapter_config.json + adapter_model.safetensors
            meta["adapter"] = True
            meta["base_model"] = self.backbone.peft_config["default"].base_model_name_or_path
        else:
            self.backbone.save_pretrained(out)
        if processor is not None:
            processor.save_pretrained(out)
        state = {k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()}
        save_file(state, str(out / HEAD_WEIGHTS_FILE), metadata={"format": "pt"})
        meta.update(extra_meta or {})
        atomic_write_json(out / REWARD_META_FILE, meta)  # written last: its presence marks a whole checkpoint
        return out

    def merge_adapter(self) -> None:
        """Fold a LoRA adapter into the backbone weights (before a final, self-contained save)."""
        if _is_peft(self.backbone):
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
        from egt.models.load import load_model

        path = Path(path)
        meta = read_reward_meta(path)
        stored = HeadConfig(**meta["head"]).validate()
        if head is not None and _canonical(head, meta["input_size"]) != _canonical(stored, meta["input_size"]):
            raise EgtError(
                f"{path}: the checkpoint's reward head is {asdict(stored)} but the config asks for "
                f"{asdict(head)}; refusing to load (train a new model or drop the head options)"
            )
        if meta.get("adapter"):
            loaded = load_model(meta["base_model"], dtype=dtype, device=device, for_training=for_training)
            from peft import PeftModel

            backbone = PeftModel.from_pretrained(loaded.model, str(path), is_trainable=for_training)
            if not for_training:
                backbone = backbone.merge_and_unload()
        else:
            loaded = load_model(str(path), dtype=dtype, device=device, for_training=for_training)
            backbone = loaded.model
        from transformers import AutoProcessor, AutoTokenizer

        processor = (
            (AutoProcessor if meta["is_vision"] else AutoTokenizer).from_pretrained(str(path))
            if (path / "tokenizer_config.json").is_file()
            else loaded.processor
        )
        tokenizer = getattr(processor, "tokenizer", processor)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = cls(backbone, stored, is_vision=meta["is_vision"])
        model.load_head(path / HEAD_WEIGHTS_FILE)
        if not for_training:
            model.eval()
        return model, processor

    def load_head(self, weights_path: Path) -> None:
        if not weights_path.is_file():
            raise EgtError(f"{weights_path.parent}: no {HEAD_WEIGHTS_FILE} (not a complete reward model checkpoint)")
        state = load_file(str(weights_path))
        expected = {k: tuple(v.shape) for k, v in self.head.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if expected != found:
            raise EgtError(
                f"{weights_path}: head weights {found} do not match the declared "
                f"{self.head_config.type!r} head {expected}; refusing to load"
            )
        self.head.load_state_dict({k: v.to(self.device) for k, v in state.items()})


def read_reward_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    meta_path = path / REWARD_META_FILE
    if not meta_path.is_file():
        raise EgtError(f"{path}: not a reward model checkpoint (no {REWARD_META_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EgtError(f"{meta_path}: malformed JSON ({e.msg})") from None
    if meta.get("format_version") != FORMAT_VERSION or not isinstance(meta.get("head"), dict):
        raise EgtError(f"{meta_path}: unsupported reward model format {meta.get('format_version')!r}")
    return meta


def hidden_size_of(config: Any) -> int:
    for cfg in (config, getattr(config, "text_config", None)):
        size = getattr(cfg, "hidden_size", None) if cfg is not None else None
        if size:
            return int(size)
    raise EgtError(f"{type(config).__name__}: cannot find the backbone's hidden size")


def _mrope_settings(config: Any) -> dict[str, int] | None:
    from egt.models.qwen_vl import QWEN_VL_MODEL_TYPES

    if getattr(config, "model_type", None) not in QWEN_VL_MODEL_TYPES:
        return None
    return {
        "image_token_id": int(config.image_token_id),
        "spatial_merge_size": int(config.vision_config.spatial_merge_size),
    }


def _canonical(cfg: HeadConfig, input_size: int) -> tuple:
    if cfg.type == "linear":
        return ("linear",)
    return ("mlp", cfg.hidden_size or input_size, cfg.activation)


def _is_peft(module: nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(module, PeftModel)
