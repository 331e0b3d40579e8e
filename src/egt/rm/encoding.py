"""What a reward model hands its backbone besides the tokens: positions and image features.

- Positions (:func:`position_ids`). The reward is pooled at the last real token, so a row's
  positions must not depend on its padding: a text backbone counts positions from the mask, and a
  Qwen2-VL-family backbone gets its 3-D (M-RoPE) positions from
  :func:`egt.models.qwen_vl.mrope_position_ids`, one vectorised pass per batch (checked against
  transformers' ``get_rope_index`` in ``tests/models/test_qwen_vl.py``). Other VLMs work theirs
  out themselves.
- Image features (:func:`encode_images_once`). A batch shows each image several times (the two
  responses of a pair); each distinct image goes through the vision tower once and its features
  are handed to the backbone per occurrence (``mm_encoder_outputs``). :func:`images_of_rows`
  keeps the occurrences of some rows only (prefix sharing: the rows whose prefix runs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on each row's first real token (left padding safe), ``[B, L]``."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def mrope_settings(config: Any) -> dict[str, int] | None:
    """``{image_token_id, spatial_merge_size}`` of a Qwen2-VL-family config; ``None`` for any other model."""
    from egt.models.qwen_vl import QWEN_VL_MODEL_TYPES

    if getattr(config, "model_type", None) not in QWEN_VL_MODEL_TYPES:
        return None
    return {
        "image_token_id": int(config.image_token_id),
        "spatial_merge_size": int(config.vision_config.spatial_merge_size),
    }


def position_ids(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    image_grid_thw: torch.Tensor | None,
    *,
    mrope: dict[str, int] | None,
    is_vision: bool,
) -> torch.Tensor | None:
    """Positions of a padded batch ``[B, L]``: ``[3, B, L]`` for the Qwen2-VL family (``mrope`` from
    :func:`mrope_settings`), ``[B, L]`` for a text backbone, ``None`` for other VLMs."""
    if mrope:
        from egt.models.qwen_vl import mrope_position_ids

        return mrope_position_ids(
            input_ids,
            attention_mask,
            image_grid_thw,
            image_token_id=mrope["image_token_id"],
            spatial_merge_size=mrope["spatial_merge_size"],
        )
    return None if is_vision else positions_from_mask(attention_mask)


def encode_images_once(base: nn.Module, inputs: dict[str, Any], sources: torch.Tensor) -> dict[str, Any]:
    """``inputs`` with ``pixel_values`` (the distinct images) replaced by their features.

    ``base`` is the backbone's base model (``Qwen2_5_VLModel``, …); ``sources`` ``[n_occurrences]``
    maps each image occurrence to its distinct image (:func:`egt.models.qwen_vl.encode_qwen_vl`).
    One vision pass per distinct image; the features go to the backbone per occurrence as
    ``mm_encoder_outputs``. ``image_grid_thw`` (per occurrence) stays: the 3-D positions need it.
    The vision tower's index tensors come precomputed from :func:`egt.models.qwen_vl.vision_layout`.
    """
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    from egt.models.qwen_vl import vision_layout

    inputs = dict(inputs)
    grid = inputs["image_grid_thw"]  # [n_occurrences, 3]
    sources = sources.tolist()
    first: dict[int, int] = {}
    for occurrence, s in enumerate(sources):
        first.setdefault(s, occurrence)
    distinct_grid = grid[[first[s] for s in range(len(first))]]  # [n_distinct, 3]
    layout = vision_layout(distinct_grid, base.config.vision_config)  # index tensors, once per grid
    features = base.get_image_features(
        inputs.pop("pixel_values"), distinct_grid, return_dict=True, **layout
    ).pooler_output  # per distinct image
    inputs["mm_encoder_outputs"] = {
        "image": BaseModelOutputWithPooling(pooler_output=tuple(features[s] for s in sources))
    }
    return inputs


def image_rows(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, tokens_per_image: torch.Tensor, image_token_id: int
) -> torch.Tensor:
    """``[n_images]`` the row each image occurrence sits in; occurrences are in row-major token order
    and take ``tokens_per_image`` ``[n_images]`` placeholder tokens each."""
    where = ((input_ids == image_token_id) & attention_mask.bool()).nonzero()  # [n_tokens, 2] row-major
    starts = tokens_per_image.cumsum(0) - tokens_per_image
    return where[starts, 0]


def images_of_rows(
    base: nn.Module,
    inputs: dict[str, Any],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    rows: torch.Tensor,
    mrope: dict[str, int],
) -> dict[str, Any]:
    """Image features (:func:`encode_images_once`) for the image occurrences of ``rows`` only, with
    ``image_grid_thw`` cut to match; ``inputs`` holds ``pixel_values``, ``image_grid_thw`` and
    ``image_sources`` of the whole batch ``input_ids`` / ``attention_mask`` ``[B, L]``."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    grid = inputs["image_grid_thw"]
    inputs = dict(inputs)
    inputs = encode_images_once(base, inputs, inputs.pop("image_sources"))
    tokens_per_image = grid.prod(-1) // mrope["spatial_merge_size"] ** 2
    occurrence_rows = image_rows(input_ids, attention_mask, tokens_per_image, mrope["image_token_id"])
    keep = torch.isin(occurrence_rows, rows.to(occurrence_rows.device)).tolist()
    features = inputs["mm_encoder_outputs"]["image"].pooler_output
    inputs["mm_encoder_outputs"] = {
        "image": BaseModelOutputWithPooling(pooler_output=tuple(f for f, k in zip(features, keep, strict=True) if k))
    }
    inputs["image_grid_thw"] = grid[torch.tensor(keep, device=grid.device)]
    return inputs
