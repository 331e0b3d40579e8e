"""The reward model inside RL (BaseReward §RL, docs/methods.md §6): a TRL reward function and the hybrid rule.

:class:`RewardModelReward` is a reward function with the signature TRL's ``GRPOTrainer`` calls —
``(prompts, completions, **kwargs) -> list[float]`` — that scores each completion with a trained
scalar reward model. GRPO passes multimodal prompts as chat messages whose user turn holds
``{"type": "image", "image": PIL}`` parts; the question and the images are read back from there
(or from the ``images`` / ``image`` dataset column).

The hybrid rule: a completion whose answer can be verified gets 1 when it is right; otherwise its
reward is ``σ(reward-model score)``. docs/methods.md §6 gives a wrong verifiable answer ``σ(score)``
too; the issue's reading (right → 1, wrong → 0) is ``wrong_gets_zero=True``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from egt.rm.collate import ScoreItem
from egt.rm.model import RewardModel
from egt.rm.scoring import score_items

# a verifier returns True (right), False (wrong) or None (nothing to verify) for one completion
Verifier = Callable[..., bool | None]


def hybrid_reward(
    scores: torch.Tensor, correct: torch.Tensor, verifiable: torch.Tensor, wrong_gets_zero: bool = False
) -> torch.Tensor:
    """Rewards ``[N]``: 1 where a verifiable answer is right, else ``σ(scores)``.

    ``scores``: ``[N]`` reward-model scores; ``correct``, ``verifiable``: ``[N]`` bool. With
    ``wrong_gets_zero``, a verifiable wrong answer gets 0 instead of ``σ(score)``.
    """
    out = torch.sigmoid(scores.float())  # [N]
    out = torch.where(verifiable & correct, torch.ones_like(out), out)
    if wrong_gets_zero:
        out = torch.where(verifiable & ~correct, torch.zeros_like(out), out)
    return out


def message_text(content: Any) -> str:
    """The text of a chat message's content (a string or a list of typed parts)."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")


def message_images(content: Any) -> list[Any]:
    if isinstance(content, str):
        return []
    return [
        part["image"]
        for part in content
        if isinstance(part, dict) and part.get("type") == "image" and part.get("image") is not None
    ]


def prompt_question_and_images(prompt: Any) -> tuple[str, list[Any]]:
    """A GRPO prompt (a string or a message list) → (question text of the last user turn, its images)."""
    if isinstance(prompt, str):
        return prompt, []
    users = [m for m in prompt if m.get("role") == "user"] or list(prompt)
    last = users[-1]
    images = [im for m in users for im in message_images(m.get("content", ""))]
    return message_text(last.get("content", "")), images


def completion_text(completion: Any) -> str:
    """A GRPO completion (a string or ``[{"role": "assistant", "content": ...}]``) → its text."""
    if isinstance(completion, str):
        return completion
    return "".join(message_text(m.get("content", "")) for m in completion if m.get("role", "assistant") == "assistant")


class RewardModelReward:
    """A GRPO reward function backed by a scalar reward model (optionally with the hybrid rule).

    ``transform``: ``sigmoid`` (rewards in (0, 1), as the hybrid rule uses) or ``raw``. With a
    ``verifier`` (called as ``verifier(completion_text, **row)`` with the dataset row's columns),
    the hybrid rule applies.
    """

    def __init__(
        self,
        model: RewardModel | str | Path,
        processor: Any = None,
        *,
        verifier: Verifier | None = None,
        transform: str = "sigmoid",
        wrong_gets_zero: bool = False,
        batch_size: int = 16,
        device: str = "auto",
        name: str = "reward_model",
    ):
        if isinstance(model, (str, Path)):
            model, processor = RewardModel.from_pretrained(model, device=device)
        if transform not in ("sigmoid", "raw"):
            raise ValueError(f"transform must be sigmoid or raw, got {transform!r}")
        if verifier is not None and transform != "sigmoid":
            raise ValueError("the hybrid rule needs transform='sigmoid'")
        self.model, self.processor = model, processor
        self.verifier = verifier
        self.transform = transform
        self.wrong_gets_zero = wrong_gets_zero
        self.batch_size = batch_size
        self.__name__ = name  # TRL logs each reward function under its __name__

    def items(
        self, prompts: Sequence[Any], completions: Sequence[Any], images: Sequence[Any] | None
    ) -> list[ScoreItem]:
        out = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            question, prompt_images = prompt_question_and_images(prompt)
            if not prompt_images and images is not None and images[i] is not None:
                prompt_images = list(images[i]) if isinstance(images[i], (list, tuple)) else [images[i]]
            out.append(ScoreItem(question, completion_text(completion), prompt_images))
        return out

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        images = kwargs.get("images", kwargs.get("image"))
        items = self.items(prompts, completions, images)
        scores = torch.tensor(score_items(self.model, self.processor, items, batch_size=self.batch_size))  # [N]
        if self.verifier is None:
            return (torch.sigmoid(scores) if self.transform == "sigmoid" else scores).tolist()
        row_keys = [k for k in kwargs if isinstance(kwargs[k], list) and len(kwargs[k]) == len(items)]
        verdicts = [self.verifier(it.response, **{k: kwargs[k][i] for k in row_keys}) for i, it in enumerate(items)]
        verifiable = torch.tensor([v is not None for v in verdicts])
        correct = torch.tensor([bool(v) for v in verdicts])
        return hybrid_reward(scores, correct, verifiable, self.wrong_gets_zero).tolist()


# ------------------------------------------------------------------------------------------------
# a verifiable colour answer (the shapes lab's: pass egt.lab.colours.NAMES as the palette)


def names_colour(text: str, colour: str, palette: Sequence[str]) -> bool:
    """Does ``text`` name ``colour`` and no other colour of ``palette``?"""
    named = {w for w in re.findall(r"[a-z]+", text.lower()) if w in set(palette)}
    return named == {colour}


def colour_verifier(palette: Sequence[str]) -> Verifier:
    """A verifier for prompts with a ``colour`` column: right iff the completion names that colour
    and no other of ``palette``; None for a row without a colour."""
    palette = tuple(palette)

    def verify(completion: str, colour: str | None = None, **_: Any) -> bool | None:
        return None if colour is None else names_colour(completion, colour, palette)

    return verify
