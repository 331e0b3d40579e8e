"""The experiment's figures (matplotlib, Agg): subset size, RL curves, what each selection kept."""

from __future__ import annotations

from pathlib import Path

from egt.pipelines.experiment.config import ExperimentConfig


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    from egt.data.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    _plt().close(fig)
    return str(path)


def plot_subset_size(cfg: ExperimentConfig, rows: list[dict], path: Path) -> str | None:
    """T2: accuracy vs subset size, one line per selector, error bars = std over seeds."""
    lines: dict[str, list[tuple[float, float, float]]] = {}
    for row, (size, who) in zip(rows, [(s, w) for s in cfg.subset_sizes for w in ("entropy", "random")], strict=False):
        mean, std = row["accuracy"]
        if mean is not None:
            lines.setdefault(who, []).append((100 * size, 100 * mean, 100 * (std or 0.0)))
    if not lines:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for who, points in lines.items():
        xs, ys, es = zip(*points, strict=True)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=who)
    ax.set(xlabel="subset size (% of the pool)", ylabel="clean-test accuracy (%)", title="T2: subset size")
    ax.legend()
    return _save(fig, path)


def plot_curves(title: str, rows: list[dict], path: Path) -> str | None:
    """Test accuracy over RL steps, one line per arm (mean over seeds)."""
    drawable = [r for r in rows if len(r.get("curve") or []) > 1]
    if not drawable:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for row in drawable:
        steps = [p["step"] for p in row["curve"]]
        acc = [100 * p["accuracy"] for p in row["curve"]]
        ax.plot(steps, acc, marker=".", label=row["label"])
    ax.set(xlabel="RL step", ylabel="clean-test accuracy (%)", title=title)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def plot_selections(rows: list[dict], path: Path) -> str | None:
    """Flip rate and hard share of each T1 selection (bars, mean over seeds)."""
    drawable = [r for r in rows if r["flip_rate"][0] is not None]
    if not drawable:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = range(len(drawable))
    ax.bar([i - 0.2 for i in x], [100 * r["flip_rate"][0] for r in drawable], width=0.4, label="flipped labels")
    ax.bar([i + 0.2 for i in x], [100 * r["hard_share"][0] for r in drawable], width=0.4, label="hard items")
    ax.set_xticks(list(x), [r["label"] for r in drawable], rotation=40, ha="right", fontsize=7)
    ax.set(ylabel="% of the selection", title="What each selection keeps")
    ax.legend()
    return _save(fig, path)


def plot_answer(noise: dict, path: Path) -> str | None:
    """Table N's answer: per block, each column's Δ vs the full pool with its seed-level CI, region and overall."""
    from egt.pipelines.experiment.noise_tables import ANSWER_COLUMNS

    answer = noise.get("answer") or []
    if not any(a[m]["columns"][t] for a in answer for m in ("overall", "region") for t, _ in ANSWER_COLUMNS):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.9 + 0.55 * len(answer) * len(ANSWER_COLUMNS) / 2), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = []
    for ax, metric in zip(axes, ("region", "overall"), strict=True):
        y = 0
        labels = []
        for a in answer:
            for c, (token, name) in enumerate(ANSWER_COLUMNS):
                d = a[metric]["columns"][token]
                labels.append(f"{a['noise']}/{a['regime']}/{a['strength']}: {name}")
                if d is not None:
                    low, high = d["ci95"] or (d["mean"], d["mean"])
                    ax.errorbar(
                        100 * d["mean"], y, xerr=[[100 * (d["mean"] - low)], [100 * (high - d["mean"])]],
                        fmt="o", color=colours[c % len(colours)], capsize=3,
                    )  # fmt: skip
                    ax.scatter([100 * v for v in d["per_seed"]], [y] * len(d["per_seed"]), marker="x", s=12,
                               color="grey", zorder=3)  # fmt: skip
                y += 1
            y += 0.5
        ax.axvline(0, color="black", lw=0.8)
        ax.set(xlabel=f"Δ {metric} accuracy vs full pool (points)", title=f"{metric} accuracy")
    ticks = []
    y = 0
    for _ in answer:
        for _ in ANSWER_COLUMNS:
            ticks.append(y)
            y += 1
        y += 0.5
    axes[0].set_yticks(ticks, labels, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle("When does entropy curation pay? (dots: mean with seed-level 95% CI; x: each seed)", fontsize=9)
    return _save(fig, path)


def write_plots(cfg: ExperimentConfig, results: dict, out: Path) -> list[str]:
    written: list[str] = []
    if "N" in results["tables"]:
        written.append(plot_answer(results["tables"]["N"], out / "answer.png"))
    for regime in cfg.regimes:
        tables = results["tables"].get(regime, {})
        if "T1" in tables:
            written.append(plot_curves(f"T1 ({regime}): RL curves", tables["T1"], out / f"curves_T1_{regime}.png"))
            written.append(plot_selections(tables["T1"], out / f"selections_{regime}.png"))
        if "T2" in tables:
            written.append(plot_subset_size(cfg, tables["T2"], out / f"subset_size_{regime}.png"))
        for table in ("T3", "T4", "T5"):
            if table in tables:
                written.append(
                    plot_curves(f"{table} ({regime}): RL curves", tables[table], out / f"curves_{table}_{regime}.png")
                )
    return [w for w in written if w]
