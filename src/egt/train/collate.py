"""Prompt-completion SFT examples tokenised once per dataset, and a collator that only pads.

TRL's ``DataCollatorForVisionLanguageModeling`` renders the chat template, tokenises and runs the
image processor on every batch of every epoch. Here every example goes through the processor once,
as that collator processes it (chat template via TRL's ``apply_chat_template``; the prompt with its
images, then the completion, both without special tokens), and :class:`PaddingCollator` only
right-pads the token columns and concatenates the image tensors. Labels are ``-100`` on padding
and, with completion-only loss (TRL's default for prompt-completion data), on the prompt: a batch
equals the one TRL's collator builds.

Where we depart from TRL: an example longer than ``max_length`` is *skipped* (and counted, with its
index), not truncated. Truncation keeps the start, so it cuts the completion — the judgement the
example exists to teach — and, when the image tokens alone exceed ``max_length``, cuts through them
and the model fails with "Image features and image tokens do not match". Bound the image size
(``--max_pixels``) or raise ``max_length`` to keep such items.

Image tensors live beside the dataset (``PretokenizedSFT.features``, indexed by its ``row``
column), not in Arrow, so a batch costs a ``torch.cat`` rather than a list conversion. When they
would not fit in ``pixel_cache_mb`` the images are kept instead, and only the image processor runs
per batch (no chat template, no tokeniser).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

# Per-token columns a processor may return beside ``input_ids``. The completion part gets
# ``mm_token_type_ids`` 0 and the completion's own ``token_type_ids`` (as TRL's collator builds
# them); padding gets 0.
TOKEN_COLUMNS = ("token_type_ids", "mm_token_type_ids")


@dataclass
class PretokenizedSFT:
    dataset: Any  # datasets.Dataset: row, input_ids, completion_mask[, token_type_ids, mm_token_type_ids]
    features: list[dict[str, Any]] = field(default_factory=list)  # per row: image tensors, or {"images": [...]}
    cached_pixels: bool = True
    too_long: list[int] = field(default_factory=list)  # indices of the examples skipped for max_length


def render_prompt_completion(example: dict, processor) -> tuple[Any, Any, list]:
    """``(prompt text, completion text, images)`` of one example, as TRL's vision collator renders it."""
    from trl.data_utils import apply_chat_template, is_conversational, prepare_multimodal_messages

    images = example.get("images")
    if images is None and example.get("image") is not None:
        images = [example["image"]]
    images = list(images or [])
    prompt, completion = example["prompt"], example["completion"]
    if is_conversational({"prompt": prompt, "completion": completion}):
        rendered = apply_chat_template(
            {
                "prompt": prepare_multimodal_messages(prompt, images=images),
                "completion": prepare_multimodal_messages(completion),
            },
            processor,
        )
        prompt, completion = rendered["prompt"], rendered["completion"]
    return prompt, completion, images


def _split_sizes(
    key: str, value: torch.Tensor, per_example_images: list[list], grid: torch.Tensor | None
) -> list[int] | None:
    """Rows of a batched image tensor that belong to each example, or ``None`` if unknown."""
    counts = [len(ims) for ims in per_example_images]
    if grid is not None and key == "pixel_values" and value.shape[0] == int(grid.prod(-1).sum()):
        patches = grid.prod(-1).tolist()  # Qwen-VL style: the patches of all images, concatenated
        sizes, start = [], 0
        for n in counts:
            sizes.append(int(sum(patches[start : start + n])))
            start += n
        return sizes
    if value.shape[0] == sum(counts):
        return counts
    if value.shape[0] == len(counts):
        return [1] * len(counts)
    return None


def tokenize_prompt_completion_batch(
    examples: Sequence[dict], processor, max_length: int | None = None
) -> list[tuple[dict[str, list[int]], dict[str, torch.Tensor]]]:
    """Tokenise vision prompt-completion examples: per example ``(token columns, image tensors)``, or
    ``(None, {})`` for an example longer than ``max_length``.

    One processor call for the prompts and one for the completions of the whole list; where the
    processor's image tensors cannot be split back per example, each example is processed alone.
    """
    rendered = [render_prompt_completion(ex, processor) for ex in examples]
    images = [r[2] for r in rendered]
    kw = dict(return_tensors="pt", add_special_tokens=False, padding=True, padding_side="right")
    p = processor(images=None if all(not ims for ims in images) else images, text=[r[0] for r in rendered], **kw)
    c = processor(text=[r[1] for r in rendered], **kw)
    skip = {"input_ids", "attention_mask", *TOKEN_COLUMNS}
    tensors = {k: v for k, v in p.items() if k not in skip and isinstance(v, torch.Tensor)}
    splits = {k: _split_sizes(k, v, images, p.get("image_grid_thw")) for k, v in tensors.items()}
    if len(examples) > 1 and any(s is None for s in splits.values()):
        return [item for ex in examples for item in tokenize_prompt_completion_batch([ex], processor, max_length)]
    split = {k: torch.split(v, splits[k]) if splits[k] is not None else (v,) for k, v in tensors.items()}
    out = []
    for i in range(len(examples)):
        n_p, n_c = int(p["attention_mask"][i].sum()), int(c["attention_mask"][i].sum())
        tokens = {
            "input_ids": p["input_ids"][i, :n_p].tolist() + c["input_ids"][i, :n_c].tolist(),
            "completion_mask": [0] * n_p + [1] * n_c,
        }
        if "token_type_ids" in p:
            tokens["token_type_ids"] = p["token_type_ids"][i, :n_p].tolist() + c["token_type_ids"][i, :n_c].tolist()
        if "mm_token_type_ids" in p:
            tokens["mm_token_type_ids"] = p["mm_token_type_ids"][i, :n_p].tolist() + [0] * n_c
        if max_length is not None and len(tokens["input_ids"]) > max_length:
            out.append((None, {}))  # skipped, never truncated (module doc)
            continue
        out.append((tokens, {k: parts[i] for k, parts in split.items()}))
    return out


def pretokenize_sft_examples(
    examples: Sequence[dict],
    processor,
    max_length: int | None = None,
    pixel_cache_mb: float = 2048,
    chunk_size: int = 64,
) -> PretokenizedSFT:
    """Tokenise every vision prompt-completion example once (rows of a ``datasets.Dataset`` or dicts).

    Pixel values are kept while all of them fit in ``pixel_cache_mb`` (estimated from the first
    chunk); beyond that the images are kept and run through the image processor per batch.
    """
    import datasets

    columns: dict[str, list] = {"row": []}
    features: list[dict[str, Any]] = []
    too_long: list[int] = []
    cache = None
    n = len(examples)
    for start in range(0, n, chunk_size):
        chunk = [examples[i] for i in range(start, min(n, start + chunk_size))]
        processed = tokenize_prompt_completion_batch(chunk, processor, max_length)
        if cache is None:
            size = sum(t.numel() * t.element_size() for _, ts in processed for t in ts.values())
            cache = size / len(chunk) * n <= pixel_cache_mb * 2**20
        for j, (tokens, image_tensors) in enumerate(processed):
            if tokens is None:
                too_long.append(start + j)
                continue
            columns["row"].append(len(features))
            for k, v in tokens.items():
                columns.setdefault(k, []).append(v)
            features.append(image_tensors if cache else {"images": render_prompt_completion(chunk[j], processor)[2]})
    return PretokenizedSFT(datasets.Dataset.from_dict(columns), features, cached_pixels=bool(cache), too_long=too_long)


@dataclass
class PaddingCollator:
    """Right-pads pre-tokenised examples, concatenates their image tensors and builds the labels.

    ``features[row]`` holds an example's image tensors (concatenated along dim 0 in batch order,
    as the processor does for a batch), or ``{"images": [...]}`` for ``image_processor`` to run on.
    Without ``features`` the examples are text only.
    """

    pad_token_id: int
    features: list[dict[str, Any]] | None = None
    image_processor: Any = None
    completion_only_loss: bool = True

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lengths = [len(ex["input_ids"]) for ex in examples]
        n, width = len(examples), max(lengths)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((n, width), dtype=torch.long)
        loss_mask = torch.zeros((n, width), dtype=torch.bool)
        extra = {k: torch.zeros((n, width), dtype=torch.long) for k in TOKEN_COLUMNS if k in examples[0]}
        for i, (ex, length) in enumerate(zip(examples, lengths)):
            input_ids[i, :length] = torch.as_tensor(ex["input_ids"], dtype=torch.long)
            attention_mask[i, :length] = 1
            if self.completion_only_loss:
                loss_mask[i, :length] = torch.as_tensor(ex["completion_mask"], dtype=torch.bool)
            else:
                loss_mask[i, :length] = True
            for k, t in extra.items():
                t[i, :length] = torch.as_tensor(ex[k], dtype=torch.long)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, **extra}
        if self.features is not None:
            batch.update(self._images([ex["row"] for ex in examples]))
        batch["labels"] = input_ids.masked_fill(~loss_mask, -100)
        return batch

    def _images(self, rows: list[int]) -> dict[str, torch.Tensor]:
        feats = [self.features[r] for r in rows]
        if any("images" in f for f in feats):
            images = [im for f in feats for im in f["images"]]
            return dict(self.image_processor(images=images, return_tensors="pt")) if images else {}
        keys = [k for k in feats[0] if all(k in f for f in feats)]
        return {k: torch.cat([f[k] for f in feats], dim=0) for k in keys}
