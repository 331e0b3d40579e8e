"""Prompt token ids for vLLM: one image placeholder per image (TRL issue 6294).

A Qwen2-VL-family processor expands each image's ``<|image_pad|>`` into one token per merged
patch group (``image_grid_thw.prod() / merge_size²``); the training forward needs those expanded
ids, aligned with ``pixel_values``. vLLM's offline engine (``LLM.generate`` with
``prompt_token_ids`` + ``multi_modal_data``) runs its own multimodal processor and expands every
placeholder again, so expanded ids come out corrupted (each image's first pad grows into another
full run). TRL 1.16's GRPO colocate mode hands vLLM exactly those expanded ids
(``grpo_trainer._tokenize_prompts`` → ``_generate_single_turn`` → ``VLLMGeneration.generate``);
its fix, TRL PR 6718, is not in 1.16.

:func:`collapse_image_placeholders` turns each run of the image token back into one token. The
chat template writes ``<|vision_start|><|image_pad|><|vision_end|>`` per image and the processor
only lengthens the pad, so the result is the tokenizer-only rendering of the same prompt
(tests/rl/test_vllm_prompts.py checks it against the tokenizer).
"""

from __future__ import annotations

from collections.abc import Sequence

from egt.errors import EgtError

__all__ = ["collapse_image_placeholders"]


def collapse_image_placeholders(
    ids: Sequence[int],
    image_token_id: int,
    n_images: int | None = None,
    vision_start_id: int | None = None,
    vision_end_id: int | None = None,
) -> list[int]:
    """``ids`` with every run of ``image_token_id`` replaced by a single ``image_token_id``.

    Checks, where given: there are ``n_images`` runs, and each sits between ``vision_start_id`` and
    ``vision_end_id`` — otherwise the ids are not a processor-expanded chat prompt and an
    :class:`EgtError` says so (vLLM would pair the wrong tokens with the images).
    """
    out: list[int] = []
    runs = 0
    i, n = 0, len(ids)
    while i < n:
        token = int(ids[i])
        if token != image_token_id:
            out.append(token)
            i += 1
            continue
        end = i
        while end < n and int(ids[end]) == image_token_id:
            end += 1
        before = int(ids[i - 1]) if i > 0 else None
        after = int(ids[end]) if end < n else None
        if (vision_start_id is not None and before != vision_start_id) or (
            vision_end_id is not None and after != vision_end_id
        ):
            raise EgtError(
                f"vLLM prompt: image tokens at positions {i}..{end - 1} are not inside a vision start / end pair"
            )
        out.append(image_token_id)
        runs += 1
        i = end
    if n_images is not None and runs != n_images:
        raise EgtError(f"vLLM prompt: {runs} runs of image tokens for {n_images} image(s)")
    return out
