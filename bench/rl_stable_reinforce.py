"""Step time of StableReinforce (R1-Reward's log-ratio pre-clip and advantage filter) against plain GRPO.

Same trainer, same model, same batch shape, the two arms alternating every generation: ``grpo``
(``ratio_preclip 0``, ``advantage_filter_sigma 0``) and ``stable`` (R1-Reward's ``R = 1000``,
``S = 3``). ``steps_per_generation = 2``, so TRL keeps the rollout policy's log-probs and the loss has
a ratio to pre-clip (as in R1-Reward, two updates per rollout batch); the learning rate is 0 and
``min_new_tokens = max_completion_length``, so every step does the same work but for the arm's own
pieces. A round is one generation per arm (2 steps each), the ratio the median over rounds of
stable / grpo (plus a warm-up round); wall clock and process CPU time, as bench/rl_step_time.py.

    .venv/bin/python bench/rl_stable_reinforce.py            # fresh tiny judge on a small lab
    .venv/bin/python bench/rl_stable_reinforce.py --quick    # two timed rounds of small steps

Target (issue 24): stable / grpo ≤ 1.05 on both clocks.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness
from rl_step_time import add_judge_flags, setup, timed_run

ARMS = {"grpo": (0.0, 0.0), "stable": (1000.0, 3.0)}
TARGET = 1.05
STEPS_PER_GENERATION = 2


def run_alternating(args, lab: Path, model: Path, style: str, work: Path) -> dict:
    """Per-generation times (2 steps) of one run whose arm alternates every generation."""
    names = list(ARMS)
    generations = (args.repeats + 1) * len(names)

    def arm_of(generation: int) -> str:  # A B, B A, A B, …: the order alternates every round
        first, second = names if (generation // len(names)) % 2 == 0 else names[::-1]
        return first if generation % len(names) == 0 else second

    def alternate(trainer, step: int) -> None:
        trainer.ratio_preclip, trainer.advantage_filter_sigma = ARMS[arm_of(step // STEPS_PER_GENERATION)]

    trainer, cpu = timed_run(
        args,
        lab,
        model,
        style,
        work,
        generations * STEPS_PER_GENERATION,
        alternate,
        steps_per_generation=STEPS_PER_GENERATION,
    )
    wall: dict[str, list[float]] = {a: [] for a in names}
    cpu_by: dict[str, list[float]] = {a: [] for a in names}
    per_step = {h["step"]: h["step_time"] for h in trainer.state.log_history if "step_time" in h}
    for generation in range(len(names), generations):  # the first round: warm-up
        steps = [generation * STEPS_PER_GENERATION + k + 1 for k in range(STEPS_PER_GENERATION)]
        arm = arm_of(generation)
        wall[arm].append(sum(per_step[s] for s in steps))
        cpu_by[arm].append(sum(cpu[s] for s in steps))
    key = "stable_reinforce/preclip_frac"
    clipped = [h[key] for h in trainer.state.log_history if key in h]
    print(f"pre-clipped token share per stable step: {clipped}", file=sys.stderr)
    return {"wall": wall, "cpu": cpu_by, "pieces_seconds": pieces_seconds(args)}


def pieces_seconds(args, calls: int = 200) -> float:
    """Seconds per generation of StableReinforce's own tensor work at this batch shape: one advantage
    filter and, per step, one pre-clip (the part of the stable arm's step that GRPO does not do)."""
    import torch

    from egt.rl.stable_reinforce import filter_advantages, preclip_logps

    shape = (args.batch * STEPS_PER_GENERATION, args.max_completion_length)
    logps = torch.randn(shape, requires_grad=True)
    old, advantages, mask = torch.randn(shape), torch.randn(shape), torch.ones(shape)
    start = time.process_time()
    for _ in range(calls):
        filter_advantages(advantages, mask, 3.0)
        for half in (slice(0, args.batch), slice(args.batch, None)):
            preclip_logps(logps[half], old[half], 1000.0).sum().backward()
    return (time.process_time() - start) / calls


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=10)
    add_judge_flags(parser)
    args = harness.parse(parser, quick={"repeats": 2, "batch": 8, "generations": 4, "max_completion_length": 16})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="egt-rl-stable-") as tmp:
        work = Path(tmp)
        lab, model, style = setup(args, work)
        samples = run_alternating(args, lab, model, style, work)
    clocks = ("wall", "cpu")
    rounds = min(len(samples["wall"][a]) for a in ARMS)
    ratios = {c: harness.paired_ratio(samples[c]["stable"][:rounds], samples[c]["grpo"][:rounds]) for c in clocks}
    medians = {c: {a: statistics.median(v) for a, v in samples[c].items()} for c in clocks}
    pieces = samples["pieces_seconds"] / medians["cpu"]["grpo"]
    harness.print_table(
        f"RL step time, StableReinforce vs GRPO: tiny judge, {args.batch} completions/step (G = {args.generations}), "
        f"{args.max_completion_length} new tokens, {STEPS_PER_GENERATION} steps per generation, {args.threads} "
        f"thread(s), {rounds} rounds",
        ["arm", "wall s/generation", "CPU s/generation"],
        [[a, f"{medians['wall'][a]:.3f}", f"{medians['cpu'][a]:.3f}"] for a in ARMS],
        caption=f"stable / grpo: wall {ratios['wall']:.3f}, CPU {ratios['cpu']:.3f} (median over rounds); "
        f"StableReinforce's own tensor work {samples['pieces_seconds'] * 1e3:.2f} ms per generation = "
        f"{pieces:.2e} of a grpo generation's CPU time; wall {time.perf_counter() - start:.0f} s",
    )
    checks = [harness.Check(f"stable / grpo step, {c}", ratios[c], TARGET) for c in clocks]
    checks.append(harness.Check("1 + StableReinforce's own work / grpo generation, CPU", 1 + pieces, TARGET))
    return harness.finish(__file__, args, {"medians": medians, "ratios": ratios, "samples": samples}, checks)


if __name__ == "__main__":
    sys.exit(main())
