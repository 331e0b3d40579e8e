"""Prefix sharing for reward scoring: a prompt's responses share the forward pass of their prompt.

The two responses of a preference pair (or the G completions of one prompt in RL) are scored as
separate sequences that begin with the same tokens: the chat template, the image, the question,
often the first words of the answer. Scoring them apart runs that common prefix through the
backbone once per response. Here the backbone runs it once per *group* of rows that share it.
Two layouts, the same rewards (up to float rounding; positions always come from the full rows):

- **packed** (one pass; attention implementations that take a 4-D mask: ``sdpa``, ``eager``):
  each group becomes one row ``[prefix | rest of row a | rest of row b | …]`` with a mask that
  lets a rest token see the prefix and the earlier tokens of its own rest only::

      rows   [N, L]  right-padded, groups g(i)  →  packed [G, Lp], mask [G, 1, Lp, Lp]

- **cached** (two passes; any attention implementation, flash attention included): the prefixes
  run first, their keys and values (a ``DynamicCache``) are copied to every row of the group
  (``Cache.reorder_cache`` with repeated indices), then only each row's rest runs on top::

      prefix [G, P]  each group's common prefix  →  one forward, keys/values cached
      rest   [N, C]  row i's tokens p(i) .. n_i−1  →  one forward over the copied cache

Prefix sharing is one switch: :func:`shared_prefix_rewards` (what
:func:`egt.rm.scoring.score_items` calls when ``share_prefix`` is on) picks the layout from the
backbone's attention implementation and falls back to the plain forward whenever sharing cannot
apply or would save too little; :func:`plan_prefix`, :func:`split_rows` and :func:`packed_layout`
are the pure index maths under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from egt.rm.encoding import images_of_rows

if TYPE_CHECKING:
    from egt.rm.model import RewardModel

# attention implementations that take a custom 4-D mask: the packed layout needs one
PACKABLE_ATTENTION = ("sdpa", "eager")
LAYOUTS = ("packed", "cached")


@dataclass
class PrefixPlan:
    """How a right-padded batch of ``N`` rows splits into shared prefixes and per-row rests.

    ``leaders`` ``[G]``: the row whose prefix stands for each group; ``slot`` ``[N]``: each row's
    group (an index into ``leaders``); ``prefix_len`` ``[N]``: the shared prefix length of each
    row's group, at most the row's length − 1 so every row keeps a token of its own to pool (0
    when the group shares nothing; the caller then runs the rows as they are).
    """

    leaders: torch.Tensor
    slot: torch.Tensor
    prefix_len: torch.Tensor

    @property
    def saved_tokens(self) -> int:
        """Token positions the backbone does not run thanks to sharing (0 when no group has 2 rows)."""
        return int(self.prefix_len.sum() - self.prefix_len[self.leaders].sum())


def group_slots(keys: Sequence[object]) -> torch.Tensor:
    """``[N]`` group index of each row: rows with equal ``keys`` form one group, in first-seen order."""
    index: dict[object, int] = {}
    return torch.tensor([index.setdefault(k, len(index)) for k in keys], dtype=torch.long)


def plan_prefix(input_ids: torch.Tensor, attention_mask: torch.Tensor, slot: torch.Tensor) -> PrefixPlan:
    """The longest prefix each group's rows have in common, from the tokens themselves.

    ``input_ids`` / ``attention_mask`` ``[N, L]`` right-padded; ``slot`` ``[N]`` from :func:`group_slots`.
    Rows grouped together whose texts turn out to differ early simply share less. Rows of a group
    must show the same images, though: image placeholder tokens are alike whatever the image, so
    the tokens alone cannot tell two images apart (:func:`egt.rm.scoring.prompt_key` groups by
    image identity).
    """
    n_groups = int(slot.max()) + 1 if len(slot) else 0
    slot = slot.to(input_ids.device)
    first = torch.full((n_groups,), len(slot), dtype=torch.long, device=slot.device)
    leaders = first.scatter_reduce(0, slot, torch.arange(len(slot), device=slot.device), reduce="amin")  # [G]
    lead = leaders[slot]  # [N] each row's leader
    valid = attention_mask.bool()
    same = (input_ids == input_ids[lead]) & valid & valid[lead]  # [N, L]
    common = same.long().cumprod(dim=1).sum(dim=1)  # [N] common prefix with the leader
    lengths = valid.sum(dim=1)  # [N]
    cap = torch.minimum(common, lengths - 1)  # every row keeps its last token out of the prefix
    group_len = torch.full((n_groups,), input_ids.shape[1], dtype=torch.long, device=slot.device)
    group_len = group_len.scatter_reduce(0, slot, cap, reduce="amin")  # [G]
    return PrefixPlan(leaders=leaders, slot=slot, prefix_len=group_len[slot])


def split_rows(
    values: torch.Tensor, plan: PrefixPlan, lengths: torch.Tensor, pad_value: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prefix, rest)`` of a per-token tensor ``values`` ``[..., N, L]`` (ids, positions, …).

    ``prefix`` ``[..., G, P]``: the leaders' first ``prefix_len`` tokens, ``P`` the longest prefix;
    ``rest`` ``[..., N, C]``: each row's tokens from ``prefix_len`` to its length, right-padded
    with ``pad_value``, ``C`` the longest rest.
    """
    prefix_mask, rest_mask = split_masks(plan, lengths)  # [G, P], [N, C]
    prefix = values[..., plan.leaders, : prefix_mask.shape[1]]
    prefix = torch.where(prefix_mask.bool(), prefix, torch.full_like(prefix, pad_value))
    index = plan.prefix_len[:, None] + torch.arange(rest_mask.shape[1], device=values.device)  # [N, C]
    index = index.clamp(max=values.shape[-1] - 1).expand(*values.shape[:-2], -1, -1)
    rest = torch.where(rest_mask.bool(), values.gather(-1, index), torch.full_like(index, pad_value))
    return prefix, rest


def split_masks(plan: PrefixPlan, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prefix_mask [G, P], rest_mask [N, C])``: the 0/1 padding masks of :func:`split_rows`'s parts."""
    group_len = plan.prefix_len[plan.leaders]
    prefix_mask = (torch.arange(int(group_len.max()), device=lengths.device) < group_len[:, None]).long()
    rest_len = lengths - plan.prefix_len
    rest_mask = (torch.arange(int(rest_len.max()), device=lengths.device) < rest_len[:, None]).long()
    return prefix_mask, rest_mask


@dataclass
class PackedLayout:
    """Where each token of a right-padded batch goes in the packed layout (one row per group).

    Token ``(src_row[k], src_col[k])`` of the batch lands at ``(dst_row[k], dst_col[k])`` of the
    packed ``[G, width]`` batch; ``segment`` ``[G, width]`` is 0 on a prefix, ``1 + i`` on row
    ``i``'s rest and −1 on padding; ``last`` ``[N]`` is each row's last token in the packed row.
    """

    src_row: torch.Tensor
    src_col: torch.Tensor
    dst_row: torch.Tensor
    dst_col: torch.Tensor
    segment: torch.Tensor
    last: torch.Tensor

    def pack(self, values: torch.Tensor, pad_value: int = 0) -> torch.Tensor:
        """``values`` ``[..., N, L]`` → ``[..., G, width]``."""
        out = torch.full((*values.shape[:-2], *self.segment.shape), pad_value, dtype=values.dtype, device=values.device)
        out[..., self.dst_row, self.dst_col] = values[..., self.src_row, self.src_col]
        return out

    def attention_mask(self, dtype: torch.dtype) -> torch.Tensor:
        """Additive ``[G, 1, width, width]`` mask: 0 where a query may attend, the dtype's minimum
        elsewhere. Causal; a prefix token is seen by its whole row, a rest token by its own rest;
        padding queries see the row's first token (so no softmax row is empty)."""
        seg = self.segment
        width = seg.shape[1]
        index = torch.arange(width, device=seg.device)
        causal = index[None, :] <= index[:, None]  # [q, k]
        query, key = seg[:, :, None], seg[:, None, :]  # [G, q, 1], [G, 1, k]
        allowed = causal & (key >= 0) & ((key == 0) | (key == query))
        allowed |= (query < 0) & (index == 0)  # padding rows: any one key will do, their output is unused
        mask = torch.zeros(allowed.shape, dtype=dtype, device=seg.device)
        return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def packed_layout(plan: PrefixPlan, lengths: torch.Tensor) -> PackedLayout:
    """The packed layout of a batch whose rows have ``lengths`` ``[N]``, under ``plan``."""
    device = lengths.device
    n_groups = len(plan.leaders)
    group_len = plan.prefix_len[plan.leaders]  # [G]
    rest_len = lengths - plan.prefix_len  # [N]
    # offset of each row's rest after its group's prefix: the rests of earlier rows of the group
    order = torch.sort(plan.slot, stable=True).indices
    before = rest_len[order].cumsum(0) - rest_len[order]  # exclusive running total, groups in a run
    first_of_group = torch.full((n_groups,), len(order), dtype=torch.long, device=device).scatter_reduce(
        0, plan.slot[order], torch.arange(len(order), device=device), reduce="amin"
    )
    offset = torch.empty_like(rest_len)
    offset[order] = before - before[first_of_group[plan.slot[order]]]
    width = int(
        (group_len + torch.zeros(n_groups, dtype=torch.long, device=device).index_add_(0, plan.slot, rest_len)).max()
    )

    g, t = (torch.arange(int(group_len.max()), device=device) < group_len[:, None]).nonzero(as_tuple=True)
    i, j = (torch.arange(int(rest_len.max()), device=device) < rest_len[:, None]).nonzero(as_tuple=True)
    rest_col = group_len[plan.slot[i]] + offset[i] + j
    segment = torch.full((n_groups, width), -1, dtype=torch.long, device=device)
    segment[g, t] = 0
    segment[plan.slot[i], rest_col] = 1 + i
    return PackedLayout(
        src_row=torch.cat([plan.leaders[g], i]),
        src_col=torch.cat([t, plan.prefix_len[i] + j]),
        dst_row=torch.cat([g, plan.slot[i]]),
        dst_col=torch.cat([t, rest_col]),
        segment=segment,
        last=plan.prefix_len + offset + rest_len - 1,
    )


# ------------------------------------------------------------------------------------------------
# running the passes


def shared_prefix_rewards(
    model: RewardModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    slot: torch.Tensor,
    *,
    min_saved_tokens: int = 0,
    layout: str | None = None,
    **inputs: Any,
) -> torch.Tensor:
    """Rewards ``[B]`` of a right-padded batch whose rows sharing a ``slot`` (``[B]``, see
    :func:`group_slots`) run their common prefix through the backbone once; equal to ``model(...)``
    up to float rounding.

    ``layout``: ``"packed"`` (the default for ``sdpa`` / ``eager`` attention) or ``"cached"`` (the
    default otherwise, e.g. flash attention). Runs the plain forward instead when sharing would
    save fewer than ``min_saved_tokens`` token positions (the packed mask and row bookkeeping cost
    something; nothing shared at all always falls back), when an image lies outside a shared
    prefix, or for backbones without :attr:`~egt.rm.model.RewardModel.can_share_prefix`.
    """
    from transformers import DynamicCache

    plan = plan_prefix(input_ids, attention_mask, slot)
    lengths = attention_mask.sum(dim=1)  # [B]
    image_id = model.mrope["image_token_id"] if model.mrope else None
    beyond = torch.arange(input_ids.shape[1], device=input_ids.device) >= plan.prefix_len[:, None]  # [B, L]
    has_pixels = inputs.get("pixel_values") is not None
    if (
        not model.can_share_prefix
        or plan.saved_tokens < max(1, min_saved_tokens)
        or int(plan.prefix_len.min()) < 1
        or (has_pixels and "image_sources" not in inputs)
        or (image_id is not None and bool(((input_ids == image_id) & beyond).any()))
    ):
        return model(input_ids, attention_mask, **inputs)
    inputs.pop("return_loss", None)
    inputs.pop("mm_token_type_ids", None)
    grid = inputs.get("image_grid_thw")
    positions = model.position_ids(input_ids, attention_mask, grid)  # of the full rows: every layout keeps them
    if has_pixels:  # a group's prefix holds its images: the leaders' occurrences only
        inputs = images_of_rows(model.base(), inputs, input_ids, attention_mask, plan.leaders, model.mrope)
    elif grid is not None:
        inputs.pop("image_grid_thw")
    layout = layout or ("packed" if model.attn_implementation in PACKABLE_ATTENTION else "cached")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'packed' or 'cached', got {layout!r}")
    if layout == "packed":  # one pass, [prefix | rest | rest …] per group
        packed = packed_layout(plan, lengths)
        hidden = model.run_base(
            packed.pack(input_ids),
            packed.attention_mask(model.head_dtype),
            position_ids=packed.pack(positions),
            **inputs,
        ).last_hidden_state  # [G, Lp, h]
        return model.rewards_from_pooled(hidden[plan.slot, packed.last])
    prefix_ids, rest_ids = split_rows(input_ids, plan, lengths)  # two passes through a copied cache
    prefix_pos, rest_pos = split_rows(positions, plan, lengths)
    prefix_mask, rest_mask = split_masks(plan, lengths)
    cache = model.run_base(
        prefix_ids, prefix_mask, position_ids=prefix_pos, past_key_values=DynamicCache(), use_cache=True, **inputs
    ).past_key_values
    cache.reorder_cache(plan.slot)  # [G, …] → [B, …]: each row gets its group's keys and values
    hidden = model.run_base(
        rest_ids,
        torch.cat([prefix_mask[plan.slot], rest_mask], dim=1),
        position_ids=rest_pos,
        past_key_values=cache,
        use_cache=True,
    ).last_hidden_state  # [B, C, h]
    return model.rewards_from_hidden(hidden, rest_mask)
