"""Sampling solutions (and comparisons) from any model :func:`egt.models.load.load_model` returns.

Text-only models and VLMs alike get a text-only chat: one user turn, rendered by the model's own
chat template (a VLM's processor renders string content without image placeholders), generated
through its tokenizer. Prompts are left-padded and decoded without special tokens.

Every call is seeded explicitly (``torch.manual_seed``), so a chunk of questions always yields the
same samples no matter what ran before it: this is what makes resumed runs reproduce
uninterrupted ones (see :mod:`egt.math.journal`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from egt.errors import EgtError

if TYPE_CHECKING:  # torch and transformers load only when something is generated
    from egt.models.load import LoadedModel

DEFAULT_PROMPT = "{question}"


@dataclass
class SamplingArgs:
    """How solutions are generated."""

    n_samples: int = field(default=1, metadata={"help": "Solutions per question (K); > 1 needs temperature > 0."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy; SkyMath-style sampling uses ~0.7–1.0."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling (1 = off)."})
    max_new_tokens: int = field(default=256, metadata={"help": "Longest solution generated (GSM8K needs ~256–512)."})
    batch_size: int = field(default=16, metadata={"help": "Questions per generation call (each with K samples)."})
    seed: int = field(default=0, metadata={"help": "Seed of the per-chunk sampling streams."})
    prompt_template: str = field(
        default=DEFAULT_PROMPT,
        metadata={"help": "User turn; {question} is replaced by the question. The same template is used for SFT data."},
    )

    def check(self) -> None:
        if self.n_samples < 1:
            raise EgtError(f"field 'n_samples': must be ≥ 1, got {self.n_samples}")
        if self.n_samples > 1 and self.temperature <= 0:
            raise EgtError("field 'n_samples': more than one sample per question needs --temperature > 0")
        if self.batch_size < 1:
            raise EgtError(f"field 'batch_size': must be ≥ 1, got {self.batch_size}")
        if "{question}" not in self.prompt_template:
            raise EgtError("field 'prompt_template': must contain {question}")


def question_messages(question: str, template: str = DEFAULT_PROMPT) -> list[dict]:
    """The chat turn that asks a question (shared by generation and SFT data)."""
    return [{"role": "user", "content": template.replace("{question}", question)}]


def render_prompts(loaded: LoadedModel, conversations: Sequence[list[dict]]) -> list[str]:
    """Render conversations through the model's chat template, ready for the assistant turn."""
    if (
        getattr(loaded.processor, "chat_template", None) is None
        and getattr(loaded.tokenizer, "chat_template", None) is None
    ):
        raise EgtError("the model has no chat template; math commands need a chat (instruct) model")
    return [
        loaded.processor.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True) for c in conversations
    ]


def generate_texts(
    loaded: LoadedModel,
    prompts: Sequence[str],
    *,
    n: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    seed: int = 0,
) -> list[list[str]]:
    """``n`` completions for each rendered prompt: ``[len(prompts)][n]`` strings."""
    import torch

    tokenizer = loaded.tokenizer
    tokenizer.padding_side = "left"
    enc = tokenizer(list(prompts), padding=True, return_tensors="pt", add_special_tokens=False).to(loaded.model.device)
    kwargs = dict(
        max_new_tokens=max_new_tokens,
        num_return_sequences=n,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=loaded.model.generation_config.eos_token_id or tokenizer.eos_token_id,
    )
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = loaded.model.generate(**enc, **kwargs)  # [len(prompts) * n, prompt_len + new]
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [[t.strip() for t in texts[i * n : (i + 1) * n]] for i in range(len(prompts))]


def sample_solutions(loaded: LoadedModel, questions: Sequence[str], args: SamplingArgs, seed: int) -> list[list[str]]:
    """``args.n_samples`` solutions for each question, as one seeded generation call."""
    prompts = render_prompts(loaded, [question_messages(q, args.prompt_template) for q in questions])
    return generate_texts(
        loaded,
        prompts,
        n=args.n_samples,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=seed,
    )
