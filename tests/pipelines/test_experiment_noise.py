"""Table N (issue 26): blocks, the relabelled scores, the egt arm's sweep, the gates, and the smoke grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from egt.errors import EgtError
from egt.pipelines.experiment.cells import missing_feature, one_pass_data, relabel_scores, training_log
from egt.pipelines.experiment.config import ExperimentConfig
from egt.pipelines.experiment.grid import Arm, block_arms, parse_blocks
from egt.records import PreferencePair

REPO = Path(__file__).resolve().parents[2]


def test_blocks_parse_and_name_their_arms():
    cfg = ExperimentConfig(tables=["N"], fraction=0.25)
    (block,) = parse_blocks(
        ["systematic/weak/strong: sft full full_ds egt keep75 keep75_ds pass_rate entropy50 random100"]
    )
    assert (block.noise, block.regime, block.strength, block.key) == (
        "systematic",
        "weak",
        "strong",
        "systematic/strong/weak",
    )
    names = [a.name for _, _, a in block_arms(cfg, block, "peak")]
    assert names == [
        "sft",
        "full-100pct-off-grpo",
        "full-100pct-off-grpo-ds",
        "entropy-peak-25pct-onepass-grpo",
        "entropy-peak-75pct-off-grpo",
        "entropy-peak-75pct-off-grpo-ds",
        "pass_rate-0.25-0.75-100pct-off-grpo",
        "entropy-peak-50pct-off-grpo",
    ]  # random100 is the full pool: one cell
    for bad, match in (
        ("systematic/weak: full", "NOISE/REGIME/STRENGTH"),
        ("biased/weak/strong: full", "noise is one of"),
        ("random/weak/strong: full best", "unknown arm 'best'"),
        ("random/weak/strong: entropy0", "unknown arm"),
    ):
        with pytest.raises(EgtError, match=match):
            parse_blocks([bad])
    with pytest.raises(EgtError, match="given twice"):
        parse_blocks(["random/weak/gentle: full", "random/weak/gentle: egt"])
    with pytest.raises(EgtError, match="blocks"):
        ExperimentConfig(tables=["N"], regimes=["weak"], blocks=["random/converged/gentle: full"]).check()
    assert ExperimentConfig().strength("gentle") == (1e-5, 120, 40)
    assert ExperimentConfig().strength("strong") == (1e-4, 250, 125)


def _pair(i: int, preferred: int, flipped: bool, region: bool) -> PreferencePair:
    meta = {"true_preferred": 1 - preferred if flipped else preferred, "flipped": flipped, "region": region}
    return PreferencePair(id=f"i{i}", question="q", responses=("a", "b"), preferred=preferred, meta=meta)


def test_relabelled_scores_recount_the_pass_rate_and_keep_the_entropies():
    records = [
        {
            "id": "i0",
            "verdicts": [0, 0, 1, None],
            "accuracy": 0.5,
            "preferred": 0,
            "flipped": False,
            "peak_entropy": 0.3,
        },
        {"id": "i1", "verdicts": [1, 1, 1, 1], "accuracy": 1.0, "preferred": 1, "flipped": False, "peak_entropy": 0.1},
    ]
    pool = [_pair(0, 1, True, True), _pair(1, 1, False, False)]
    got = relabel_scores(records, pool)
    # i0 is now labelled 1: one of four verdicts says 1 (the None is a failure, counted wrong)
    assert got[0]["accuracy"] == 0.25 and got[0]["preferred"] == 1 and got[0]["flipped"] and got[0]["region"]
    assert got[1]["accuracy"] == 1.0 and not got[1]["region"]
    assert [r["peak_entropy"] for r in got] == [0.3, 0.1] and records[0]["accuracy"] == 0.5  # input untouched


def test_the_egt_arm_sweeps_low_to_high_once_over_the_budget():
    """6 kept items (a..f, low → high), 2 stages, a budget of 14 prompts: ⌈14/6⌉ = 3 rounds per stage."""
    ids = list("abcdefgh")
    rows = [
        {"id": i, "kept": i not in "gh", "rank": r, "scores": {"peak": 0.1 * r, "format_failures": r == 5}}
        for r, i in enumerate(ids)
    ]
    pairs = {i: PreferencePair(id=i, question="q", responses=("x", "y"), preferred=0) for i in ids}
    sweep_pairs, sweep_rows = one_pass_data(rows, pairs, budget=14, stages=2, by="peak")
    order = [r["id"] for r in sweep_rows]
    assert order == [f"{i}~{k}" for k in range(3) for i in "abc"] + [f"{i}~{k}" for k in range(3) for i in "def"]
    assert [p.id for p in sweep_pairs] == order and all(r["kept"] for r in sweep_rows)
    # the sorted curriculum orders by scores[by] (format failures first): it must replay the sweep
    assert [r["scores"]["peak"] for r in sweep_rows] == list(range(18))
    assert all(r["scores"]["format_failures"] == 0 for r in sweep_rows)
    # a budget within one pass: one round, stages in order
    _, one = one_pass_data(rows, pairs, budget=4, stages=2, by="peak")
    assert [r["id"] for r in one] == ["a~0", "b~0", "c~0", "d~0", "e~0", "f~0"]


def test_the_training_log_comes_from_the_summary_or_the_last_checkpoint(tmp_path):
    log = [{"step": 5, "frac_reward_zero_std": 0.5}]
    assert training_log(tmp_path / "judge", {"log": log}) == log
    assert training_log(tmp_path / "judge", {}) == []
    for step, history in (
        (2, [{"step": 1, "frac_reward_zero_std": 1.0}]),
        (
            4,
            [
                {"step": 1, "frac_reward_zero_std": 1.0, "rewards/judge_format/mean": 1.0},
                {"step": 3, "frac_reward_zero_std": 0.25, "rewards/judge_format/mean": 0.75, "reward": 1.2},
                {"step": 4, "train_runtime": 9.0},
            ],
        ),
    ):
        folder = tmp_path / "judge.checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    got = training_log(tmp_path / "judge", {})
    assert [(e["step"], e["frac_reward_zero_std"], e["format_failure_rate"]) for e in got] == [
        (1, 1.0, 0.0),
        (3, 0.25, 0.25),
    ]


def test_arms_whose_feature_is_missing_are_gated(monkeypatch):
    import egt.curation.selectors as selectors

    monkeypatch.setattr(selectors, "SELECTORS", ("entropy", "random", "accuracy"))
    assert "pass_rate" in missing_feature(Arm("pass_rate", band="0.25,0.75"))
    monkeypatch.setattr(selectors, "SELECTORS", ("entropy", "random", "accuracy", "pass_rate"))
    assert missing_feature(Arm("pass_rate", band="0.25,0.75")) is None
    assert missing_feature(Arm("full")) is None


def test_the_plan_leaves_out_gated_arms_and_orders_blocks_before_seeds(monkeypatch, tmp_path):
    from egt.pipelines.experiment import cells, runner

    monkeypatch.setattr(cells, "missing_feature", lambda arm: "not here" if arm.dynamic else None)
    cfg = ExperimentConfig(
        output_dir=str(tmp_path),
        tables=["N"],
        teachers=["annotator"],
        regimes=["weak"],
        main_regime="weak",
        sft_checkpoint_epochs=[2.0],
        weak_epoch=2.0,
        converged_epoch=2.0,
        sft_epochs=2.0,
        seeds=[0, 1],
        blocks=["systematic/weak/strong: sft full full_ds egt", "random/weak/gentle: full"],
    )
    cfg.check()
    skipped: dict[str, str] = {}
    units = runner.plan(cfg, skipped)
    assert skipped == {"full-100pct-off-grpo-ds": "not here"}
    kinds = [u.kind for u in units]
    assert kinds.count("noise") == 2 and kinds.count("rl") == 2 * 3  # per seed: full, egt (systematic), full (random)
    rl = sorted((u for u in units if u.kind == "rl"), key=lambda u: u.priority)
    assert [u.key.split("/", 1)[0] for u in rl[:2]] == ["seed0", "seed1"]  # block 1's first arm on every seed first
    assert all(u.call == ("pending", ()) for u in rl)  # no scores yet: cells wait for their judge
    noise = next(u for u in units if u.kind == "noise")
    assert noise.deps == ["seed0/lab-annotator"]


@pytest.mark.parametrize("preset", ["lab_noise", "lab_noise_smoke"])
def test_noise_presets_are_valid(preset):
    from dataclasses import fields

    values = yaml.safe_load((REPO / "configs" / "experiment" / f"{preset}.yaml").read_text())
    assert set(values) <= {f.name for f in fields(ExperimentConfig)}
    ExperimentConfig(**values).check()


@pytest.mark.slow
def test_the_noise_grid_runs_end_to_end_and_renders_its_tables(tmp_path):
    """lab_noise_smoke with two blocks: relabelled pool, every table of N, the answer plot; gated arms named."""
    from egt.cli import main
    from egt.pipelines.experiment.cells import missing_feature

    out = tmp_path / "exp"
    blocks = [
        "systematic/weak/strong: sft full oracle egt keep75 pass_rate full_ds",
        "random/weak/gentle: sft full egt",
    ]
    preset = REPO / "configs" / "experiment" / "lab_noise_smoke.yaml"
    assert (
        main(["experiment", "--config", str(preset), "--output_dir", str(out), "--workers", "2", "--blocks", *blocks])
        == 0
    )

    noise = json.loads((out / "seed0" / "noise-systematic" / "done.json").read_text())
    assert noise["rl_pool"]["n"] == 24 and "region_share" in noise["rl_pool"]
    cell = json.loads((out / "seed1/systematic/strong/weak/entropy-peak-25pct-onepass-grpo/done.json").read_text())
    assert cell["rl"]["steps"] == 2 and cell["selection"]["n_kept"] == 6 and len(cell["final"]["per_item"]) == 40
    assert cell["train_log"] and {"step", "frac_reward_zero_std"} <= set(cell["train_log"][0])
    # 2 steps × 2 prompts = 4 ≤ 6 kept: one round, the 6 items low → high
    sweep = (out / "seed1/systematic/strong/weak/entropy-peak-25pct-onepass-grpo/sweep_manifest.jsonl").read_text()
    assert len(sweep.splitlines()) == 6

    n = json.loads((out / "results.json").read_text())["tables"]["N"]
    assert [b["key"] for b in n["blocks"]] == ["systematic/strong/weak", "random/gentle/weak"]
    rows = {r["token"]: r for r in n["blocks"][0]["rows"]}
    for token in ("sft", "full", "oracle", "egt", "keep75"):
        assert rows[token]["n_seeds"] == 2, token
        assert rows[token]["delta_region"]["n_seeds"] == 2 and len(rows[token]["delta_overall"]["per_seed"]) == 2
    assert rows["full"]["delta_overall"]["per_seed"] == [0.0, 0.0] and rows["oracle"]["flip_rate"][0] == 0.0
    for token, arm in (("pass_rate", Arm("pass_rate", band="0.25,0.75")), ("full_ds", Arm("full", dynamic=True))):
        assert (rows[token]["not_run"] is not None) == (missing_feature(arm) is not None)
    (control,) = n["positive_control"]
    assert control["block"] == "systematic/strong/weak" and len(control["per_seed_delta"]) == 2
    assert [a["block"] for a in n["answer"]] == ["systematic/strong/weak", "random/gentle/weak"]
    md = (out / "results.md").read_text()
    for heading in ("### Answer", "### Positive control", "### systematic labels, weak judge", "### random labels"):
        assert heading in md
    assert "(seeds " in md and (out / "answer.png").stat().st_size > 1000

    _review_budget_cells_correct_what_the_reviewer_read(out, preset)


def _review_budget_cells_correct_what_the_reviewer_read(out, preset):
    """Issue 25 item 4 on the same folder: the corrected pool has exactly the flips the reviewer found
    in the first k of its ranking fixed, RL trains on it, a rerun is skipped, and bench/review_budget.py
    prints the Δ vs the full cell per seed."""
    import subprocess
    import sys

    from egt.config import parse_config
    from egt.pipelines.experiment import ExperimentConfig
    from egt.pipelines.experiment.review import review_order, run_review_cell, scored_pool, summarise
    from egt.records import read_pairs

    (cfg,) = parse_config([ExperimentConfig], ["--config", str(preset), "--output_dir", str(out)], "test")
    results = []
    for seed in (0, 1):
        records, pool = scored_pool(cfg, seed)
        flipped = {p.id for p in pool if p.meta["flipped"]}
        for ranking, k in (("disagreement", 6), ("all", 0)):
            cell = run_review_cell(cfg, seed, ranking, k)
            results.append(cell)
            read = review_order(records, ranking, seed)[: k or len(pool)]
            assert cell["flips_found"] == len(flipped & set(read)) and cell["flipped_before"] == len(flipped)
            folder = out / "review" / f"seed{seed}" / f"{ranking}-{k}"
            corrected = read_pairs(folder / "pool" / "relabelled.jsonl")
            assert sum(bool(p.meta["flipped"]) for p in corrected) == len(flipped) - cell["flips_found"]
            assert cell["rl"]["steps"] == 2 and len(cell["final"]["per_item"]) == 40
        assert results[-1]["flips_found"] == len(flipped) > 0  # "all" fixes every flipped label
    done = (out / "review" / "seed0" / "all-0" / "done.json").stat().st_mtime_ns
    assert run_review_cell(cfg, 0, "all", 0) == results[1]
    assert (out / "review" / "seed0" / "all-0" / "done.json").stat().st_mtime_ns == done
    summary = summarise(cfg, results)
    assert summary["k0_seeds"] == [0, 1] and [(r["ranking"], r["k"]) for r in summary["rows"]] == [
        ("all", 24),
        ("disagreement", 6),
    ]
    assert len(summary["rows"][0]["delta_overall"]["per_seed"]) == 2
    bench = subprocess.run(
        [sys.executable, str(REPO / "bench" / "review_budget.py"), "--experiment", str(out), "--seeds", "0", "1"]
        + ["--rankings", "disagreement", "all", "--budgets", "6"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "disagreement" in bench.stdout and "Δ vs the uncorrected pool" in bench.stdout
    assert (out / "review" / "review_budget.png").stat().st_size > 1000


def _row(token, acc_region, delta_region=None, acc_overall=0.9):
    return {
        "token": token,
        "label": token,
        "accuracy_region": [acc_region, 0.0],
        "accuracy_overall": [acc_overall, 0.0],
        "delta_region": delta_region,
        "delta_overall": None,
    }


def test_positive_control_needs_the_drop_on_every_seed_and_the_answer_skips_the_oracle():
    from egt.pipelines.experiment.noise_tables import answer_rows, positive_control

    cfg = ExperimentConfig(control_drop=0.05)
    # SFT − full on the region per seed: +6 and +14 points → full − SFT: −6 and −14, both ≤ −5
    sft = _row("sft", 0.8, {"mean": 0.1, "per_seed": [0.06, 0.14], "ci95": (0.05, 0.15), "n_seeds": 2})
    block = {
        "key": "systematic/strong/weak",
        "noise": "systematic",
        "regime": "weak",
        "strength": "strong",
        "rows": [sft, _row("full", 0.7), _row("oracle", 0.95, acc_overall=0.99), _row("egt", 0.75, acc_overall=0.95)],
    }
    (control,) = positive_control(cfg, [block])
    assert control["per_seed_delta"] == [-0.06, -0.14] and control["passes"]
    assert control["delta"]["mean"] == -0.1 and control["delta"]["ci95"] == (-0.15, -0.05)
    sft["delta_region"] = {**sft["delta_region"], "per_seed": [0.04, 0.16]}  # one seed drops only 4 points
    assert not positive_control(cfg, [block])[0]["passes"]
    assert positive_control(cfg, [{**block, "noise": "random"}]) == []  # the control is systematic noise's
    (answer,) = answer_rows([block])
    assert answer["region"]["best"]["label"] == "sft" and answer["overall"]["best"]["label"] == "egt"  # not oracle
    assert answer["region"]["columns"]["pass_rate"] is None  # an arm the block does not run
