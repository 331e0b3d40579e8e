"""The experiment's grid: which RL arms run, and which arm fills each row of tables T1–T5.

An *arm* is one way of choosing and ordering RL data plus an estimator; a *cell* is an arm run for
one seed in one regime. Arms are named by what they are (``entropy-sentence-25pct-sorted-grpo``), so
two tables that need the same run share one cell: T2's 25% row is T1's cell, T3's ``off`` row is
T1's lowest-entropy cell, T4's ``grpo`` row is T3's ``sorted`` cell, T5's static row too.

"main" (the signal of T2–T5 and of RQ4's highest-entropy arm) is resolved per seed and regime from
that judge's scores (:func:`egt.pipelines.experiment.steps.resolve_main_signal`) before the grid is
expanded, so cell names always carry the concrete signal.

Table N (issue 26) is laid out in *blocks* — a noise model × a regime (SFT judge) × an RL strength,
each with its own list of arms (:func:`parse_blocks`, :func:`block_arms`); a block's cells live in
``seed{s}/{noise}/{strength}/{regime}/{arm}``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from egt.errors import EgtError
from egt.lab.noise import NOISE_MODELS
from egt.pipelines.experiment.config import RL_STRENGTHS, ExperimentConfig

SELECTORS = ("sft", "full", "random", "accuracy", "entropy", "highest", "oracle", "pass_rate")


@dataclass(frozen=True)
class Arm:
    """One RL arm (``selector="sft"``: the SFT judge itself, no RL; it fills T1's first row).

    selector: full | random | accuracy (highest rollout accuracy against the label, EGT's baseline) |
        entropy (lowest) | highest (highest entropy, RQ4) | oracle (a seeded random subset of the
        items whose label is *not* flipped: the hidden truth, an upper bound on noise removal).
    signal: the entropy that ``entropy`` / ``highest`` select by and a curriculum orders by.
    pass_rate (table N): the items whose rollout pass rate lies in ``band`` ("LOW,HIGH"), as
        ``egt curate --selector pass_rate --pass_band LOW,HIGH`` keeps them — the field's filter.
    curriculum ``onepass`` (table N's egt arm): one low → high sweep over the whole budget
        (:func:`egt.pipelines.experiment.cells.one_pass_data`), where ``sorted`` restarts each pass.
    dynamic: DAPO dynamic sampling with refill (``--dynamic_sampling true --dynamic_sampling_metric
        accuracy --max_generation_batches N``).
    """

    selector: str
    signal: str = ""
    fraction: float = 1.0
    curriculum: str = "off"
    estimator: str = "grpo"
    online: bool = False
    dynamic: bool = False
    band: str = ""

    @property
    def name(self) -> str:
        if self.selector == "sft":
            return "sft"
        head = self.selector + (f"-{self.signal}" if self.selector in ("entropy", "highest") else "")
        head += f"-{self.band.replace(',', '-')}" if self.selector == "pass_rate" else ""
        tail = ("-online" if self.online else "") + ("-ds" if self.dynamic else "")
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


# --------------------------------------------------------------------------------------------
# Table N: blocks of noise model × regime × RL strength (issue 26)
# --------------------------------------------------------------------------------------------

ARM_TOKENS = ("sft", "full", "full_ds", "random", "oracle", "egt", "accuracy", "pass_rate", "keep75", "keep75_ds")
SIZED_TOKEN = re.compile(r"^(entropy|random)(\d{1,3})$")


@dataclass(frozen=True)
class Block:
    """One row group of table N: cells of ``arms`` on ``noise`` labels from the ``regime`` judge at ``strength``."""

    noise: str
    regime: str
    strength: str
    arms: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.noise}/{self.strength}/{self.regime}"


def parse_blocks(specs: list[str]) -> list[Block]:
    """``"systematic/weak/strong: full egt …"`` → :class:`Block`; a malformed one is an :class:`EgtError`."""
    blocks, seen = [], set()
    for spec in specs:
        head, sep, tail = spec.partition(":")
        parts = [p.strip() for p in head.split("/")]
        if not sep or len(parts) != 3:
            raise EgtError(f"field 'blocks': {spec!r} is not 'NOISE/REGIME/STRENGTH: ARM ARM …'")
        noise, regime, strength = parts
        if noise not in NOISE_MODELS or strength not in RL_STRENGTHS:
            raise EgtError(
                f"field 'blocks': {spec!r}: noise is one of {' | '.join(NOISE_MODELS)}, "
                f"strength one of {' | '.join(RL_STRENGTHS)}"
            )
        arms = tuple(tail.split())
        for token in arms:
            sized = SIZED_TOKEN.match(token)
            if token not in ARM_TOKENS and not (sized and 0 < int(sized.group(2)) <= 100):
                raise EgtError(
                    f"field 'blocks': {spec!r}: unknown arm {token!r} ({' '.join(ARM_TOKENS)} entropyNN randomNN)"
                )
        block = Block(noise, regime, strength, arms)
        if block.key in seen:
            raise EgtError(f"field 'blocks': {block.key} is given twice")
        seen.add(block.key)
        blocks.append(block)
    return blocks


def arm_of(cfg: ExperimentConfig, token: str, main: str) -> tuple[str, Arm]:
    """A block's arm token → (row label, arm); selection arms shuffle (curriculum off) unless said."""
    f, est = cfg.fraction, cfg.rl_estimator
    size = _size(f)
    fixed = {
        "sft": ("SFT judge, no RL", Arm("sft")),
        "full": ("full pool", Arm("full", estimator=est)),
        "full_ds": ("full pool + dynamic sampling", Arm("full", estimator=est, dynamic=True)),
        "random": (f"random {size}", Arm("random", fraction=f, estimator=est)),
        "oracle": (f"oracle {size}: no flipped labels (hidden truth)", Arm("oracle", fraction=f, estimator=est)),
        "egt": (
            f"EGT: lowest {main} {size}, one low→high pass",
            Arm("entropy", main, f, curriculum="onepass", estimator=est),
        ),
        "accuracy": (f"accuracy {size} (EGT's baseline)", Arm("accuracy", fraction=f, estimator=est)),
        "pass_rate": (f"pass-rate band [{cfg.pass_band}]", Arm("pass_rate", estimator=est, band=cfg.pass_band)),
        "keep75": ("keep 75% (drop the most uncertain 25%)", Arm("entropy", main, 0.75, estimator=est)),
        "keep75_ds": ("keep 75% + dynamic sampling", Arm("entropy", main, 0.75, estimator=est, dynamic=True)),
    }
    if token in fixed:
        return fixed[token]
    sized = SIZED_TOKEN.match(token)
    if sized is None:
        raise EgtError(f"unknown arm token {token!r}")
    who, fraction = sized.group(1), int(sized.group(2)) / 100
    if fraction >= 1.0:
        return "full pool", Arm("full", estimator=est)
    if who == "random":
        return f"random {_size(fraction)}", Arm("random", fraction=fraction, estimator=est)
    return f"lowest {main} {_size(fraction)} (shuffled)", Arm("entropy", main, fraction, estimator=est)


def block_arms(cfg: ExperimentConfig, block: Block, main: str) -> list[tuple[str, str, Arm]]:
    """``[(token, row label, arm)]`` of a block, distinct arms only, in the block's order."""
    out, names = [], set()
    for token in block.arms:
        label, arm = arm_of(cfg, token, main)
        if arm.name not in names:
            names.add(arm.name)
            out.append((token, label, arm))
    return out
