"""Batch encoding and 3-D (M-RoPE) positions for Qwen2-VL / Qwen2.5-VL, vectorised.

A reward batch holds each image several times (the two responses of a pair share it), and the
stock path does per-row Python work the batch size multiplies: the processor preprocesses every
occurrence of an image, builds ``mm_token_type_ids`` row by row, and the model's
``get_rope_index`` walks every row token group by token group. For a small model these loops,
not the matrix products, dominate a batched forward. This module does the same work once per
distinct image and once per batch:

- :func:`encode_qwen_vl` preprocesses the *distinct* images only, expands the image placeholders
  as the processor does (``grid_t·grid_h·grid_w / merge²`` tokens per image) and tokenises the
  batch in one call. ``pixel_values`` holds the distinct images; ``image_grid_thw`` one row per
  occurrence (the positions need it); ``image_sources`` maps each occurrence to its distinct image.
- :func:`mrope_position_ids` computes the ``[3, B, L]`` positions of
  ``Qwen2_5_VLModel.get_rope_index`` for still images with tensor ops only: text tokens count up by
  one; an image's tokens sit at ``start + (t, h, w)`` of its merged grid and move the counter on by
  ``max(h, w)``; padding gets 0.

Both are checked against the transformers implementations in ``tests/models/test_qwen_vl.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature

QWEN_VL_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")


def is_qwen_vl_processor(processor: Any) -> bool:
    """A Qwen2-VL / Qwen2.5-VL processor (or a subclass, like the tiny model's)."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor

    return isinstance(processor, (Qwen2VLProcessor, Qwen2_5_VLProcessor)) and hasattr(
        processor.image_processor, "merge_size"
    )


def distinct_images(images: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """``(distinct, sources)``: the images in order of first occurrence (by object identity) and,
    for each position of ``images``, the index of its image in ``distinct``."""
    index: dict[int, int] = {}
    distinct: list[Any] = []
    sources = []
    for image in images:
        key = id(image)
        if key not in index:
            index[key] = len(distinct)
            distinct.append(image)
        sources.append(index[key])
    return distinct, sources


def encode_qwen_vl(
    processor: Any, texts: Sequence[str], images: Sequence[Any], *, padding_side: str = "right"
) -> BatchFeature:
    """Tokenise ``texts`` (image placeholders unexpanded, as the chat template writes them) with
    ``images`` in placeholder order; each distinct image object is preprocessed once.

    Returns ``input_ids`` / ``attention_mask`` ``[B, L]``, and with images ``pixel_values``
    (patches of the distinct images), ``image_grid_thw`` ``[n_occurrences, 3]`` and
    ``image_sources`` ``[n_occurrences]``. No ``mm_token_type_ids``: positions come from
    :func:`mrope_position_ids`.
    """
    token = processor.image_token
    counts = [text.count(token) for text in texts]
    if sum(counts) != len(images):
        raise ValueError(f"{sum(counts)} image placeholders in the texts but {len(images)} images")
    out: dict[str, torch.Tensor] = {}
    if images:
        distinct, sources = distinct_images(images)
        pixels = preprocess_images(processor.image_processor, distinct)
        grid = pixels["image_grid_thw"][sources]  # [n_occurrences, 3]
        n_tokens = (grid.prod(-1) // processor.image_processor.merge_size**2).tolist()
        expanded, k = [], 0
        for text, count in zip(texts, counts):
            parts = text.split(token)
            pieces = [parts[0]]
            for j in range(count):
                pieces += [token * n_tokens[k + j], parts[j + 1]]
            expanded.append("".join(pieces))
            k += count
        texts = expanded
        out = {"pixel_values": pixels["pixel_values"], "image_grid_thw": grid, "image_sources": torch.tensor(sources)}
    enc = processor.tokenizer(list(texts), padding=True, padding_side=padding_side, return_tensors="pt")
    return BatchFeature({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], **out})


def preprocess_images(image_processor: Any, images: Sequence[Any]) -> dict[str, torch.Tensor]:
    """``pixel_values`` and ``image_grid_thw`` of ``images``, as ``image_processor(images=images,
    return_tensors="pt")`` returns them, with the numpy work done once per group of same-size images.

    The PIL Qwen2-VL image processor (the one that runs without torchvision) rescales, normalises and
    patchifies image by image; for a batch of small images that per-image overhead outweighs the
    arithmetic. RGB PIL images that the processor would not resize (their size is already what
    ``smart_resize`` picks) are stacked by size and go through the same steps as one array; any
    other processor or image goes through ``image_processor`` unchanged. Checked against the
    processor in ``tests/models/test_qwen_vl.py``.
    """
    from transformers import Qwen2VLImageProcessorPil

    ip = image_processor
    if not (type(ip) is Qwen2VLImageProcessorPil and images and all(_unresized_rgb(ip, im) for im in images)):
        return ip(images=list(images), return_tensors="pt")
    patch, merge, temporal = ip.patch_size, ip.merge_size, ip.temporal_patch_size
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault(image.size, []).append(i)
    patches: list[np.ndarray | None] = [None] * len(images)
    grids = [None] * len(images)
    for (width, height), members in by_size.items():
        x = np.stack([np.asarray(images[i]) for i in members])  # [n, H, W, C] uint8
        if ip.do_rescale:
            x = (x.astype(np.float64) * ip.rescale_factor).astype(np.float32)
        else:
            x = x.astype(np.float32)
        if ip.do_normalize:
            x = (x - np.asarray(ip.image_mean, dtype=np.float32)) / np.asarray(ip.image_std, dtype=np.float32)
        gh, gw = height // patch, width // patch
        x = x.transpose(0, 3, 1, 2).reshape(len(members), 3, gh // merge, merge, patch, gw // merge, merge, patch)
        x = x.transpose(0, 2, 5, 3, 6, 1, 4, 7)  # [n, gh/m, gw/m, m, m, C, P, P] as the processor's patchify
        x = np.broadcast_to(x[:, :, :, :, :, :, None], (*x.shape[:6], temporal, patch, patch))
        x = x.reshape(len(members), gh * gw, 3 * temporal * patch * patch)
        for k, i in enumerate(members):
            patches[i], grids[i] = x[k], [1, gh, gw]
    return {
        "pixel_values": torch.from_numpy(np.concatenate(patches)),
        "image_grid_thw": torch.tensor(grids, dtype=torch.long),
    }


def _unresized_rgb(image_processor: Any, image: Any) -> bool:
    """An RGB PIL image whose size the processor keeps (``smart_resize`` returns it unchanged)."""
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    if not isinstance(image, Image.Image) or image.mode != "RGB":
        return False
    size, factor = image_processor.size, image_processor.patch_size * image_processor.merge_size
    if not image_processor.do_resize:
        return image.width % factor == 0 and image.height % factor == 0
    target = smart_resize(
        image.height, image.width, factor=factor, min_pixels=size.shortest_edge, max_pixels=size.longest_edge
    )
    return target == (image.height, image.width)


def mrope_position_ids(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    image_grid_thw: torch.Tensor | None,
    *,
    image_token_id: int,
    spatial_merge_size: int,
) -> torch.Tensor:
    """Qwen2-VL / Qwen2.5-VL 3-D positions of a batch with still images, ``[3, B, L]`` long.

    ``input_ids`` / ``attention_mask`` ``[B, L]`` (any padding side); ``image_grid_thw``
    ``[n_images, 3]`` in the order the images' tokens appear (row by row), or ``None``.
    Equals ``get_rope_index(...)[0]`` (video, with its time spacing, is not handled).
    """
    valid = attention_mask.bool()
    increment = valid.long()  # [B, L] each text token moves the position on by one
    offsets = torch.zeros(3, *input_ids.shape, dtype=torch.long, device=input_ids.device)
    is_image = (input_ids == image_token_id) & valid
    if image_grid_thw is not None and is_image.any():
        grid = image_grid_thw.to(input_ids.device).long()
        t, h, w = grid[:, 0], grid[:, 1] // spatial_merge_size, grid[:, 2] // spatial_merge_size  # [n]
        sizes = t * h * w  # image tokens per image
        if int(sizes.sum()) != int(is_image.sum()):
            raise ValueError(f"{int(is_image.sum())} image tokens but the grids describe {int(sizes.sum())}")
        starts = sizes.cumsum(0) - sizes
        k = torch.arange(int(sizes.sum()), device=grid.device) - starts.repeat_interleave(sizes)  # index in its image
        hw, w_tok = (h * w).repeat_interleave(sizes), w.repeat_interleave(sizes)
        offsets[:, is_image] = torch.stack([k // hw, (k // w_tok) % h.repeat_interleave(sizes), k % w_tok])
        last = k == sizes.repeat_interleave(sizes) - 1  # an image moves the counter on after its last token
        increment[is_image] = torch.where(last, torch.maximum(h, w).repeat_interleave(sizes), 0)
    start = increment.cumsum(-1) - increment  # [B, L] position before each token: an image's start for its tokens
    return ((start + offsets) * valid).long()


def vision_layout(image_grid_thw: torch.Tensor, vision_config: Any) -> dict[str, torch.Tensor]:
    """The vision tower's data-dependent index tensors for a batch of images, worked out once per
    distinct grid and tiled, as ``get_image_features`` keyword arguments.

    Transformers computes them with a Python loop over every image (``vision_utils``:
    ``get_vision_position_ids``, ``get_vision_window_index``) unless they are passed in precomputed
    (``image_position_ids``, ``image_window_index``, ``image_cu_window_seqlens``); here each grid
    ``(t, h, w)`` goes through those same functions once per process, and the batch's tensors are
    the per-image pieces concatenated with their offsets. The window index exists for Qwen2.5-VL
    (its config has ``window_size``), not for Qwen2-VL.
    """
    grids = [tuple(g) for g in image_grid_thw.tolist()]
    merge = int(vision_config.spatial_merge_size)
    window = getattr(vision_config, "window_size", None)
    pieces = [_grid_layout(g, merge, window, getattr(vision_config, "patch_size", None)) for g in grids]
    out = {"image_position_ids": torch.cat([p[0] for p in pieces])}
    if window is not None:
        windows, cu, merged_offset, patch_offset = [], [torch.zeros(1, dtype=torch.int32)], 0, 0
        for (t, h, w), (_, index, cu_one) in zip(grids, pieces):
            windows.append(index + merged_offset)
            cu.append(cu_one[1:] + patch_offset)
            merged_offset += t * (h // merge) * (w // merge)
            patch_offset += t * h * w
        out["image_window_index"] = torch.cat(windows)
        out["image_cu_window_seqlens"] = torch.cat(cu)
    return {k: v.to(image_grid_thw.device) for k, v in out.items()}


@functools.lru_cache(maxsize=256)
def _grid_layout(
    grid: tuple[int, int, int], merge: int, window: int | None, patch: int | None
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """One image's ``(position_ids, window_index, cu_window_seqlens)`` from transformers' own helpers."""
    from transformers.vision_utils import get_vision_position_ids, get_vision_window_index

    one = torch.tensor([grid])
    positions = get_vision_position_ids(one, merge)
    if window is None:
        return positions, None, None
    index, cu = get_vision_window_index(one, spatial_merge_size=merge, window_size=window, patch_size=patch)
    return positions, index, cu
