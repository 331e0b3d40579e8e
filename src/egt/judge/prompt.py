"""The R1-Reward judge prompt (EGT §3.1, R1-Reward arXiv 2505.02835 §3).

The user turn shows the image(s) first, then the question and the two responses, and asks for
``<think>comparative analysis</think><answer>1|2</answer>``. The wording follows R1-Reward's
instruction; a shorter ``compact`` variant keeps prompts small for the CPU tiny model.
"""

from __future__ import annotations

from typing import Any

R1_REWARD_INSTRUCTION = (
    "You are a highly skilled and impartial evaluator tasked with comparing two responses generated "
    "by a Large Multimodal Model for a given question.\n"
    "- Start with a thorough, side-by-side comparative analysis enclosed within <think> and </think> tags. "
    "Compare the two responses on their accuracy, relevance, and consistency with the image.\n"
    "- Conclude with a single numeric choice enclosed within <answer> and </answer> tags: "
    "1 if Response 1 is better, 2 if Response 2 is better. Ties are not allowed."
)

COMPACT_INSTRUCTION = (
    "Compare the two responses against the image. Reason inside <think> </think>, "
    "then answer 1 or 2 inside <answer> </answer>."
)

INSTRUCTIONS = {"r1_reward": R1_REWARD_INSTRUCTION, "compact": COMPACT_INSTRUCTION}


def judge_instruction(style: str = "r1_reward") -> str:
    try:
        return INSTRUCTIONS[style]
    except KeyError:
        raise ValueError(f"unknown prompt style {style!r}; known: {sorted(INSTRUCTIONS)}") from None


def judge_user_text(question: str, response_1: str, response_2: str, style: str = "r1_reward") -> str:
    return f"{judge_instruction(style)}\n\nQuestion: {question}\nResponse 1: {response_1}\nResponse 2: {response_2}"


def build_judge_messages(
    question: str, response_1: str, response_2: str, n_images: int = 1, style: str = "r1_reward"
) -> list[dict[str, Any]]:
    """Chat messages for one judgement, images first (``{"type": "image"}`` placeholders)."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": judge_user_text(question, response_1, response_2, style)})
    return [{"role": "user", "content": content}]


def judge_prompt(
    question: str, responses: tuple[str, str], swapped: bool, style: str, n_images: int | None
) -> list[dict[str, Any]]:
    """The user turn of one judgement as a TRL conversational ``prompt`` (SFT and GRPO datasets).

    ``responses`` in stored order, shown swapped when ``swapped``. With ``n_images`` (a VLM) the
    content is image placeholders then the text, every part carrying a ``text`` key so a
    ``datasets`` column has one schema; with ``None`` it is plain text.
    """
    a, b = responses
    r1, r2 = (b, a) if swapped else (a, b)
    if n_images is None:
        return [{"role": "user", "content": judge_user_text(question, r1, r2, style)}]
    content = build_judge_messages(question, r1, r2, n_images=n_images, style=style)[0]["content"]
    return [{"role": "user", "content": [dict(c, text=c.get("text")) for c in content]}]


def format_judge_output(reasoning: str, verdict: int) -> str:
    """The target text of a judge: ``<think>reasoning</think><answer>1|2</answer>``."""
    if verdict not in (1, 2):
        raise ValueError(f"verdict must be 1 or 2, got {verdict!r}")
    return f"<think>{reasoning}</think><answer>{verdict}</answer>"
