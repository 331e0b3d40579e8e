"""The generative reasoning judge: batched generation of ``<think>…</think><answer>k</answer>``.

Works for any model :func:`egt.models.load.load_model` returns: a VLM gets the images first in
the user turn (R1-Reward's layout), a text-only model gets the text alone. The prompt style used
in training is stored beside the checkpoint (``egt_judge.json``) and picked up here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from egt.data.presentation import rollout_seed
from egt.judge.base import OK, PARSE_FAILURE, Judgement, JudgeRequest
from egt.judge.parse import parse_verdict
from egt.judge.prompt import build_judge_messages, judge_user_text
from egt.models.generation import sampling_kwargs, sampling_record
from egt.models.load import LoadedModel

JUDGE_META_FILE = "egt_judge.json"


def read_judge_meta(model_dir: str | Path) -> dict:
    """The judge settings saved with a checkpoint (prompt style, max new tokens), if any."""
    path = Path(model_dir) / JUDGE_META_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def chat_prompts(loaded: LoadedModel, requests: Sequence[JudgeRequest], style: str) -> list[str]:
    """Render each request through the model's chat template, ready for generation."""
    prompts = []
    for r in requests:
        r1, r2 = r.shown
        if loaded.is_vision:
            messages = build_judge_messages(r.pair.question, r1, r2, n_images=len(r.images), style=style)
        else:
            messages = [{"role": "user", "content": judge_user_text(r.pair.question, r1, r2, style)}]
        prompts.append(loaded.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return prompts


def encode_batch(loaded: LoadedModel, requests: Sequence[JudgeRequest], style: str) -> dict[str, torch.Tensor]:
    """Tokenise a batch of judge prompts (left-padded) with their images."""
    prompts = chat_prompts(loaded, requests, style)
    if loaded.is_vision:
        images = [im for r in requests for im in r.images]
        enc = loaded.processor(text=prompts, images=images or None, padding=True, return_tensors="pt")
    else:
        enc = loaded.processor(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
    return enc.to(loaded.model.device)


@dataclass
class GenerationSettings:
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0


def generation_kwargs(loaded: LoadedModel, settings: GenerationSettings, num_return_sequences: int = 1) -> dict:
    """``generate`` keywords: our one sampling definition (:mod:`egt.models.generation`) at the
    settings' temperature, whatever the checkpoint's generation config ships."""
    tok = loaded.tokenizer
    kwargs = dict(
        max_new_tokens=settings.max_new_tokens,
        pad_token_id=tok.pad_token_id,
        eos_token_id=loaded.model.generation_config.eos_token_id or tok.eos_token_id,
        num_return_sequences=num_return_sequences,
        **sampling_kwargs(loaded.model, loaded.is_vision, settings.temperature),
    )
    if settings.temperature > 0 and settings.top_p < 1.0:
        kwargs["top_p"] = settings.top_p
    return kwargs


class GenerativeJudge:
    """A reasoning judge backed by a causal (V)LM; ``judge`` generates one verdict per request.

    ``backend``: None generates with ``loaded.model.generate`` (the transformers path); a
    :class:`egt.entropy.backends.RolloutBackend` (``--backend vllm``) generates instead, one request
    per judgement seeded by ``rollout_seed(seed, pair id, swapped)`` (greedy at temperature 0), and
    the completions are decoded and parsed exactly as on the transformers path.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        name: str,
        style: str = "r1_reward",
        settings: GenerationSettings | None = None,
        batch_size: int = 32,
        backend=None,
        seed: int = 0,
    ):
        self.loaded = loaded
        self.name = name
        self.style = style
        self.settings = settings or GenerationSettings()
        self.batch_size = batch_size
        self.reads_images = loaded.is_vision
        self.backend = backend
        self.seed = seed

    @property
    def sampling(self) -> dict:
        """The distribution the judge samples from (the eval report's ``sampling``)."""
        engine = "transformers" if self.backend is None else getattr(self.backend, "name", "backend")
        return sampling_record(self.loaded.model, self.loaded.is_vision, self.settings.temperature, engine)

    @torch.no_grad()
    def generate(self, requests: Sequence[JudgeRequest]) -> list[str]:
        if self.backend is not None:
            seeds = [rollout_seed(self.seed, r.pair.id, int(r.swapped)) for r in requests]
            gen = self.backend.generate(
                requests,
                seeds,
                temperature=self.settings.temperature,
                max_new_tokens=self.settings.max_new_tokens,
                style=self.style,
                record_entropy=False,
            )
            return [
                self.loaded.tokenizer.decode(gen.ids[i, :n].tolist(), skip_special_tokens=True)
                for i, n in enumerate(gen.lengths)
            ]
        enc = encode_batch(self.loaded, requests, self.style)
        out = self.loaded.model.generate(**enc, **generation_kwargs(self.loaded, self.settings))
        completions = out[:, enc["input_ids"].shape[1] :]
        return self.loaded.tokenizer.batch_decode(completions, skip_special_tokens=True)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        out = []
        for start in range(0, len(requests), self.batch_size):
            for text in self.generate(requests[start : start + self.batch_size]):
                verdict = parse_verdict(text)
                if verdict is None:
                    out.append(Judgement(choice=None, status=PARSE_FAILURE, text=text))
                else:
                    out.append(Judgement(choice=verdict.choice, status=OK, text=text))
        return out
