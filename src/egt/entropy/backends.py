"""Rollout generation backends for ``egt score``: transformers (default) and vLLM (``--backend vllm``).

A backend turns one batch of judge requests (prompt + presentation + images, one row each) and one
seed per row into completion token ids (:class:`RolloutBackend`). ``egt score`` summarises the
rows the same way whichever backend produced them (:func:`egt.pipelines.scoring.run.score_batch`).

* :class:`TransformersBackend` wraps :func:`egt.entropy.sampling.generate_rollouts`: per-row
  Gumbel-max sampling inside ``model.generate`` seeded by (seed, id, rollout), with the token
  entropies recorded during generation (``--entropy_source generation``) or left to the
  teacher-forced pass (``--entropy_source teacher_forced``).
* :class:`VllmBackend` samples with vLLM's offline engine (``vllm.LLM.generate``). Each row is one
  request with its own ``SamplingParams(n=1, seed=rollout_seed(seed, id, k), temperature=τ,
  max_tokens=…)`` and no top-k / top-p truncation, so an item's rollouts still depend only on
  (seed, id, k) — not on batch mates, batch size or the number of processes. The prompt is the
  judge's own chat-templated text (:func:`egt.judge.generative.chat_prompts`, the string the
  transformers path tokenises) and the images go through vLLM's multimodal inputs,
  ``{"prompt": text, "multi_modal_data": {"image": [PIL images]}}`` (Qwen2-VL / Qwen2.5-VL expand
  the ``<|image_pad|>`` placeholders themselves). vLLM returns only top-k log-probs, so with this
  backend the token entropies *always* come from the teacher-forced float32 pass of the same
  weights (:func:`egt.entropy.teacher_forced.rollout_entropies`); the scores header records
  ``backend: vllm`` and ``entropy_source: teacher_forced``. Sampling follows our one definition
  (:mod:`egt.models.generation`): no repetition penalty and no top-k / top-p truncation, whatever the
  checkpoint's generation config ships (the engine is started with ``generation_config="vllm"`` so
  it does not apply those defaults either). vLLM does not suppress the image token as transformers'
  ``suppress_tokens`` does; the teacher-forced pass does (a trained judge gives it ~0 mass).
  The engine resizes images within the same ``min_pixels`` / ``max_pixels`` as the loaded processor
  (``mm_processor_kwargs``), so vLLM sees the image tokens the entropy pass sees.

  What differs from the transformers backend, by construction: vLLM's sampler draws from its own
  per-request generator, not our Gumbel-max stream, so at τ = 1 the two backends draw *different*
  (equally distributed) rollouts for the same seed; near-greedy (τ → 0) they agree up to kernel
  round-off. The transformers model stays loaded beside the engine (for the entropy pass), so on one
  GPU give vLLM only part of the memory (``--vllm_gpu_memory_utilization``, default 0.5).

vLLM is imported lazily (:func:`make_backend`): without it, ``--backend vllm`` stops with one line
(exit 2) saying to ``pip install 'egt[vllm]'`` on a GPU machine.

What ran where. vLLM cannot run on the CPU machines this project is built on; the vLLM adapter has
been run only against an in-process stand-in engine (``tests/entropy/test_backends.py``: requests,
seeds, images and the written scores file checked). ``bench/score_backends_gpu.py`` is the GPU
check, not yet run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from egt.entropy.sampling import Rollouts, generate_rollouts
from egt.entropy.sampling import eos_ids as generation_eos_ids
from egt.errors import EgtError
from egt.judge.generative import GenerationSettings, chat_prompts, generation_kwargs
from egt.models.args import VllmArgs
from egt.models.processors import image_bounds

BACKENDS = ("transformers", "vllm")
VLLM_MISSING = (
    "--backend vllm needs vLLM, which is not installed here: pip install 'egt[vllm]' on a machine "
    "with a GPU (vLLM does not run on CPU); or use --backend transformers"
)

__all__ = ["BACKENDS", "RolloutBackend", "TransformersBackend", "VllmBackend", "VllmArgs", "make_backend"]


class RolloutBackend:
    """Generates one completion per request row.

    ``generate(requests, seeds, temperature=, max_new_tokens=, style=, record_entropy=)`` returns an
    :class:`egt.entropy.sampling.Rollouts` whose ``entropies`` is ``[R, T]`` float32 when the backend
    recorded them during generation, else None (the caller runs the teacher-forced pass).
    """

    name: str = ""
    records_entropy: bool = False  # whether it can return generation-time entropies

    def generate(
        self,
        requests: Sequence,
        seeds: Sequence[int],
        *,
        temperature: float,
        max_new_tokens: int,
        style: str,
        record_entropy: bool = True,
    ):  # pragma: no cover - interface
        raise NotImplementedError


class TransformersBackend(RolloutBackend):
    """``model.generate`` with per-row seeded Gumbel-max sampling (:func:`egt.entropy.sampling.generate_rollouts`)."""

    name = "transformers"
    records_entropy = True

    def __init__(self, loaded):
        self.loaded = loaded

    def generate(self, requests, seeds, *, temperature, max_new_tokens, style, record_entropy=True):
        gen = generate_rollouts(
            self.loaded,
            requests,
            seeds,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            style=style,
            record_entropy=record_entropy,
        )
        if not record_entropy:
            gen.entropies = None
        return gen


class VllmBackend(RolloutBackend):
    """Rollouts from vLLM's offline engine, one seeded request per row (module doc).

    Args:
        loaded: the transformers copy of the same weights (chat template, tokenizer, eos ids, and
            later the teacher-forced entropy pass).
        llm: a ``vllm.LLM`` (or any object with ``generate(inputs, sampling_params=, use_tqdm=False)``
            returning one output per input, in order, each with ``outputs[0].token_ids``: tests pass a
            stand-in). The returned ids are taken as they come, up to ``max_new_tokens``; a stop
            token vLLM keeps in them is scored like generate's EOS (unverified on real vLLM: the GPU
            bench compares lengths and ids near-greedy).
        sampling_params: the ``SamplingParams`` class (default ``vllm.SamplingParams``).
    """

    name = "vllm"
    records_entropy = False

    def __init__(self, loaded, llm, sampling_params: Callable | None = None):
        self.loaded = loaded
        self.llm = llm
        if sampling_params is None:
            from vllm import SamplingParams as sampling_params  # noqa: N813
        self.sampling_params = sampling_params

    def eos_ids(self, max_new_tokens: int) -> list[int]:
        kwargs = generation_kwargs(self.loaded, GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0))
        return sorted(generation_eos_ids(kwargs))

    def inputs(self, requests: Sequence, style: str) -> list[dict]:
        """vLLM prompts: the judge's chat-templated text, images as ``multi_modal_data``."""
        prompts = chat_prompts(self.loaded, requests, style)
        out = []
        for prompt, request in zip(prompts, requests, strict=True):
            item = {"prompt": prompt}
            if self.loaded.is_vision and request.images:
                item["multi_modal_data"] = {"image": list(request.images)}
            out.append(item)
        return out

    def params(self, seeds: Sequence[int], temperature: float, max_new_tokens: int) -> list:
        eos = self.eos_ids(max_new_tokens)
        return [
            self.sampling_params(
                n=1,
                seed=int(s),
                temperature=float(temperature),
                max_tokens=int(max_new_tokens),
                stop_token_ids=eos,
                repetition_penalty=1.0,  # vLLM's defaults elsewhere: no top-k / top-p truncation
                skip_special_tokens=True,
            )
            for s in seeds
        ]

    def generate(self, requests, seeds, *, temperature, max_new_tokens, style, record_entropy=True):
        if len(seeds) != len(requests):
            raise ValueError(f"{len(seeds)} seeds for {len(requests)} requests")
        outputs = self.llm.generate(
            self.inputs(requests, style),
            sampling_params=self.params(seeds, temperature, max_new_tokens),
            use_tqdm=False,
        )
        if len(outputs) != len(requests):
            raise EgtError(f"vLLM returned {len(outputs)} outputs for {len(requests)} requests")
        rows = [[int(t) for t in o.outputs[0].token_ids][:max_new_tokens] for o in outputs]
        pad = self.loaded.tokenizer.pad_token_id if self.loaded.tokenizer.pad_token_id is not None else 0
        width = max([len(r) for r in rows] + [1])
        ids = torch.full((len(rows), width), pad, dtype=torch.long)  # [R, T]
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return Rollouts(ids=ids, lengths=[len(r) for r in rows], entropies=None)


def require_vllm() -> None:
    """One clear line when vLLM is not installed; callers check before loading any weights."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise EgtError(VLLM_MISSING) from None


def start_vllm(model_args, seed: int, vllm_args: VllmArgs | None = None, processor=None):
    """A ``vllm.LLM`` for ``model_args`` (lazy import; one clear line without vLLM).

    The checkpoint's generation config is not applied (``generation_config="vllm"``), and a Qwen-VL
    ``processor``'s image bounds go to the engine's processor (``mm_processor_kwargs``)."""
    try:
        from vllm import LLM
    except ImportError:
        raise EgtError(VLLM_MISSING) from None
    vllm_args = vllm_args or VllmArgs()
    dtype = model_args.dtype if model_args.dtype in ("auto", "float32", "bfloat16", "float16") else "auto"
    return LLM(
        model=model_args.model,
        dtype=dtype,
        seed=seed,
        trust_remote_code=model_args.trust_remote_code,
        generation_config="vllm",
        **vllm_args.engine_kwargs(image_bounds(processor) if processor is not None else None),
    )


def make_backend(
    name: str, loaded, model_args=None, *, seed: int = 0, vllm_args: VllmArgs | None = None
) -> RolloutBackend:
    """The backend ``--backend name`` asks for (vLLM started here, imported only now)."""
    if name == "transformers":
        return TransformersBackend(loaded)
    if name == "vllm":  # start_vllm fails with VLLM_MISSING when vLLM is absent
        return VllmBackend(loaded, start_vllm(model_args, seed, vllm_args, processor=loaded.processor))
    raise EgtError(f"--backend: unknown backend {name!r} (one of {', '.join(BACKENDS)})")
