"""Training data of RL of the judge: pairs (optionally the curation manifest's kept items) → GRPO prompts.

:func:`rl_training_data` reads the pairs, keeps the manifest's kept items in data order
(:func:`egt.curation.manifest.kept_order_keys`), shows each pair in the chosen presentation, and
builds a prompt-only ``datasets.Dataset`` with the :class:`egt.rl.curriculum.Curriculum` over its
rows. Bad input fails here, before any model is loaded: manifest ids missing from the data, a
curriculum without a manifest, an unknown presentation order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from egt.data.presentation import presentations
from egt.errors import EgtError
from egt.rl.curriculum import Curriculum


def presentation_rows(pairs, order: str, seed: int) -> list[tuple[int, bool]]:
    """``(pair_index, swapped)`` per training row, by the one presentation rule evaluation uses too
    (:func:`egt.data.presentation.presentations`): ``stored`` | ``random`` (a seeded coin per id) |
    ``both`` (each pair twice); an unknown ``order`` names the ``--order`` field."""
    return presentations(pairs, order, seed, name="order")


def build_rl_dataset(pairs, rows: Sequence[tuple[int, bool]], images_root, style: str, is_vision: bool, fit_image=None):
    """A conversational prompt-only ``datasets.Dataset`` for GRPO: ``prompt``, ``images`` (VLM),
    and the reward columns ``id``, ``preferred`` (stored-order label), ``swapped``.

    ``fit_image`` (:func:`egt.models.processors.image_resizer`) resizes each image to the size the
    judge's processor gives it, so a vLLM engine, whatever its own bounds, sees the same image tokens
    as the training forward."""
    import datasets

    from egt.judge.prompt import judge_prompt
    from egt.records import open_images

    records, images_cache = [], {}
    for index, swapped in rows:
        pair = pairs[index]
        record: dict[str, Any] = {"id": pair.id, "preferred": pair.preferred, "swapped": bool(swapped)}
        images = None
        if is_vision:
            if index not in images_cache:
                opened = open_images(pair, images_root)
                images_cache[index] = [fit_image(im) for im in opened] if fit_image else opened
            images = record["images"] = images_cache[index]
        record["prompt"] = judge_prompt(
            pair.question, pair.responses, swapped, style, None if images is None else len(images)
        )
        records.append(record)
    return datasets.Dataset.from_list(records)


@dataclass(frozen=True)
class RLTrainingData:
    """What the trainer trains on: the pairs, one dataset row per presentation, the curriculum over the rows."""

    pairs: list
    dataset: Any  # datasets.Dataset
    curriculum: Curriculum


def rl_training_data(
    data: str,
    *,
    seed: int,
    style: str,
    is_vision: bool,
    images_dir: str = "",
    limit: int = 0,
    manifest: str = "",
    curriculum: str = "sorted",
    curriculum_by: str = "",
    curriculum_stages: int = 4,
    curriculum_repeat: str = "hold",
    order: str = "random",
    fit_image=None,
) -> RLTrainingData:
    """Read ``data`` (its first ``limit`` pairs when > 0), keep the ``manifest``'s kept items, show each
    pair in presentation ``order``, build the dataset and the curriculum (fields as in
    :class:`egt.rl.config.JudgeRLArgs`)."""
    from egt.curation.manifest import kept_order_keys, manifest_path, read_manifest
    from egt.records import default_images_root, read_pairs

    pairs = read_pairs(data)
    if limit:
        pairs = pairs[:limit]
    keys_by_pair = None
    if manifest:
        positions, keys_by_pair = kept_order_keys(
            read_manifest(manifest), [p.id for p in pairs], curriculum_by, source=str(manifest_path(manifest))
        )
        pairs = [pairs[i] for i in positions]
    elif curriculum != "off":
        raise EgtError(
            f"curriculum {curriculum!r} orders by the curation manifest's entropy; "
            "pass --manifest DIR, or --curriculum off"
        )
    rows = presentation_rows(pairs, order, seed)
    dataset = build_rl_dataset(pairs, rows, images_dir or default_images_root(data), style, is_vision, fit_image)
    plan = Curriculum(
        curriculum,
        [keys_by_pair[i] for i, _ in rows] if keys_by_pair else [],
        curriculum_stages,
        ids=[pairs[i].id for i, _ in rows],
        repeat=curriculum_repeat,
    )
    return RLTrainingData(pairs, dataset, plan)
