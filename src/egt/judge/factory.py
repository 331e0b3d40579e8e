"""Turn a ``--judge`` value into a judge: a baseline name or a checkpoint.

``random`` / ``first`` / ``longer`` are the baselines. Anything else is a model path or hub id;
what kind of judge it becomes is decided by the files in the folder (a scalar reward model or an
ensemble carries its own marker file, see :data:`JUDGE_KINDS`), else a generative judge.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from egt.errors import EgtError
from egt.judge.base import BASELINES, Judge, make_baseline
from egt.models.load import LoadingArgs


@dataclass
class JudgeArgs(LoadingArgs):
    """Which judge to run and how it generates."""

    judge: str = field(default="random", metadata={"help": "random | first | longer | a model folder or hub id."})
    batch_size: int = field(default=32, metadata={"help": "Requests per forward / generate call."})
    max_new_tokens: int = field(
        default=0, metadata={"help": "Generation budget; 0 = the checkpoint's default (or 256)."}
    )
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy decoding."})
    prompt_style: str = field(default="", metadata={"help": "r1_reward | compact; empty = the checkpoint's own."})
    seed: int = field(default=0, metadata={"help": "Seed for the random judge, random order and sampling."})
    backend: str = field(
        default="transformers",
        metadata={
            "help": (
                "Generation backend of a generative judge: transformers | vllm (vLLM's offline engine, one request per "
                "judgement seeded by (seed, id, order); GPU only, pip install 'egt[vllm]')."
            )
        },
    )


JUDGE_BACKENDS = ("transformers", "vllm")  # egt.entropy.backends.BACKENDS, without importing torch here
# (marker file in the checkpoint folder, factory) — other packages append their judge kinds here.
JUDGE_KINDS: list[tuple[str, Callable[[JudgeArgs], Judge]]] = []
# modules that register this project's own judge kinds when imported (light: torch comes later)
BUILTIN_KIND_MODULES = ("egt.rm.judges",)


def make_judge(args: JudgeArgs, vllm_args=None) -> Judge:
    """The judge ``args`` name; ``vllm_args`` (:class:`egt.entropy.backends.VllmArgs`) for ``--backend vllm``."""
    if args.backend not in JUDGE_BACKENDS:
        raise EgtError(f"--backend: unknown backend {args.backend!r} (one of {', '.join(JUDGE_BACKENDS)})")
    vllm_only = f"--backend {args.backend}: only a generative judge generates through it, not {args.judge!r}"
    if args.judge in BASELINES:
        if args.backend != "transformers":
            raise EgtError(vllm_only)
        return make_baseline(args.judge, seed=args.seed)
    for module in BUILTIN_KIND_MODULES:  # a fresh `egt eval` process has not imported them yet
        importlib.import_module(module)
    path = Path(args.judge)
    for marker, factory in JUDGE_KINDS:
        if (path / marker).is_file():
            if args.backend != "transformers":
                raise EgtError(vllm_only)
            return factory(args)
    return make_generative_judge(args, vllm_args)


def make_generative_judge(args: JudgeArgs, vllm_args=None, *, backend=None) -> Judge:
    """A :class:`egt.judge.generative.GenerativeJudge`; ``backend`` overrides the one ``args.backend`` names
    (tests pass a vLLM stand-in)."""
    from egt.judge.generative import GenerationSettings, GenerativeJudge, read_judge_meta
    from egt.models.load import ModelArgs, load_model

    if backend is None and args.backend == "vllm":  # before loading any weights
        try:
            import vllm  # noqa: F401
        except ImportError:
            from egt.entropy.backends import VLLM_MISSING

            raise EgtError(VLLM_MISSING) from None
    loaded = load_model(
        args.judge,
        dtype=args.dtype,
        device=args.device,
        attn_implementation=args.attn_implementation,
        trust_remote_code=args.trust_remote_code,
    )
    meta = read_judge_meta(args.judge) if Path(args.judge).is_dir() else {}
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens or meta.get("max_new_tokens", 256), temperature=args.temperature
    )
    style = args.prompt_style or meta.get("prompt_style", "r1_reward")
    if backend is None and args.backend == "vllm":
        from egt.entropy.backends import make_backend

        model_args = ModelArgs(
            model=args.judge,
            dtype=args.dtype,
            device=args.device,
            attn_implementation=args.attn_implementation,
            trust_remote_code=args.trust_remote_code,
        )
        backend = make_backend("vllm", loaded, model_args, seed=args.seed, vllm_args=vllm_args)
    return GenerativeJudge(
        loaded,
        name=Path(args.judge).name or args.judge,
        style=style,
        settings=settings,
        batch_size=args.batch_size,
        backend=backend,
        seed=args.seed,
    )
