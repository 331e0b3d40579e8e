"""DAPO dynamic sampling with refill (Yu et al. 2025, arXiv 2503.14476 §3.2): the pieces, as pure functions.

GRPO learns only from groups whose rewards differ: a group whose G rollouts all score alike has
advantage 0 and moves nothing. DAPO drops such groups after scoring and generates for further
prompts until the batch holds ``n`` groups that all carry signal (verl ``algorithm.filter_groups``,
OpenRLHF ``--dynamic_filtering``). :class:`egt.rl.trainer.JudgeGRPOTrainer` runs the loop; this
module holds what it decides with:

- :func:`uniform_groups`: which groups of a generation batch are uniform in the chosen metric, to a
  tolerance (the composite judge reward is a weighted sum of floats).
- :func:`fill_plan`: which generated groups make up the trained batch: the first ``n`` non-uniform
  groups in generation order (so in the sampler's order: the curriculum holds), and when the
  generation budget ran out first, the earliest uniform groups as padding that the trainer masks out
  of the loss (train on what there is, at the batch's fixed shape).
- :func:`split_rows` / :func:`merge_rows`: a TRL generation-batch dict as one payload per row, and
  back, re-padding the prompt (left) and completion (right) widths of rows from different rounds.

The metric (``--dynamic_sampling_metric``): ``reward`` (default) is the quantity GRPO normalises, so
"uniform" is exactly "advantage 0"; ``accuracy`` (DAPO's and verl's ``acc``) is the correctness reward
alone. They differ on a group whose accuracies agree but whose format scores differ (say all wrong,
some unparsable): ``reward`` keeps it — it still teaches the format — ``accuracy`` drops it, spending
the batch on groups that teach the verdict. Values within ``tolerance`` of each other count as equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from egt.errors import EgtError

METRICS = ("reward", "accuracy")
TOLERANCE = 1e-6  # rewards within this of each other are equal (float sums of weighted terms)

PROMPT_KEYS = ("prompt_ids", "prompt_mask")  # [B, P], left-padded
PROMPT_COMPLETION_KEYS = ("token_type_ids", "mm_token_type_ids")  # [B, P + T]: prompt part, then completion part


def uniform_groups(values: torch.Tensor, group_size: int, tolerance: float = TOLERANCE) -> torch.Tensor:
    """``[B / G]`` bool: the groups whose ``values`` span at most ``tolerance`` (max − min).

    Args:
        values: ``[B]`` one metric value per rollout, ``B = n_groups · group_size``, groups consecutive.
        group_size: G.
        tolerance: the largest spread still called uniform (≥ 0).

    A group holding a NaN is not uniform (NaN spreads compare false), so it is never dropped silently.
    """
    if values.dim() != 1 or values.numel() % group_size:
        raise ValueError(f"values must have shape [B] with B divisible by {group_size}, got {tuple(values.shape)}")
    grouped = values.reshape(-1, group_size).to(torch.float64)  # [n, G]
    spread = grouped.max(dim=1).values - grouped.min(dim=1).values  # [n]
    return spread <= tolerance


def fill_plan(uniform_per_round: Sequence[Sequence[bool]], target: int) -> list[tuple[int, int, bool]]:
    """The groups of the trained batch: ``[(round, group, trained), …]``, ``target`` of them.

    ``uniform_per_round[r][g]`` says whether group g of generation round r was uniform. The batch is
    the first ``target`` non-uniform groups in generation order (round, then group), each with
    ``trained=True``. If the rounds hold fewer, the remaining slots are the earliest uniform groups,
    ``trained=False`` (the trainer masks them out of the loss); the batch always has ``target``
    slots, in generation order.

    Example: rounds ``[[T, F, T], [F, T, T]]`` (T = uniform), target 3 →
    ``[(0, 1, True), (1, 0, True), (0, 0, False)]``.
    """
    kept = [(r, g) for r, flags in enumerate(uniform_per_round) for g, uniform in enumerate(flags) if not uniform]
    plan = [(r, g, True) for r, g in kept[:target]]
    if len(plan) < target:
        padding = [(r, g) for r, flags in enumerate(uniform_per_round) for g, uniform in enumerate(flags) if uniform]
        if len(plan) + len(padding) < target:
            raise ValueError(f"{len(plan) + len(padding)} groups generated, fewer than the batch's {target}")
        plan += [(r, g, False) for r, g in padding[: target - len(plan)]]
    return sorted(plan)


@dataclass(frozen=True)
class ListEntry:
    """A row's entry of a per-row list field (``num_images``, split ``pixel_values``): stays a list entry."""

    value: Any


def split_rows(output: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per row of a TRL generation batch whose pixel values are already split per row
    (``trl.trainer.utils.split_pixel_values_by_grid``): tensors indexed by row, lists by position.

    0-d tensors (``num_items_in_batch``) are left out: they describe the whole batch. A
    prompt+completion tensor (``token_type_ids``) is kept as its prompt and completion parts, so
    :func:`merge_rows` can pad each on its side. Anything not row-indexed is an error naming the key.
    """
    rows = output["completion_ids"].size(0)
    prompt_width = output["prompt_ids"].size(1)
    payloads: list[dict[str, Any]] = [{} for _ in range(rows)]
    for key, value in output.items():
        if value is None or (isinstance(value, torch.Tensor) and value.dim() == 0):
            continue
        if len(value) != rows:
            raise EgtError(f"dynamic sampling: generation-batch field {key!r} is not one entry per row; cannot regroup")
        for i in range(rows):
            if key in PROMPT_COMPLETION_KEYS:
                payloads[i][key] = (value[i, :prompt_width], value[i, prompt_width:])
            elif not isinstance(value, torch.Tensor):
                payloads[i][key] = ListEntry(value[i])
            else:
                payloads[i][key] = value[i]
    return payloads


def _pad_stack(parts: list[torch.Tensor], left: bool, value: float) -> torch.Tensor:
    """Rows of possibly different widths (dim 0 of each) → ``[n, W_max, …]``, padded on the left or right."""
    width = max(p.size(0) for p in parts)
    padded = []
    for p in parts:
        missing = width - p.size(0)
        if missing:
            fill = p.new_full((missing, *p.shape[1:]), value)
            p = torch.cat([fill, p] if left else [p, fill], dim=0)
        padded.append(p)
    return torch.stack(padded)


def merge_rows(rows: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Rows from :func:`split_rows` (any rounds, any order) → one batch dict, tensors re-padded.

    ``prompt_*`` pad on the left, every other width on the right; ids pad with ``pad_token_id``,
    ``tool_mask`` with 1 (as TRL pads it), everything else with 0. Per-row lists stay lists.
    """
    batch: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if key in PROMPT_COMPLETION_KEYS:
            prompt = _pad_stack([v[0] for v in values], left=True, value=0)
            completion = _pad_stack([v[1] for v in values], left=False, value=0)
            batch[key] = torch.cat([prompt, completion], dim=1)
        elif isinstance(values[0], ListEntry):
            batch[key] = [v.value for v in values]
        elif values[0].dim() == 0:
            batch[key] = torch.stack(values)
        else:
            pad = pad_token_id if key in ("prompt_ids", "completion_ids") else 1 if key == "tool_mask" else 0
            batch[key] = _pad_stack(values, left=key in PROMPT_KEYS, value=pad)
    return batch
