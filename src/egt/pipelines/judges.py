"""Turn a ``--model`` value into a judge: a baseline name or a checkpoint.

``random`` / ``first`` / ``longer`` are the baselines. Anything else is a model path or hub id;
what kind of judge it becomes is decided by the files in the folder (a scalar reward model or an
ensemble carries its own marker file, see :data:`egt.judge.args.JUDGE_KINDS`; importing
:mod:`egt.rm.judges` here registers those), else a generative judge.
"""

from __future__ import annotations

from pathlib import Path

import egt.rm.judges  # noqa: F401  (registers the reward-model and ensemble judge kinds)
from egt.entropy.backends import make_backend, require_vllm
from egt.errors import EgtError
from egt.judge.args import JUDGE_BACKENDS, JUDGE_KINDS, JudgeArgs
from egt.judge.base import BASELINES, Judge, make_baseline
from egt.judge.generative import GenerationSettings, GenerativeJudge, read_judge_meta
from egt.models.args import ModelArgs
from egt.models.load import load_model

__all__ = ["make_generative_judge", "make_judge"]


def make_judge(args: JudgeArgs, vllm_args=None) -> Judge:
    """The judge ``args`` name; ``vllm_args`` (:class:`egt.entropy.backends.VllmArgs`) for ``--backend vllm``."""
    if args.backend not in JUDGE_BACKENDS:
        raise EgtError(f"--backend: unknown backend {args.backend!r} (one of {', '.join(JUDGE_BACKENDS)})")
    vllm_only = f"--backend {args.backend}: only a generative judge generates through it, not {args.model!r}"
    if args.model in BASELINES:
        if args.backend != "transformers":
            raise EgtError(vllm_only)
        return make_baseline(args.model, seed=args.seed)
    path = Path(args.model)
    for marker, factory in JUDGE_KINDS:
        if (path / marker).is_file():
            if args.backend != "transformers":
                raise EgtError(vllm_only)
            return factory(args)
    return make_generative_judge(args, vllm_args)


def make_generative_judge(args: JudgeArgs, vllm_args=None, *, backend=None) -> Judge:
    """A :class:`egt.judge.generative.GenerativeJudge`; ``backend`` overrides the one ``args.backend`` names
    (tests pass a vLLM stand-in)."""
    if backend is None and args.backend == "vllm":  # before loading any weights
        require_vllm()
    loaded = load_model(
        args.model,
        dtype=args.dtype,
        device=args.device,
        attn_implementation=args.attn_implementation,
        trust_remote_code=args.trust_remote_code,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
    )
    meta = read_judge_meta(args.model) if Path(args.model).is_dir() else {}
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens or meta.get("max_new_tokens", 256), temperature=args.temperature
    )
    style = args.prompt_style or meta.get("prompt_style", "r1_reward")
    if backend is None and args.backend == "vllm":
        model_args = ModelArgs(
            model=args.model,
            dtype=args.dtype,
            device=args.device,
            attn_implementation=args.attn_implementation,
            trust_remote_code=args.trust_remote_code,
            min_pixels=args.min_pixels,
            max_pixels=args.max_pixels,
        )
        backend = make_backend("vllm", loaded, model_args, seed=args.seed, vllm_args=vllm_args)
    return GenerativeJudge(
        loaded,
        name=Path(args.model).name or args.model,
        style=style,
        settings=settings,
        batch_size=args.batch_size,
        backend=backend,
        seed=args.seed,
    )
