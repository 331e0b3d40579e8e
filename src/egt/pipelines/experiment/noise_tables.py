"""Table N (issue 26): when does entropy curation pay? Collected from finished cells, seed-level CIs.

For every block (noise model × SFT judge × RL strength) and arm: clean-test accuracy overall, on the
biased region (the systematic model's region; the same test items for both noise models) and on the
rest; each arm's difference to the full pool with a hierarchical bootstrap CI (seeds, then items:
:mod:`egt.pipelines.experiment.stats`) and the per-seed differences beside the mean; the zero-variance
group fraction over training and the format-failure rate; the selection's flipped, hard and
biased-region shares. Then two summaries: the positive control (full-pool RL on systematic labels
must lower region accuracy by ``control_drop`` on every seed) and the answer table — per block the
oracle gap and EGT 25%, keep 75%, pass-rate band and dynamic sampling minus the full pool, and the
best arm, each on overall and on region accuracy.
"""

from __future__ import annotations

import numpy as np

from egt.pipelines.experiment import steps
from egt.pipelines.experiment.config import ExperimentConfig
from egt.pipelines.experiment.grid import block_arms, parse_blocks
from egt.pipelines.experiment.stats import hierarchical_bootstrap, paired_deltas

METRICS = ("overall", "region", "rest")
ANSWER_COLUMNS = (
    ("oracle", "oracle gap (oracle − full)"),
    ("egt", "EGT 25% − full"),
    ("keep75", "keep 75% − full"),
    ("pass_rate", "pass-rate band − full"),
    ("full_ds", "dynamic sampling − full"),
)


def _mean_std(values: list[float]) -> list[float | None]:
    if not values:
        return [None, None]
    arr = np.asarray(values, dtype=float)
    return [float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0]


def _masked(per_item: list[float], mask: np.ndarray, metric: str) -> np.ndarray:
    values = np.asarray(per_item, dtype=float)
    if metric == "overall":
        return values
    return values[mask] if metric == "region" else values[~mask]


def _accuracy(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _result(cfg: ExperimentConfig, seed: int, block, arm) -> dict | None:
    """A finished cell's result; the SFT row is the judge's own clean-test evaluation."""
    if not arm.needs_rl:
        folder = steps.regime_stats_dir(cfg, seed, block.regime)
        return {"final": steps.read_done(folder)["test"], "train_log": []} if steps.is_done(folder) else None
    folder = steps.cell_dir(cfg, seed, block.regime, arm, block.noise, block.strength)
    return steps.read_done(folder) if steps.is_done(folder) else None


def _main_signal(cfg: ExperimentConfig, block) -> str:
    for seed in cfg.seeds:
        folder = steps.regime_stats_dir(cfg, seed, block.regime)
        if steps.is_done(folder):
            return steps.main_signal_of(cfg, steps.read_done(folder))
    return cfg.main_signal if cfg.main_signal != "auto" else cfg.signals[0]


def collect_noise(cfg: ExperimentConfig) -> dict:
    """``{"blocks": [...], "positive_control": [...], "answer": [...]}`` from whatever has finished."""
    masks = {}
    for seed in cfg.seeds:
        if (steps.lab_dir(cfg, seed, cfg.rl_teacher) / "test.jsonl").is_file():
            masks[seed] = np.asarray(steps.region_mask(cfg, seed), dtype=bool)
    blocks = []
    for block in parse_blocks(cfg.blocks):
        rows = []
        per_arm: dict[str, dict[int, dict]] = {}
        for token, label, arm in block_arms(cfg, block, _main_signal(cfg, block)):
            found = {s: r for s in cfg.seeds if s in masks and (r := _result(cfg, s, block, arm)) is not None}
            per_arm[token] = found
            from egt.pipelines.experiment.cells import missing_feature

            why = missing_feature(arm) if not found and arm.needs_rl else None
            rows.append({"token": token, "label": label, "arm": arm.name, "per_seed": found, "not_run": why})
        full = per_arm.get("full", {})
        out_rows = [_summarise(cfg, row, full, masks) for row in rows]
        blocks.append(
            {
                "key": block.key,
                "noise": block.noise,
                "regime": block.regime,
                "strength": block.strength,
                "rows": out_rows,
            }
        )
    return {
        "blocks": blocks,
        "positive_control": positive_control(cfg, blocks),
        "answer": answer_rows(blocks),
        "region_share_of_test": _mean_std([float(m.mean()) for m in masks.values()]),
    }


def _summarise(cfg: ExperimentConfig, row: dict, full: dict[int, dict], masks: dict[int, np.ndarray]) -> dict:
    found = row.pop("per_seed")
    out = {**row, "n_seeds": len(found), "seeds": sorted(found)}
    items = {s: r["final"]["per_item"] for s, r in found.items()}
    full_items = {s: r["final"]["per_item"] for s, r in full.items()}
    for metric in METRICS:
        accs = [a for s, v in items.items() if (a := _accuracy(_masked(v, masks[s], metric))) is not None]
        out[f"accuracy_{metric}"] = _mean_std(accs)
        arm = {s: _masked(v, masks[s], metric) for s, v in items.items()}
        base = {s: _masked(v, masks[s], metric) for s, v in full_items.items()}
        out[f"delta_{metric}"] = hierarchical_bootstrap(paired_deltas(arm, base), cfg.bootstrap_resamples)
    logs = {s: r.get("train_log") or [] for s, r in found.items()}
    zero = [float(np.mean([e["frac_reward_zero_std"] for e in log])) for log in logs.values() if log]
    fails = [
        float(np.mean(v))
        for log in logs.values()
        if (v := [e["format_failure_rate"] for e in log if e.get("format_failure_rate") is not None])
    ]
    out["zero_variance_fraction"] = _mean_std(zero)
    out["train_format_failure_rate"] = _mean_std(fails)
    out["test_format_failure_rate"] = _mean_std([r["final"]["format_failure_rate"] for r in found.values()])
    selections = [r["selection"] for r in found.values() if r.get("selection")]
    for key in ("flip_rate", "hard_share", "region_share"):
        out[key] = _mean_std([s[key] for s in selections if s.get(key) is not None])
    out["n_kept"] = _mean_std([s["n_kept"] for s in selections])
    out["per_seed_accuracy"] = {
        str(s): {m: _accuracy(_masked(v, masks[s], m)) for m in METRICS} for s, v in items.items()
    }
    return out


def positive_control(cfg: ExperimentConfig, blocks: list[dict]) -> list[dict]:
    """Systematic blocks with SFT and full-pool rows: region accuracy full − SFT, and whether every seed drops.

    The Δ is the SFT row's region Δ vs the full pool, negated: the same paired items and the same
    hierarchical bootstrap (seeds, then region items).
    """
    out = []
    for block in blocks:
        rows = {r["token"]: r for r in block["rows"]}
        if block["noise"] != "systematic" or "full" not in rows or "sft" not in rows:
            continue
        d = rows["sft"]["delta_region"]
        delta = None
        if d is not None:
            ci = d["ci95"]
            delta = {
                **d,
                "mean": 0.0 - d["mean"],  # 0.0 − x: no "-0.0" in the table
                "per_seed": [0.0 - v for v in d["per_seed"]],
                "ci95": None if ci is None else (0.0 - ci[1], 0.0 - ci[0]),
            }
        drops = [] if delta is None else delta["per_seed"]
        out.append(
            {
                "block": block["key"],
                "regime": block["regime"],
                "strength": block["strength"],
                "n_seeds": len(drops),
                "sft_region": rows["sft"]["accuracy_region"],
                "full_region": rows["full"]["accuracy_region"],
                "per_seed_delta": drops,
                "delta": delta,
                "passes": bool(drops) and all(v <= -cfg.control_drop for v in drops),
            }
        )
    return out


def answer_rows(blocks: list[dict]) -> list[dict]:
    """Per block and metric (overall, region): each answer column's Δ vs full, and the best non-oracle arm."""
    out = []
    for block in blocks:
        rows = {r["token"]: r for r in block["rows"]}
        entry = {
            "block": block["key"],
            "noise": block["noise"],
            "regime": block["regime"],
            "strength": block["strength"],
        }
        for metric in ("overall", "region"):
            cols = {token: rows[token][f"delta_{metric}"] if token in rows else None for token, _ in ANSWER_COLUMNS}
            candidates = [r for t, r in rows.items() if t != "oracle" and r[f"accuracy_{metric}"][0] is not None]
            best = max(candidates, key=lambda r: r[f"accuracy_{metric}"][0], default=None)
            entry[metric] = {
                "columns": cols,
                "best": None if best is None else {"label": best["label"], "accuracy": best[f"accuracy_{metric}"]},
            }
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _pct(ms) -> str:
    mean, std = ms
    return "–" if mean is None else f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def delta_text(d: dict | None) -> str:
    """``+3.1 [−1.0, +6.2] (seeds +2.0 / +4.5 / +2.8)`` in points; "–" when nothing finished."""
    if d is None:
        return "–"
    ci = d["ci95"]
    text = f"{100 * d['mean']:+.1f}" + ("" if ci is None else f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]")
    return text + " (seeds " + " / ".join(f"{100 * v:+.1f}" for v in d["per_seed"]) + ")"


def render_noise_markdown(cfg: ExperimentConfig, noise: dict) -> str:
    from egt.report import markdown_table

    share = noise["region_share_of_test"][0]
    out = [
        "## Table N — when does entropy curation pay? (issue 26)\n",
        f"Clean test of {cfg.n_test} items per seed"
        + ("" if share is None else f", {100 * share:.1f}% of them in the biased region")
        + ". Accuracy % mean ± std over seeds. Δ vs the full pool in points: mean of the per-seed means, "
        "[95% CI of a hierarchical bootstrap: seeds, then items within each seed], (each seed's Δ). "
        f"RL strengths: gentle lr {cfg.rl_learning_rate:g} × {cfg.rl_steps} steps, strong lr "
        f"{cfg.strong_learning_rate:g} × {cfg.strong_steps} steps; {cfg.rl_prompts_per_step} prompts × "
        f"{cfg.rl_generations} rollouts, estimator {cfg.rl_estimator}, the same for every arm.\n",
    ]
    out.append("### Answer: Δ vs the full pool, seed-level 95% CI (region accuracy; overall below)\n")
    for metric in ("region", "overall"):
        cols = ["noise", "judge", "RL", *[name for _, name in ANSWER_COLUMNS], "best arm (not oracle)"]
        body = []
        for a in noise["answer"]:
            m = a[metric]
            best = m["best"]
            body.append(
                [
                    a["noise"],
                    a["regime"],
                    a["strength"],
                    *[delta_text(m["columns"][t]) for t, _ in ANSWER_COLUMNS],
                    "–" if best is None else f"{best['label']} ({_pct(best['accuracy'])})",
                ]
            )
        out.append(f"**{metric} accuracy**\n\n" + markdown_table(cols, body))
    if noise["positive_control"]:
        cols = [
            "block",
            "n",
            "SFT region acc %",
            "full-pool region acc %",
            "Δ (pts, CI, per seed)",
            f"every seed ≤ −{100 * cfg.control_drop:g}?",
        ]
        body = [
            [
                p["block"],
                p["n_seeds"],
                _pct(p["sft_region"]),
                _pct(p["full_region"]),
                delta_text(p["delta"]),
                "yes" if p["passes"] else "no",
            ]
            for p in noise["positive_control"]
        ]
        out.append(
            "### Positive control: full-pool RL on systematic labels must lower region accuracy\n\n"
            + markdown_table(cols, body)
        )
    for block in noise["blocks"]:
        cols = [
            "arm",
            "n",
            "acc %",
            "Δ overall",
            "region acc %",
            "Δ region",
            "rest acc %",
            "Δ rest",
            "zero-var groups %",
            "format fail % (train / test)",
            "flip %",
            "hard %",
            "region %",
            "kept",
        ]
        body = []
        for r in block["rows"]:
            body.append(
                [
                    r["label"] + (f" — not run: {r['not_run']}" if r.get("not_run") else ""),
                    r["n_seeds"],
                    _pct(r["accuracy_overall"]),
                    delta_text(r["delta_overall"]),
                    _pct(r["accuracy_region"]),
                    delta_text(r["delta_region"]),
                    _pct(r["accuracy_rest"]),
                    delta_text(r["delta_rest"]),
                    _pct(r["zero_variance_fraction"]),
                    f"{_pct(r['train_format_failure_rate'])} / {_pct(r['test_format_failure_rate'])}",
                    _pct(r["flip_rate"]),
                    _pct(r["hard_share"]),
                    _pct(r["region_share"]),
                    "–" if r["n_kept"][0] is None else f"{r['n_kept'][0]:.0f}",
                ]
            )
        out.append(
            f"### {block['noise']} labels, {block['regime']} judge (epoch "
            f"{steps.regime_epoch(cfg, block['regime']):g}), {block['strength']} RL\n\n" + markdown_table(cols, body)
        )
    return "\n".join(out)
