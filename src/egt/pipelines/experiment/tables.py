"""Collect finished cells into the papers' tables: ``results.json`` and ``results.md``.

Every number is a mean ± std over the seeds that finished (n is shown), and every RL arm's
difference to "full pool" carries a paired bootstrap 95% CI over (test item × seed) units: for
each seed both arms were judged on the same clean test items, so the unit is the per-item
difference of their accuracies (each item's mean over the two presentation orders); the
percentile interval comes from :func:`scipy.stats.bootstrap`. Unfinished cells show "–".

Those T-table intervals are item-level: seeds are pooled as if they were more items, so the spread
between seeds (a different lab, judge and RL run each) is not in them. Table N
(:mod:`egt.pipelines.experiment.noise_tables`) uses a hierarchical bootstrap over seeds, then items,
and prints each seed's Δ beside the mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from egt.data.atomic import atomic_write_json, atomic_write_text
from egt.pipelines.experiment import steps
from egt.pipelines.experiment.config import ExperimentConfig
from egt.pipelines.experiment.grid import Arm, table_rows

TITLES = {
    "T0": "T0 — RQ1 before any RL: does the SFT judge's entropy flag label noise and hard items?",
    "T1": "T1 — selection at {f} of the pool (RQ2, RQ4): clean-test accuracy after RL",
    "T2": "T2 — subset size (RQ2)",
    "T3": "T3 — curriculum on the entropy subset (RQ3)",
    "T4": "T4 — advantage estimator on the entropy subset with the curriculum (GTPO / GRPO-S)",
    "T5": "T5 — online re-scoring vs static scores (beyond the papers)",
}


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def paired_bootstrap(diffs: np.ndarray, resamples: int, seed: int = 0) -> tuple[float, float] | None:
    """95% percentile CI of the mean of paired differences (``[n]``), or None for fewer than 2 units."""
    from scipy.stats import bootstrap

    if diffs.size < 2 or np.all(diffs == diffs[0]):
        return None if diffs.size < 2 else (float(diffs[0]), float(diffs[0]))
    res = bootstrap(
        (diffs,),
        np.mean,
        n_resamples=resamples,
        confidence_level=0.95,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _stats_result(cfg: ExperimentConfig, seed: int, teacher: str, epoch: float) -> dict | None:
    folder = steps.stats_dir(cfg, seed, teacher, epoch)
    return steps.read_done(folder) if steps.is_done(folder) else None


def _cell_result(cfg: ExperimentConfig, seed: int, regime: str, arm) -> dict | None:
    if not arm.needs_rl:
        stats = _stats_result(cfg, seed, cfg.rl_teacher, steps.regime_epoch(cfg, regime))
        if stats is None:
            return None
        return {
            "final": stats["test"],
            "curve": [{"step": 0, "accuracy": stats["test"]["accuracy"]}],
            "selection": None,
            "main_signal": steps.main_signal_of(cfg, stats),
        }
    folder = steps.cell_dir(cfg, seed, regime, arm)
    return steps.read_done(folder) if steps.is_done(folder) else None


def t0_rows(cfg: ExperimentConfig) -> list[dict]:
    """Per teacher and SFT epoch: test accuracy and every signal's RQ1 numbers (mean over seeds)."""
    rows = []
    for teacher in cfg.teachers:
        for epoch in cfg.sft_checkpoint_epochs:
            found = [r for r in (_stats_result(cfg, s, teacher, epoch) for s in cfg.seeds) if r is not None]
            row: dict = {
                "teacher": teacher,
                "epoch": epoch,
                "n_seeds": len(found),
                "test_accuracy": _mean_std([r["test"]["accuracy"] for r in found]),
            }
            keys = [
                f"{m}_{s}"
                for s in (*cfg.signals, "rollout_error", "ceiling")
                for m in ("spearman", "auroc_flipped", "auroc_hard")
            ]
            for key in keys:
                values = [r["rq1"][key] for r in found if r["rq1"].get(key) is not None]
                row[key] = _mean_std(values)
            row["main_signal"] = [steps.main_signal_of(cfg, r) for r in found]
            rows.append(row)
    return rows


def collect(cfg: ExperimentConfig) -> dict:
    """``results.json``'s content: T0 and, per regime and table, each row's numbers over the seeds."""
    results: dict = {"preset": cfg.preset, "seeds": cfg.seeds, "tables": {}}
    if "T0" in cfg.tables:
        results["tables"]["T0"] = t0_rows(cfg)
    if "N" in cfg.tables:
        from egt.pipelines.experiment.noise_tables import collect_noise

        results["tables"]["N"] = collect_noise(cfg)
    t_tables = {"T1", "T2", "T3", "T4", "T5"} & set(cfg.tables)
    for regime in cfg.regimes if t_tables else []:
        per_seed_main = {}
        for seed in cfg.seeds:
            stats = _stats_result(cfg, seed, cfg.rl_teacher, steps.regime_epoch(cfg, regime))
            if stats is not None:
                per_seed_main[seed] = steps.main_signal_of(cfg, stats)
        tables: dict[str, list[dict]] = {}
        for seed, main in per_seed_main.items():
            for table, rows in table_rows(cfg, regime, main).items():
                out_rows = tables.setdefault(table, [{"label": label, "per_seed": {}} for label, _ in rows])
                for out_row, (_label, arm) in zip(out_rows, rows, strict=True):
                    result = _cell_result(cfg, seed, regime, arm)
                    if result is not None:
                        out_row["per_seed"][seed] = {**result, "arm": arm.name}
        full_arm = Arm("full", curriculum=cfg.rl_curriculum, estimator=cfg.rl_estimator)
        full_items = {}
        for seed in cfg.seeds:
            result = _cell_result(cfg, seed, regime, full_arm)
            if result is not None:
                full_items[seed] = result["final"]["per_item"]
        for rows in tables.values():
            for row in rows:
                _summarise_row(row, full_items, cfg)
        results["tables"][regime] = tables
        results.setdefault("main_signal", {})[regime] = per_seed_main
    return results


def _summarise_row(row: dict, full_items: dict[int, list[float]], cfg: ExperimentConfig) -> None:
    seeds = row.pop("per_seed")
    row["arms"] = sorted({v["arm"] for v in seeds.values()})
    row["n_seeds"] = len(seeds)
    row["accuracy"] = _mean_std([v["final"]["accuracy"] for v in seeds.values()])
    selections = [v["selection"] for v in seeds.values() if v.get("selection")]
    row["flip_rate"] = _mean_std([s["flip_rate"] for s in selections if s.get("flip_rate") is not None])
    row["hard_share"] = _mean_std([s["hard_share"] for s in selections if s.get("hard_share") is not None])
    row["n_kept"] = selections[0]["n_kept"] if selections else None
    row["curve"] = _mean_curve([v["curve"] for v in seeds.values()])
    row["per_seed_accuracy"] = {str(s): v["final"]["accuracy"] for s, v in seeds.items()}
    row["delta_vs_full"] = None
    diffs = [
        np.asarray(v["final"]["per_item"]) - np.asarray(full_items[s]) for s, v in seeds.items() if s in full_items
    ]
    if diffs:
        d = np.concatenate(diffs)  # [items × seeds]
        row["delta_vs_full"] = {
            "mean": float(d.mean()),
            "ci95": paired_bootstrap(d, cfg.bootstrap_resamples),
            "n_units": int(d.size),
        }


def _mean_curve(curves: list[list[dict]]) -> list[dict]:
    by_step: dict[int, list[float]] = {}
    for curve in curves:
        for point in curve:
            by_step.setdefault(point["step"], []).append(point["accuracy"])
    return [
        {"step": s, "accuracy": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}
        for s, v in sorted(by_step.items())
    ]


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _pct(ms, digits: int = 1) -> str:
    mean, std = ms if isinstance(ms, (tuple, list)) else (ms, None)
    if mean is None:
        return "–"
    return f"{100 * mean:.{digits}f}" + ("" if std is None else f" ± {100 * std:.{digits}f}")


def _num(ms) -> str:
    mean, std = ms if isinstance(ms, (tuple, list)) else (ms, None)
    if mean is None:
        return "–"
    return f"{mean:.3f}" + ("" if not std else f" ± {std:.3f}")


def _delta(d: dict | None) -> str:
    if d is None:
        return "–"
    ci = d["ci95"]
    return f"{100 * d['mean']:+.1f}" + ("" if ci is None else f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]")


def render_markdown(cfg: ExperimentConfig, results: dict) -> str:
    from egt.report import markdown_table

    out = [f"# EGT experiment — preset `{cfg.preset}`\n"]
    if {"T1", "T2", "T3", "T4", "T5"} & set(cfg.tables):
        out.append(
            f"Seeds {cfg.seeds}; accuracy on the clean test (greedy, both orders), % mean ± std over seeds; "
            f"Δ vs full pool in points with a paired bootstrap 95% CI over test items × seeds. "
            f"RL: {cfg.rl_steps} steps, lr {cfg.rl_learning_rate}, {cfg.rl_prompts_per_step} prompts × "
            f"{cfg.rl_generations} rollouts, estimator {cfg.rl_estimator} (T4 varies it), the same for every arm.\n"
        )
    if "T0" in results["tables"]:
        out.append(f"## {TITLES['T0']}\n")
        for metric, name in (
            ("auroc_flipped", "AUROC for flipped labels"),
            ("auroc_hard", "AUROC for hard items"),
            ("spearman", "Spearman ρ(entropy, rollout accuracy)"),
        ):
            cols = ["teacher", "SFT epochs", "n", "test acc %", *cfg.signals, "rollout error"]
            cols += ["ceiling (true ambiguity)"] if metric != "spearman" else []
            rows = []
            for r in results["tables"]["T0"]:
                row = [r["teacher"], f"{r['epoch']:g}", r["n_seeds"], _pct(r["test_accuracy"])]
                row += [_num(r[f"{metric}_{s}"]) for s in cfg.signals] + [_num(r[f"{metric}_rollout_error"])]
                row += [_num(r[f"{metric}_ceiling"])] if metric != "spearman" else []
                rows.append(row)
            out.append(f"**{name}**\n\n" + markdown_table(cols, rows))
    if "N" in results["tables"]:
        from egt.pipelines.experiment.noise_tables import render_noise_markdown

        out.append(render_noise_markdown(cfg, results["tables"]["N"]))
    for regime in cfg.regimes:
        if regime not in results["tables"]:
            continue
        tables = results["tables"].get(regime, {})
        mains = results.get("main_signal", {}).get(regime, {})
        out.append(
            f"## Regime: {regime} SFT judge (epoch {steps.regime_epoch(cfg, regime):g}, teacher "
            f"{cfg.rl_teacher}); main signal per seed: {mains or '–'}\n"
        )
        for table, rows in tables.items():
            title = TITLES[table].format(f=f"{round(100 * cfg.fraction)}%")
            cols = ["arm", "n", "test acc %", "Δ vs full (pts, 95% CI)", "flip rate %", "hard share %", "kept"]
            body = [
                [
                    r["label"],
                    r["n_seeds"],
                    _pct(r["accuracy"]),
                    _delta(r["delta_vs_full"]),
                    _pct(r["flip_rate"]),
                    _pct(r["hard_share"]),
                    r["n_kept"] if r["n_kept"] is not None else "–",
                ]
                for r in rows
            ]
            out.append(f"### {title}\n\n" + markdown_table(cols, body))
    return "\n".join(out)


def write_results(cfg: ExperimentConfig) -> dict:
    """Write ``results.json``, ``results.md`` and the plots under ``cfg.output_dir``; returns the results."""
    from egt.pipelines.experiment.plots import write_plots

    results = collect(cfg)
    out = Path(cfg.output_dir)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", render_markdown(cfg, results))
    results["plots"] = write_plots(cfg, results, out)
    return results
