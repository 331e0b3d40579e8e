"""The registry of advantage estimators: name → pure function, its parameters, whether it needs entropies.

The maths is in :mod:`egt.rl.advantages`; this module only names it (verl's ``register_adv_est``
pattern). Every estimator is called through :func:`compute_advantages`, which is what the trainer
(:class:`egt.rl.trainer.JudgeGRPOTrainer`) uses, in one of two shapes:

- ``needs_entropy=False``: ``fn(rewards [B], mask [B, T], group_size, **params)``
- ``needs_entropy=True``:  ``fn(rewards [B], correct [B], entropies [B, T], mask [B, T], group_size, **params)``;
  the trainer then computes the rollout policy's token entropies and marks O+ responses in ``correct``.

Both return float32 ``[B, T]`` advantages. An estimator's parameters are the keyword arguments after
the tensors, each with a default (read from its signature when it is registered). So a new
estimator is one function and one :func:`register_advantage_estimator` line; ``egt train rl`` sets
its parameter ``p`` from the :class:`egt.rl.config.JudgeRLArgs` field ``<name>_<p>`` where one
exists (``gtpo_alpha2``), and a ``scale_by_std`` parameter follows TRL's ``scale_rewards``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from egt.rl.advantages import dr_grpo_advantages, grpo_advantages, grpo_s_advantages, gtpo_advantages

TENSOR_ARGUMENTS = {
    False: ("rewards", "mask", "group_size"),
    True: ("rewards", "correct", "entropies", "mask", "group_size"),
}


@dataclass(frozen=True)
class AdvantageEstimator:
    """A registered estimator: its function, whether it needs token entropies, its parameters' defaults."""

    name: str
    fn: Callable[..., torch.Tensor]
    needs_entropy: bool = False
    params: dict[str, Any] = field(default_factory=dict)


ADVANTAGE_ESTIMATORS: dict[str, AdvantageEstimator] = {}


def register_advantage_estimator(name: str, *, needs_entropy: bool = False) -> Callable:
    """Decorator (or ``register_advantage_estimator(name)(fn)``): register ``fn`` under ``name``.

    ``fn`` takes the tensor arguments of its kind first (module doc), then only keyword parameters
    with defaults; anything else is a ``ValueError`` at registration, as is a name already taken.
    """

    def decorator(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        known = ADVANTAGE_ESTIMATORS.get(name)
        if known is not None and (known.fn.__module__, known.fn.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"advantage estimator {name!r} is already registered ({known.fn.__qualname__})")
        tensors = TENSOR_ARGUMENTS[needs_entropy]
        arguments = list(inspect.signature(fn).parameters.values())
        if [a.name for a in arguments[: len(tensors)]] != list(tensors):
            raise ValueError(
                f"advantage estimator {name!r}: {fn.__qualname__} must take ({', '.join(tensors)}) first "
                f"(needs_entropy={needs_entropy}), takes ({', '.join(a.name for a in arguments)})"
            )
        params = {a.name: a.default for a in arguments[len(tensors) :]}
        undefaulted = [p for p, default in params.items() if default is inspect.Parameter.empty]
        if undefaulted:
            raise ValueError(f"advantage estimator {name!r}: parameters {undefaulted} need a default")
        ADVANTAGE_ESTIMATORS[name] = AdvantageEstimator(name, fn, needs_entropy, params)
        return fn

    return decorator


def get_advantage_estimator(name: str) -> AdvantageEstimator:
    """The estimator registered as ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return ADVANTAGE_ESTIMATORS[name]
    except KeyError:
        known = ", ".join(sorted(ADVANTAGE_ESTIMATORS))
        raise ValueError(f"unknown advantage estimator {name!r}; known: {known}") from None


def check_params(name: str, params: dict[str, Any]) -> AdvantageEstimator:
    """The estimator ``name``, after checking that it takes every parameter in ``params``."""
    estimator = get_advantage_estimator(name)
    unknown = sorted(set(params) - set(estimator.params))
    if unknown:
        takes = ", ".join(estimator.params) or "none"
        raise ValueError(f"advantage estimator {name!r} has no parameter(s) {unknown}; its parameters: {takes}")
    return estimator


def compute_advantages(
    name: str,
    rewards: torch.Tensor,
    mask: torch.Tensor,
    group_size: int,
    *,
    correct: torch.Tensor | None = None,
    entropies: torch.Tensor | None = None,
    **params: Any,
) -> torch.Tensor:
    """Run the estimator ``name`` on one batch: ``rewards [B]``, ``mask [B, T]`` → float32 ``[B, T]``.

    ``correct [B]`` (bool, O+) and ``entropies [B, T]`` are required by the estimators that need
    entropies and ignored by the others; ``params`` are the estimator's own (``alpha2=0.1``).
    """
    estimator = check_params(name, params)
    if not estimator.needs_entropy:
        return estimator.fn(rewards, mask, group_size, **params)
    if correct is None or entropies is None:
        raise ValueError(f"advantage estimator {name!r} needs correct [B] and entropies [B, T]")
    return estimator.fn(rewards, correct, entropies, mask, group_size, **params)


register_advantage_estimator("grpo")(grpo_advantages)
register_advantage_estimator("dr_grpo")(dr_grpo_advantages)
register_advantage_estimator("gtpo", needs_entropy=True)(gtpo_advantages)
register_advantage_estimator("grpo_s", needs_entropy=True)(grpo_s_advantages)
