"""The reward model inside RL: the hybrid rule, GRPO-style calls, the lab's answer check."""

from __future__ import annotations

import math

import pytest
import torch

from egt.lab.colours import NAMES
from egt.records import open_images
from egt.rm.collate import ScoreItem
from egt.rm.head import HeadConfig
from egt.rm.model import RewardModel
from egt.rm.rl import (
    RewardModelReward,
    colour_verifier,
    completion_text,
    hybrid_reward,
    names_colour,
    prompt_question_and_images,
)
from egt.rm.scoring import score_items


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_hybrid_rule_by_hand():
    """right → 1; wrong → σ(score) (docs/methods.md §6) or 0 (wrong_gets_zero); unverifiable → σ(score)."""
    scores = torch.tensor([2.0, -1.0, 0.5, -3.0])
    correct = torch.tensor([True, False, False, True])
    verifiable = torch.tensor([True, True, False, False])
    out = hybrid_reward(scores, correct, verifiable)
    assert out.tolist() == pytest.approx([1.0, sigmoid(-1.0), sigmoid(0.5), sigmoid(-3.0)])
    out = hybrid_reward(scores, correct, verifiable, wrong_gets_zero=True)
    assert out.tolist() == pytest.approx([1.0, 0.0, sigmoid(0.5), sigmoid(-3.0)])


def test_names_colour():
    assert names_colour("The square at the top is red.", "red", NAMES)
    assert not names_colour("It is red or orange.", "red", NAMES)
    assert not names_colour("It is blue.", "red", NAMES)
    assert not names_colour("", "red", NAMES)
    assert names_colour("It is red or orange.", "red", ["red", "blue"])  # orange is not in this palette
    verifier = colour_verifier(NAMES)
    assert verifier("It is green.", colour="green") is True
    assert verifier("It is green or red.", colour="green") is False
    assert verifier("It is green.") is None


def test_prompt_and_completion_parsing():
    image = object()
    prompt = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "What colour?"}]}
    ]
    assert prompt_question_and_images(prompt) == ("What colour?", [image])
    assert prompt_question_and_images("plain") == ("plain", [])
    assert completion_text([{"role": "assistant", "content": "It is red."}]) == "It is red."
    assert completion_text("raw") == "raw"


def test_reward_function_matches_the_model_and_applies_the_hybrid_rule(lab, lab_pairs, vl_backbone):
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("mlp"), device="cpu", for_training=False)
    pairs = lab_pairs[:3]
    images = [open_images(p, lab) for p in pairs]
    prompts = [
        [{"role": "user", "content": [{"type": "image", "image": im[0]}, {"type": "text", "text": p.question}]}]
        for p, im in zip(pairs, images)
    ]
    completions = [[{"role": "assistant", "content": p.responses[0]}] for p in pairs]
    expected = score_items(
        model, processor, [ScoreItem(p.question, p.responses[0], im) for p, im in zip(pairs, images)]
    )
    reward = RewardModelReward(model, processor)
    assert reward.__name__ == "reward_model"
    assert reward(prompts, completions) == pytest.approx([sigmoid(s) for s in expected], abs=1e-6)
    raw = RewardModelReward(model, processor, transform="raw")
    # images may also come from the dataset column, with a text-only prompt
    text_prompts = [[{"role": "user", "content": p.question}] for p in pairs]
    assert raw(text_prompts, completions, images=images) == pytest.approx(expected, abs=1e-6)
    hybrid = RewardModelReward(model, processor, verifier=colour_verifier(NAMES))
    colours = [p.meta["colour"] for p in pairs]
    out = hybrid(prompts, completions, colour=colours, trainer_state=None)
    for value, p, s in zip(out, pairs, expected):
        right = names_colour(p.responses[0], p.meta["colour"], NAMES)
        assert value == pytest.approx(1.0 if right else sigmoid(s), abs=1e-6)
