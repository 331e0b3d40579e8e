"""PNG plots of a scored pool (matplotlib, Agg backend — no display needed).

* ``entropy_histogram.png``: the distribution of answer-token and reasoning-sentence entropy;
  on the lab, clean and flipped-label items stacked in two colours.
* ``accuracy_by_bin.png``: rollout accuracy per entropy quantile bin (low → high) for the
  answer, sentence, mixed and peak entropies (peak when the file has it), and on the lab the
  flipped-label rate per bin of answer-token entropy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from egt.data.atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_entropy_histogram(records: Sequence[dict], path: str | Path, bins: int = 30) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    has_truth = all(r.get("flipped") is not None for r in records)
    for ax, (key, title) in zip(
        axes,
        (("answer_entropy", "answer-token entropy"), ("sentence_entropy", "reasoning-sentence entropy")),
        strict=True,
    ):
        values = [r[key] for r in records if r.get(key) is not None]
        missing = len(records) - len(values)
        if not values:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        elif has_truth:
            clean = [r[key] for r in records if r.get(key) is not None and not r["flipped"]]
            flipped = [r[key] for r in records if r.get(key) is not None and r["flipped"]]
            ax.hist(
                [clean, flipped],
                bins=bins,
                stacked=True,
                color=["#4c72b0", "#dd8452"],
                label=["label correct", "label flipped"],
            )
            ax.legend(frameon=False, fontsize=8)
        else:
            ax.hist(values, bins=bins, color="#4c72b0")
        ax.set_title(title + (f"  ({missing} missing)" if missing else ""), fontsize=10)
        ax.set_xlabel("entropy (nats)")
        ax.set_ylabel("items")
    fig.tight_layout()
    return _save(fig, path, plt)


def plot_accuracy_by_bin(analysis: dict, path: str | Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [
        n
        for n in ("answer", "sentence", "mixed", "peak")
        if n in analysis["bins"] and analysis.get("missing", {}).get(n) != analysis.get("n_items")
    ]  # a signal no record carries: no bars
    width = 0.8 / max(1, len(names))
    colours = {"answer": "#4c72b0", "sentence": "#55a868", "mixed": "#8172b2", "peak": "#937860"}
    for j, name in enumerate(names):
        bins = analysis["bins"][name]
        xs = [b["bin"] + (j - (len(names) - 1) / 2) * width for b in bins]
        rho = analysis["spearman"].get(name)
        label = f"{name} (ρ = {rho:+.2f})" if rho is not None else name
        ax.bar(xs, [b["mean_accuracy"] for b in bins], width=width, color=colours[name], label=label)
    answer_bins = analysis["bins"].get("answer", [])
    if answer_bins and "flipped_rate" in answer_bins[0]:
        ax.plot(
            [b["bin"] for b in answer_bins],
            [b["flipped_rate"] for b in answer_bins],
            "o-",
            color="#c44e52",
            label="flipped-label rate (answer bins)",
        )
    ax.set_xticks(range(len(answer_bins or analysis["bins"][names[0]])))
    ax.set_xlabel("entropy quantile bin (low → high)")
    ax.set_ylabel("rollout accuracy vs label")
    ax.set_ylim(0, 1.05)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Rollout accuracy by entropy bin", fontsize=10)
    fig.tight_layout()
    return _save(fig, path, plt)


def _save(fig, path: str | Path, plt) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


RL_LOG_PANELS = (
    ("frac_reward_zero_std", "groups with zero reward std", (0, 1.05)),
    ("reward", "mean reward", None),
    ("accuracy", "mean accuracy", (0, 1.05)),
    ("format_failure_rate", "format failures", (0, 1.05)),
    ("rollout_entropy", "rollout entropy", None),
    ("curriculum", "curriculum: passes over the subset", None),
)


def plot_rl_log(summary: dict, path: str | Path) -> Path:
    """The per-step log of one RL run (``rl_summary.json``'s ``log``): why it learns or starves.

    Six panels against the step: the share of groups whose rewards have std 0 (GRPO learns nothing from
    them), mean reward, accuracy, format-failure rate, rollout entropy, and the curriculum position as
    passes over the subset (``curriculum_epoch + curriculum_position / n_rows``); with dynamic sampling
    the zero-std panel also shows the share of generated groups the refill dropped as uniform.
    """
    plt = _pyplot()
    log = summary.get("log") or []
    steps = [e["step"] for e in log]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, (key, title, limits) in zip(axes.flat, RL_LOG_PANELS, strict=True):
        if key == "curriculum":
            rows = max(int(summary.get("n_rows") or 1), 1)
            values = [
                None if e.get("curriculum_epoch") is None else e["curriculum_epoch"] + e["curriculum_position"] / rows
                for e in log
            ]
        else:
            values = [e.get(key) for e in log]
        points = [(s, v) for s, v in zip(steps, values, strict=True) if v is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", lw=1, label=key)
        if key == "frac_reward_zero_std" and any("groups_dropped" in e for e in log):
            dropped = [
                (e["step"], e["groups_dropped"] / e["groups_generated"]) for e in log if e.get("groups_generated")
            ]
            ax.plot(*zip(*dropped, strict=True), marker="x", lw=1, label="uniform: dropped by dynamic sampling")
            ax.legend(frameon=False, fontsize=7)
        if not points:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
        if limits:
            ax.set_ylim(*limits)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    fig.suptitle(
        f"RL run: {summary.get('estimator', '?')}, curriculum {summary.get('curriculum', '?')} "
        f"(repeat {summary.get('curriculum_repeat', '?')}), dynamic sampling {summary.get('dynamic_sampling', False)}",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, path, plt)
