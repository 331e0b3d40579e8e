"""Turn (question, images, response) into model inputs: one chat per response, batched.

A reward model scores one response at a time, rendered through the processor's own chat template:
the user turn holds the images then the question, the assistant turn the response, and the text
ends at the assistant turn's end token (the token the model pools, see :mod:`egt.rm.model`).

The batch is encoded in one call, so pixel inputs keep the processor's own layout: Qwen2-VL /
Qwen2.5-VL flatten every image's patches into one ``pixel_values`` with an ``image_grid_thw`` per
image (nothing to pad) — and, through :func:`egt.models.qwen_vl.encode_qwen_vl`, hold each
distinct image once (the responses of a pair share theirs) with ``image_sources`` saying which
placeholder uses which; other processors are called as they are. Text-only items (no images) sit
in the same batch as multimodal ones; a batch without any image carries no pixel inputs at all.

A preference batch of ``B`` pairs is ``2B`` sequences: the ``B`` chosen ones, then the ``B``
rejected ones (``torch.chunk(rewards, 2)`` splits them back). With ``lm_labels`` the batch also
carries next-token targets on the chosen responses — all their tokens (``response``) or only the
span where the chosen response differs from the rejected one (``differing``) — for the optional
language-modelling regulariser of :mod:`egt.rm.trainer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from egt.errors import EgtError
from egt.models.qwen_vl import encode_qwen_vl, is_qwen_vl_processor
from egt.records import PreferencePair, open_images


@dataclass
class ScoreItem:
    """One response to score: the question, its opened images (PIL), the response text."""

    question: str
    response: str
    images: list[Any] = field(default_factory=list)


def reward_messages(question: str, response: str, n_images: int = 0) -> list[dict[str, Any]]:
    """User turn = images + question, assistant turn = response (plain strings when text-only)."""
    if n_images:
        user: Any = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": question}]
        assistant: Any = [{"type": "text", "text": response}]
    else:
        user, assistant = question, response
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def render_text(processor: Any, item: ScoreItem, reads_images: bool) -> str:
    return render_texts(processor, [item], reads_images)[0]


def render_texts(processor: Any, items: Sequence[ScoreItem], reads_images: bool) -> list[str]:
    """The chat text of each item, rendered in one (batched) template call."""
    if not items:
        return []
    chats = [reward_messages(it.question, it.response, len(it.images) if reads_images else 0) for it in items]
    texts = processor.apply_chat_template(chats, tokenize=False)
    return [text.rstrip() for text in texts]  # end on the turn's end token (Qwen's template adds a newline after it)


def encode_items(
    processor: Any,
    items: Sequence[ScoreItem],
    *,
    reads_images: bool,
    max_length: int | None = None,
    padding_side: str = "right",
) -> dict[str, torch.Tensor]:
    """Tokenise ``items`` into one padded batch (with pixel inputs when the model reads images).

    ``max_length`` truncates text-only backbones from the left, keeping the response end that
    the model pools; a VLM's sequences are never truncated (that would cut image tokens).
    """
    texts = render_texts(processor, items, reads_images)
    if reads_images:
        images = [im for it in items for im in it.images]
        if is_qwen_vl_processor(processor):  # each distinct image preprocessed once, see egt.models.qwen_vl
            return encode_qwen_vl(processor, texts, images, padding_side=padding_side)
        return processor(
            text=texts, images=images or None, padding=True, padding_side=padding_side, return_tensors="pt"
        )
    kwargs: dict[str, Any] = {}
    if max_length:
        kwargs = {"truncation": True, "max_length": max_length}
        processor.truncation_side = "left"
    enc = processor(
        texts, padding=True, padding_side=padding_side, return_tensors="pt", add_special_tokens=False, **kwargs
    )
    enc.pop("token_type_ids", None)
    return enc


@dataclass
class RewardExample:
    """One training pair and where its images live."""

    pair: PreferencePair
    images_root: str | Path | None = None
    source: str = ""


class RewardCollator:
    """Collate :class:`RewardExample` s into ``2B`` sequences (chosen first) plus ``margin`` ``[B]``.

    ``margin`` is ``meta['margin']`` where a pair carries one, else the ``default_margin``; it is
    only added when some pair has a non-zero margin.
    """

    def __init__(
        self,
        processor: Any,
        *,
        reads_images: bool,
        max_length: int | None = None,
        default_margin: float = 0.0,
        lm_labels: str | None = None,
    ):
        if lm_labels not in (None, "response", "differing"):
            raise ValueError(f"lm_labels must be None, 'response' or 'differing', got {lm_labels!r}")
        self.processor = processor
        self.reads_images = reads_images
        self.max_length = max_length
        self.default_margin = default_margin
        self.lm_labels = lm_labels

    def items_for(self, example: RewardExample) -> tuple[ScoreItem, ScoreItem]:
        pair = example.pair
        try:
            images = open_images(pair, example.images_root) if self.reads_images else []
        except EgtError as e:
            raise EgtError(f"{example.source or 'data'}: {e}") from None
        chosen, rejected = pair.responses[pair.preferred], pair.responses[pair.rejected]
        return ScoreItem(pair.question, chosen, images), ScoreItem(pair.question, rejected, images)

    def __call__(self, examples: Sequence[RewardExample]) -> dict[str, torch.Tensor]:
        pairs_of_items = [self.items_for(ex) for ex in examples]
        items = [c for c, _ in pairs_of_items] + [r for _, r in pairs_of_items]  # [chosen..., rejected...]
        batch = dict(encode_items(self.processor, items, reads_images=self.reads_images, max_length=self.max_length))
        margins = [float(ex.pair.meta.get("margin", self.default_margin)) for ex in examples]
        if any(margins):
            batch["margin"] = torch.tensor(margins, dtype=torch.float32)  # [B]
        if self.lm_labels:
            n = len(examples)
            ids, mask = batch["input_ids"], batch["attention_mask"]
            if self.lm_labels == "differing" and (self.reads_images or not self.max_length):
                # untruncated rows share the prompt, so the differing span already lies in the response
                labels = keep_differing_span(ids[:n].masked_fill(mask[:n] == 0, -100), ids, mask)
            else:
                labels = self.response_labels(ids[:n], mask[:n], items[:n])
                if self.lm_labels == "differing":
                    labels = keep_differing_span(labels, ids, mask)
            batch["lm_labels"] = labels
        return batch

    def token_lengths(self, texts: list[str], items: Sequence[ScoreItem]) -> torch.Tensor:
        """Untruncated token counts of ``texts`` (image placeholders expanded as the processor does)."""
        if self.reads_images:
            images = [im for it in items for im in it.images]
            enc = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        else:
            enc = self.processor(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        return enc["attention_mask"].sum(dim=1)  # [B]

    def response_labels(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, items: Sequence[ScoreItem]
    ) -> torch.Tensor:
        """``[B, L]`` next-token targets on the response tokens of right-padded rows; −100 elsewhere.

        The response is the last ``len(full) − len(prompt)`` real tokens of each row, the prompt
        being the user turn rendered with the generation prompt — so left truncation is harmless.
        """
        n_images = [len(it.images) if self.reads_images else 0 for it in items]
        prompts = [
            self.processor.apply_chat_template(
                reward_messages(it.question, it.response, k)[:1], tokenize=False, add_generation_prompt=True
            )
            for it, k in zip(items, n_images)
        ]
        lengths = attention_mask.sum(dim=1)  # [B] real tokens per row (after any truncation)
        full = (
            lengths
            if (self.reads_images or not self.max_length)
            else self.token_lengths([render_text(self.processor, it, False) for it in items], items)
        )
        response = (full - self.token_lengths(prompts, items)).clamp(min=1)  # [B]
        positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)  # [B, L]
        inside = (positions >= (lengths - response)[:, None]) & (positions < lengths[:, None])
        return torch.where(inside, input_ids, torch.full_like(input_ids, -100))


def keep_differing_span(labels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Keep the targets of each chosen row only where it differs from its rejected row.

    ``labels`` ``[B, L]`` (chosen rows); ``input_ids`` / ``attention_mask`` ``[2B, L]``, right-padded,
    chosen then rejected. The span is what lies between the longest common prefix and the longest
    common suffix of the two token sequences (at least the last differing token is kept).
    """
    n = labels.shape[0]
    out = torch.full_like(labels, -100)
    for i in range(n):
        chosen = input_ids[i, : int(attention_mask[i].sum())]
        rejected = input_ids[n + i, : int(attention_mask[n + i].sum())]
        shortest = min(len(chosen), len(rejected))
        same = (chosen[:shortest] == rejected[:shortest]).long()
        prefix = int(same.cumprod(0).sum())
        same_end = (chosen.flip(0)[:shortest] == rejected.flip(0)[:shortest]).long()
        suffix = min(int(same_end.cumprod(0).sum()), shortest - prefix)
        start = min(prefix, len(chosen) - 1)  # a chosen row that is a prefix of the rejected keeps its last token
        end = max(len(chosen) - suffix, start + 1)
        out[i, start:end] = labels[i, start:end]
    return out
