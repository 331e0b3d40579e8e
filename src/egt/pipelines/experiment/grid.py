"""The experiment's grid: which RL arms run, and which arm fills each row of tables T1–T5.

An *arm* is one way of choosing and ordering RL data plus an estimator; a *cell* is an arm run for
one seed in one regime. Arms are named by what they are (``entropy-sentence-25pct-sorted-grpo``), so
two tables that need the same run share one cell: T2's 25% row is T1's cell, T3's ``off`` row is
T1's lowest-entropy cell, T4's ``grpo`` row is T3's ``sorted`` cell, T5's static row too.

"main" (the signal of T2–T5 and of RQ4's highest-entropy arm) is resolved per seed and regime from
that judge's scores (:func:`egt.pipelines.experiment.steps.resolve_main_signal`) before the grid is
expanded, so cell names always carry the concrete signal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from egt.pipelines.experiment.config import ExperimentConfig

SELECTORS = ("sft", "full", "random", "accuracy", "entropy", "highest", "oracle")


@dataclass(frozen=True)
class Arm:
    """One RL arm (``selector="sft"``: the SFT judge itself, no RL; it fills T1's first row).

    selector: full | random | accuracy (highest rollout accuracy against the label, EGT's baseline) |
        entropy (lowest) | highest (highest entropy, RQ4) | oracle (a seeded random subset of the
        items whose label is *not* flipped: the hidden truth, an upper bound on noise removal).
    signal: the entropy that ``entropy`` / ``highest`` select by and a curriculum orders by.
    """

    selector: str
    signal: str = ""
    fraction: float = 1.0
    curriculum: str = "off"
    estimator: str = "grpo"
    online: bool = False

    @property
    def name(self) -> str:
        if self.selector == "sft":
            return "sft"
        head = self.selector + (f"-{self.signal}" if self.selector in ("entropy", "highest") else "")
        tail = "-online" if self.online else ""
        return f"{head}-{round(100 * self.fraction):d}pct-{self.curriculum}-{self.estimator}{tail}"

    @property
    def needs_rl(self) -> bool:
        return self.selector != "sft"

    def to_json(self) -> dict:
        return {**asdict(self), "name": self.name}


def _size(fraction: float) -> str:
    return f"{round(100 * fraction):d}%"


def table_rows(cfg: ExperimentConfig, regime: str, main: str) -> dict[str, list[tuple[str, Arm]]]:
    """``{table: [(row label, arm)]}`` for one regime; T2–T5 only in ``cfg.main_regime``."""
    f, est, cur = cfg.fraction, cfg.rl_estimator, cfg.rl_curriculum
    tables: dict[str, list[tuple[str, Arm]]] = {}

    def arm(
        selector: str,
        signal: str = "",
        fraction: float = f,
        curriculum: str = cur,
        estimator: str = est,
        online: bool = False,
    ) -> Arm:
        if selector == "full" or (selector == "random" and fraction >= 1.0):
            selector, signal, fraction = "full", "", 1.0
        if selector == "entropy" and fraction >= 1.0 and curriculum == "off":
            selector, signal, fraction = "full", "", 1.0  # the whole pool, shuffled, whatever the signal
        return Arm(selector, signal, fraction, curriculum, estimator, online)

    if "T1" in cfg.tables:
        rows = [
            ("SFT judge, no RL", Arm("sft")),
            ("full pool", arm("full")),
            (f"random {_size(f)}", arm("random")),
            (f"accuracy {_size(f)} (EGT's baseline)", arm("accuracy")),
        ]
        rows += [(f"lowest entropy {_size(f)}: {s}", arm("entropy", s)) for s in cfg.signals]
        rows += [(f"highest entropy {_size(f)}: {main} (RQ4)", arm("highest", main))]
        if cfg.uses_lab:  # the oracle reads the lab's hidden truth; a real pool has none
            rows += [(f"oracle {_size(f)}: no flipped labels (hidden truth)", arm("oracle"))]
        tables["T1"] = rows
    if regime != cfg.main_regime:
        return tables
    if "T2" in cfg.tables:
        tables["T2"] = [
            (f"{who} {_size(s)}", arm(sel, sig, fraction=s))
            for s in cfg.subset_sizes
            for who, sel, sig in ((f"entropy ({main})", "entropy", main), ("random", "random", ""))
        ]
    if "T3" in cfg.tables:
        tables["T3"] = [(f"{c}", arm("entropy", main, curriculum=c)) for c in cfg.curricula]
    if "T4" in cfg.tables:
        tables["T4"] = [(e, arm("entropy", main, curriculum="sorted", estimator=e)) for e in cfg.estimators]
    if "T5" in cfg.tables:
        tables["T5"] = [
            ("static scores (sorted once)", arm("entropy", main, curriculum="sorted")),
            (f"online re-scoring ({cfg.online_stages} stages)", arm("entropy", main, curriculum="sorted", online=True)),
        ]
    return tables


def regime_arms(cfg: ExperimentConfig, regime: str, main: str) -> list[Arm]:
    """The distinct arms a regime needs (RL arms and the SFT row), in table order."""
    seen: dict[str, Arm] = {}
    for rows in table_rows(cfg, regime, main).values():
        for _, a in rows:
            seen.setdefault(a.name, a)
    return list(seen.values())
