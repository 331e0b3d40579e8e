"""The generation-time recorder of ``egt score``: per-row seeded sampling that records token entropies.

How the entropies come from the generation pass itself. :class:`RolloutSampler` is a logits
processor inside ``model.generate``: at each step it receives the float32 ``[R, V]`` next-token
logits z that generate is about to pick from, records ``H_t = token_entropy(z / τ)`` (``[R]``),
and picks the token. No second forward, and no ``[R, T, V]`` is ever kept:
``output_logits=True`` would hold every step's float32 ``[R, V]`` until the end (T·R·V·4 bytes:
40 GB for Qwen's V = 151,936 at 512 tokens × 128 rollouts), against docs/methods.md §2's memory rule.

Which distribution's entropy: ``softmax(z / τ)``, z being the logits after the checkpoint's own
non-sampling processors (e.g. a repetition penalty in its generation config; none for the tiny
judge) and with no top-k / top-p truncation — exactly the distribution each token is sampled
from. (transformers' ``output_scores`` would be after its warpers; with top-k/top-p on they are
truncated, which understates the policy's uncertainty.)

Departure from plain ``generate(do_sample=True)`` [our choice]: sampling is Gumbel-max —
``argmax(z/τ + g)``, g ~ Gumbel(0, 1) i.i.d., is an exact sample from ``softmax(z/τ)`` — with one
``torch.Generator`` per (seed, item id, rollout), driven through greedy decoding. transformers
samples all rows from one global stream, so a row's tokens would depend on its batch mates; here an
item's rollouts depend only on (seed, id, k), so resuming after a crash or reordering the data
does not change them. Batches are fixed slices of the data and a resumed batch is re-run whole
(with the batch size the run started with, whatever ``--batch_size`` the rerun passes), so a
resumed file equals an uninterrupted one bit for bit; two fresh runs with different batch sizes
differ only at float round-off of the batched forward. The K rollouts of an item are K rows of the batch
(the same prompt repeated, as ``num_return_sequences=K`` would expand it — which greedy decoding
refuses), so an item's rollouts may also be shown in different orders (``order=random``).

The run that uses it (batches, resume, the scores file): :mod:`egt.pipelines.scoring.run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import LogitsProcessor, LogitsProcessorList

from egt.entropy.tokens import DEFAULT_CHUNK_SIZE, token_entropy
from egt.judge.generative import GenerationSettings, encode_batch, generation_kwargs

__all__ = ["PieceDecoder", "RolloutSampler", "Rollouts", "eos_ids", "generate_rollouts"]


class RolloutSampler(LogitsProcessor):
    """Per-row seeded sampling at temperature τ, recording each step's token entropy.

    Used with greedy decoding: for logits z ``[R, V]`` it returns ``z/τ + g`` with Gumbel noise g
    drawn from row r's own generator, so generate's argmax is a sample from ``softmax(z/τ)``.
    ``entropies`` collects ``token_entropy(z/τ)`` ``[R]`` per step (docs/methods.md §2).

    Args:
        seeds: one generator seed per row (:func:`egt.data.presentation.rollout_seed`).
        temperature: τ > 0.
        record_entropy: False gives the same tokens without the entropy work (the bench's baseline).
    """

    def __init__(
        self,
        seeds: Sequence[int],
        temperature: float = 1.0,
        record_entropy: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ):
        self.seeds = list(seeds)
        self.temperature = float(temperature)
        self.record_entropy = record_entropy
        self.chunk_size = chunk_size
        self.entropies: list[Tensor] = []  # one float32 [R] per step
        self._generators: list[torch.Generator] | None = None

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        if scores.shape[0] != len(self.seeds):
            raise ValueError(f"RolloutSampler has {len(self.seeds)} seeds for {scores.shape[0]} rows")
        if self._generators is None:
            self._generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        z = scores.div(self.temperature)  # [R, V] float32: the sampling distribution's logits
        if self.record_entropy:
            self.entropies.append(token_entropy(z, self.chunk_size))  # [R]
        noise = torch.empty_like(z)  # [R, V]
        for row, generator in zip(noise, self._generators):
            row.exponential_(generator=generator)  # E ~ Exp(1); −log E ~ Gumbel(0, 1)
        return z.sub_(noise.clamp_(min=torch.finfo(noise.dtype).tiny).log_())

    def step_entropies(self, steps: int) -> Tensor:
        """``[R, steps]`` float32 on the CPU: the entropy of every generated position."""
        if not self.entropies:
            return torch.zeros(len(self.seeds), steps)
        return torch.stack(self.entropies[:steps], dim=1).cpu()  # extra deferred steps are dropped


class PieceDecoder:
    """Decoded text of each token id, cached: the pieces the entropy statistics align to."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, ids: Sequence[int]) -> list[str]:
        out = []
        for i in ids:
            piece = self.cache.get(i)
            if piece is None:
                piece = self.cache[i] = self.tokenizer.decode([i], skip_special_tokens=True)
            out.append(piece)
        return out


@dataclass
class Rollouts:
    """The generated rows of one batch: ids ``[R, T]``, lengths ``[R]`` (up to and including EOS), H ``[R, T]``."""

    ids: Tensor
    lengths: list[int]
    entropies: Tensor


def eos_ids(kwargs: dict) -> set[int]:
    """The EOS token ids among generate's ``kwargs`` (``eos_token_id``: one id or a list)."""
    eos = kwargs.get("eos_token_id")
    return set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}


@torch.no_grad()
def generate_rollouts(
    loaded,
    requests: Sequence,
    seeds: Sequence[int],
    *,
    temperature: float,
    max_new_tokens: int,
    style: str,
    record_entropy: bool = True,
) -> Rollouts:
    """One ``generate`` call over ``requests`` (one row each), sampled per row by :class:`RolloutSampler`."""
    enc = encode_batch(loaded, requests, style)
    sampler = RolloutSampler(seeds, temperature, record_entropy)
    kwargs = generation_kwargs(loaded, GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0))
    out = loaded.model.generate(**enc, **kwargs, logits_processor=LogitsProcessorList([sampler]))
    ids = out[:, enc["input_ids"].shape[1] :].cpu()  # [R, T]
    eos = torch.tensor(sorted(eos_ids(kwargs)), dtype=ids.dtype)
    is_eos = torch.isin(ids, eos)  # [R, T]
    steps = ids.shape[1]
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, steps)  # [R]
    return Rollouts(ids=ids, lengths=first.tolist(), entropies=sampler.step_entropies(steps))
