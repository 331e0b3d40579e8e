"""Teacher-forced token entropies of given completions: one batched forward, no generation (docs/methods.md §2).

``egt score`` records each rollout's token entropies inside ``generate`` (:mod:`egt.pipelines.scoring.run`).
This module measures the same quantity for completions that already exist — the rollouts of a
scores file under another checkpoint (``egt score --rescore``), or rollouts sampled by an engine
that returns only top-k log-probs (a vLLM backend) — with one no-grad forward over prompt +
completion:

1. The prompts are encoded exactly as scoring encodes them (:func:`egt.judge.generative.encode_batch`,
   left-padded, images included); the completions are right-padded, attention 0 past each row's
   length.
2. The backbone (``model.base_model``; the model's LM head is *not* run) is called twice, as
   ``generate`` calls it: the prompt fills a KV cache, then the completion's first T−1 tokens run
   on it in one call, with generate's own position ids (:func:`completion_hidden`). The prompt's
   last hidden state and the continuation's give ``[R, T, h]``, row t predicting completion token t.
3. ``token_entropy_from_hidden`` turns those rows into float32 entropies ``[R, T]``
   ``chunk_size`` rows at a time, through a float32 copy of the LM head (``head_dtype``): the only
   ``[*, V]`` tensors alive are one chunk's — never a float32 ``[R, T, V]``.

Which distribution: ``softmax(z / τ)``, z the logits after the non-sampling logits processors that
``generate`` would apply with scoring's settings (``generation_kwargs`` with greedy decoding: e.g. a
``repetition_penalty`` or ``suppress_tokens`` in the checkpoint's generation config — the same z
:class:`egt.entropy.sampling.RolloutSampler` sees). They are read from the model's own
``_get_logits_processor`` (a private transformers API; an error says so if it changes). With none
(the tiny judge; most checkpoints) the chunked path above runs as is; with some, the head and the
processors run one completion position at a time over ``[R, V]`` (what generate itself holds per
step), fed the same left-padded prefix ids generate feeds them.

Precision. In float32 the result equals the generation-time entropies up to the round-off of a
full forward against an incremental KV-cache decode (tests: ≤ 1e-5 on the tiny judge). In bf16 the
backbone runs in bf16 but the head and softmax run in float32 (``head_dtype=torch.float32``,
default), which is *more* exact than generation's entropies (generate rounds the logits to the
model's dtype before its float32 upcast); ``head_dtype=None`` reproduces generation's rounding.

Measured (CPU only, tiny untrained judge, float32; ``bench/teacher_forced_entropy.py``, 8 items × 4
rollouts × ≤ 64 tokens): max difference to the generation-time entropies 9.5e-7, cost 0.17× of the
generation. Nothing here has been run on a GPU or against vLLM.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from transformers import LogitsProcessorList, SuppressTokensLogitsProcessor

from egt.entropy.tokens import DEFAULT_CHUNK_SIZE, token_entropy, token_entropy_from_hidden
from egt.errors import EgtError
from egt.judge.generative import GenerationSettings, encode_batch, generation_kwargs
from egt.models.compat import require_tested_transformers

__all__ = ["completion_hidden", "generation_processors", "pad_completions", "rollout_entropies"]


def generation_processors(loaded, kwargs: dict, input_ids: Tensor):
    """The logits processors ``model.generate(**kwargs)`` builds for ``input_ids`` (no custom ones).

    Empty for the tiny judge. Uses transformers' private ``_prepare_generation_config`` /
    ``_get_logits_processor`` (5.x signatures).
    """
    model = loaded.model
    require_tested_transformers("teacher-forced entropies (generate's logits processors)")
    try:
        config, _ = model._prepare_generation_config(None, **kwargs)
        return model._get_logits_processor(
            config,
            input_ids_seq_length=input_ids.shape[1],
            encoder_input_ids=input_ids,
            device=input_ids.device,
            model_kwargs={},
        )
    except (AttributeError, TypeError) as e:  # pragma: no cover - a transformers API change
        raise EgtError(
            f"teacher-forced entropies: cannot read generate's logits processors from this transformers "
            f"version ({e}); the entropies would not be of the sampled distribution"
        ) from None


def pad_completions(
    completions: Sequence[Sequence[int]] | Tensor, pad_id: int, lengths: Sequence[int] | None = None
) -> tuple[Tensor, list[int]]:
    """``[R, T]`` int64 ids (right-padded with ``pad_id``) and each row's length."""
    if isinstance(completions, Tensor):
        ids = completions.to(torch.long).cpu()
        lens = list(lengths) if lengths is not None else [ids.shape[1]] * ids.shape[0]
        return ids, [int(n) for n in lens]
    rows = [list(map(int, c)) for c in completions]
    lens = list(lengths) if lengths is not None else [len(r) for r in rows]
    width = max([len(r) for r in rows] + [1])
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return ids, [int(n) for n in lens]


def _float_head(model, head_dtype: torch.dtype | None) -> tuple[Tensor, Tensor | None]:
    head = model.get_output_embeddings()
    weight, bias = head.weight.detach(), getattr(head, "bias", None)
    if head_dtype is not None:
        weight = weight.to(head_dtype)  # [V, h]; a copy only when the model is not in head_dtype
        bias = None if bias is None else bias.detach().to(head_dtype)
    return weight, None if bias is None else bias.detach().float()


@torch.no_grad()
def completion_hidden(model, enc: dict, ids: Tensor, keep: Tensor) -> Tensor:
    """Final hidden states ``[R, T, h]`` whose row t predicts completion token t (model dtype).

    Two backbone calls, as ``generate`` makes them: the prompt (with its images) fills a KV cache,
    then the completion's first T−1 tokens run on it in one call. Position ids are generate's own
    (``_prepare_position_ids_for_generation`` on the prompt — Qwen2-VL's 3-D rope positions
    included — then +1 per token), so left padding and images are placed exactly as in sampling.
    (One forward over prompt + completion would not do for a VLM: an image placeholder token the
    judge happened to *generate* would be taken for an image slot.)
    """
    backbone = model.base_model
    if backbone is model:
        raise EgtError(f"teacher-forced entropies: {type(model).__name__} has no separate backbone (base_model)")
    prompt_ids = enc["input_ids"]  # [R, P]
    extra = {k: v for k, v in enc.items() if k != "input_ids"}
    require_tested_transformers("teacher-forced entropies (generate's position ids)")
    try:
        positions = model._prepare_position_ids_for_generation(prompt_ids, dict(extra))  # [..., R, P]
    except (AttributeError, TypeError) as e:  # pragma: no cover - a transformers API change
        raise EgtError(f"teacher-forced entropies: cannot read generate's position ids ({e})") from None
    first = backbone(input_ids=prompt_ids, position_ids=positions, use_cache=True, **extra)
    last = first.last_hidden_state[:, -1:]  # [R, 1, h]: predicts completion token 0
    steps = ids.shape[1]
    if steps <= 1:
        return last[:, :steps]
    step = torch.arange(1, steps, device=positions.device, dtype=positions.dtype)  # [T−1]
    next_positions = positions[..., -1:] + step  # [..., R, T−1]
    mask = torch.cat([extra["attention_mask"], keep[:, : steps - 1].to(extra["attention_mask"].dtype)], 1)
    rest = backbone(
        input_ids=ids[:, : steps - 1],
        attention_mask=mask,
        position_ids=next_positions,
        past_key_values=first.past_key_values,
        use_cache=True,
    ).last_hidden_state  # [R, T−1, h]
    return torch.cat([last, rest], 1)


@torch.no_grad()
def rollout_entropies(
    loaded,
    requests: Sequence,
    completions: Sequence[Sequence[int]] | Tensor,
    *,
    temperature: float,
    style: str,
    lengths: Sequence[int] | None = None,
    max_new_tokens: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    head_dtype: torch.dtype | None = torch.float32,
    encoded: dict | None = None,
) -> Tensor:
    """Float32 token entropies ``[R, T]`` of completion tokens under ``softmax(z / τ)`` (module doc).

    Args:
        loaded: an :class:`egt.models.load.LoadedModel` (model, processor, tokenizer).
        requests: one :class:`egt.judge.base.JudgeRequest` per row (prompt, presentation, images).
        completions: the completion token ids, ``[R, T]`` or one list per row (no prompt).
        temperature: τ > 0, the sampling temperature of the rollouts.
        style: the judge prompt style the rollouts were generated with.
        lengths: tokens to score per row (default: all of a list row / the full width); entropies past
            a row's length are 0.
        max_new_tokens: passed to the processor construction (as scoring passes it); 0 = T.
        chunk_size: rows per LM-head chunk (``token_entropy_from_hidden``).
        head_dtype: dtype of the LM head copy (float32 default); None = the model's own dtype.
        encoded: the prompts already encoded by ``encode_batch`` (skips re-encoding).

    Returns:
        float32 ``[R, T]`` on the CPU.
    """
    if not temperature > 0:
        raise EgtError(f"temperature must be > 0, got {temperature}")
    model = loaded.model
    enc = dict(encoded if encoded is not None else encode_batch(loaded, requests, style))
    device = enc["input_ids"].device
    pad_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    ids, lens = pad_completions(completions, pad_id, lengths)  # [R, T]
    if ids.shape[0] != enc["input_ids"].shape[0]:
        raise ValueError(f"{ids.shape[0]} completions for {enc['input_ids'].shape[0]} prompts")
    rows, steps = ids.shape
    keep = torch.arange(steps)[None, :] < torch.tensor(lens)[:, None]  # [R, T]
    ids, keep = ids.to(device), keep.to(device)
    rows_h = completion_hidden(model, enc, ids, keep)  # [R, T, h]
    prompt_ids = enc["input_ids"]
    prompt = prompt_ids.shape[1]
    full_ids = torch.cat([prompt_ids, ids], 1)  # [R, P+T]: the prefixes the processors see
    weight, bias = _float_head(model, head_dtype)

    kwargs = generation_kwargs(
        loaded, GenerationSettings(max_new_tokens=max_new_tokens or max(steps, 1), temperature=0.0)
    )
    processors = generation_processors(loaded, kwargs, prompt_ids)
    suppressing = [p for p in processors if isinstance(p, SuppressTokensLogitsProcessor)]
    if suppressing:  # position-independent (a VLM's image token): a −inf bias, so the chunked path still runs
        bias = torch.zeros(weight.shape[0], dtype=torch.float32, device=weight.device) if bias is None else bias.clone()
        for p in suppressing:
            bias[p.suppress_tokens.to(bias.device)] = float("-inf")
        processors = LogitsProcessorList([p for p in processors if not isinstance(p, SuppressTokensLogitsProcessor)])
    if len(processors) == 0:
        return token_entropy_from_hidden(
            rows_h, weight, chunk_size, mask=keep, lm_head_bias=bias, temperature=temperature
        ).cpu()
    out = torch.zeros(rows, steps, dtype=torch.float32, device=device)  # [R, T]
    for t in range(steps):  # one position at a time: processors see the prefix generate would give them
        z = (rows_h[:, t].to(weight.dtype) @ weight.t()).float()  # [R, V] float32
        if bias is not None:
            z.add_(bias)
        z = processors(full_ids[:, : prompt + t], z)
        out[:, t] = token_entropy(z / temperature, chunk_size).masked_fill_(~keep[:, t], 0.0)
    return out.cpu()
