"""One sampling definition for scoring, evaluation and RL, whatever the checkpoint ships.

A checkpoint's ``generation_config.json`` sets defaults that ``generate`` fills into every call that
leaves them unset: Qwen2.5-VL-7B-Instruct ships ``repetition_penalty 1.05``, ``top_k 1``,
``top_p 0.001`` and ``temperature 0.1``. TRL's GRPO sets all of these explicitly (no penalty), so if
scoring inherited the penalty, the entropy that curates the pool and orders the curriculum would be
that of another distribution than the policy RL samples from. So:

- :func:`reset_generation_config` replaces a loaded model's generation config by one that keeps the
  checkpoint's token ids (BOS / EOS / pad) and nothing else, and returns what it dropped (recorded in
  the scores header and the eval report as ``ignored_from_checkpoint``).
- :func:`sampling_kwargs` is our definition, set explicitly on every ``generate`` call: the given
  temperature, no top-k / top-p truncation, no repetition penalty, and — as TRL's GRPO — a VLM's
  image token suppressed (a sampled image token would have no image features behind it).
- :func:`sampling_record` is the record of it that goes into the scores header and eval report.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DISTRIBUTION_KEYS", "reset_generation_config", "sampling_kwargs", "sampling_record", "suppressed_tokens"]

# GenerationConfig fields that change the next-token distribution (or which tokens may be drawn).
DISTRIBUTION_KEYS = (
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "epsilon_cutoff",
    "eta_cutoff",
    "top_h",
    "repetition_penalty",
    "encoder_repetition_penalty",
    "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size",
    "bad_words_ids",
    "sequence_bias",
    "suppress_tokens",
    "begin_suppress_tokens",
    "min_length",
    "min_new_tokens",
    "renormalize_logits",
    "exponential_decay_length_penalty",
    "guidance_scale",
    "watermarking_config",
)
TOKEN_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
IGNORED_ATTR = "_egt_ignored_generation_config"


def reset_generation_config(model: Any) -> dict[str, Any]:
    """Give ``model`` a generation config with only the checkpoint's token ids; return the dropped
    distribution settings that differ from transformers' defaults (``{}`` for the tiny judge)."""
    from transformers import GenerationConfig

    shipped = getattr(model, "generation_config", None)
    if shipped is None:
        return {}
    defaults = GenerationConfig._get_default_generation_params()
    current = shipped.to_dict()
    dropped = {k: current[k] for k in DISTRIBUTION_KEYS if current.get(k) is not None and current[k] != defaults.get(k)}
    dropped = {**getattr(model, IGNORED_ATTR, {}), **dropped}  # a second reset keeps the first record
    model.generation_config = GenerationConfig(**{k: current[k] for k in TOKEN_KEYS if current.get(k) is not None})
    setattr(model, IGNORED_ATTR, dropped)
    return dropped


def suppressed_tokens(model: Any, is_vision: bool) -> list[int]:
    """Token ids generation never draws: a VLM's image (and video) placeholder, as TRL's GRPO does."""
    if not is_vision:
        return []
    config = model.config
    ids = [getattr(config, "image_token_id", None), getattr(config, "video_token_id", None)]
    return sorted({int(i) for i in ids if i is not None})


def sampling_kwargs(model: Any, is_vision: bool, temperature: float) -> dict[str, Any]:
    """``generate`` keywords of our sampling definition (module doc); ``temperature`` 0 = greedy."""
    kwargs: dict[str, Any] = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}
    suppress = suppressed_tokens(model, is_vision)
    if suppress:
        kwargs["suppress_tokens"] = suppress
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0, min_p=None)
    else:
        kwargs.update(do_sample=False, temperature=1.0, top_k=50, top_p=1.0)  # transformers' defaults: no warnings
    return kwargs


def sampling_record(model: Any, is_vision: bool, temperature: float, engine: str = "transformers") -> dict[str, Any]:
    """What the scores header / eval report say about the distribution sampled from."""
    return {
        "engine": engine,
        "temperature": float(temperature),
        "truncation": "none (no top-k, top-p or min-p)",
        "repetition_penalty": 1.0,
        "suppress_tokens": suppressed_tokens(model, is_vision) if engine == "transformers" else [],
        "ignored_from_checkpoint": dict(getattr(model, IGNORED_ATTR, {})),
    }
