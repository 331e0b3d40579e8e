"""The experiment's pieces without training: grid, selection, schedule, statistics, preset checks."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import yaml

from egt.errors import EgtError
from egt.pipelines.experiment.cells import select
from egt.pipelines.experiment.config import ExperimentConfig
from egt.pipelines.experiment.grid import Arm, regime_arms, table_rows
from egt.pipelines.experiment.runner import check_preset
from egt.pipelines.experiment.steps import resolve_main_signal, sft_schedule
from egt.pipelines.experiment.tables import paired_bootstrap

REPO = Path(__file__).resolve().parents[2]


def test_tables_share_cells_where_they_are_the_same_run():
    cfg = ExperimentConfig()
    t = table_rows(cfg, "weak", "peak")
    names = {table: [a.name for _, a in rows] for table, rows in t.items()}
    assert names["T1"][:4] == ["sft", "full-100pct-off-grpo", "random-25pct-off-grpo", "accuracy-25pct-off-grpo"]
    assert "highest-peak-25pct-off-grpo" in names["T1"] and "oracle-25pct-off-grpo" in names["T1"]
    assert names["T2"][2:4] == ["entropy-peak-25pct-off-grpo", "random-25pct-off-grpo"]  # = T1's cells
    assert names["T2"][-2:] == ["full-100pct-off-grpo", "full-100pct-off-grpo"]  # 100% of either is the full pool
    assert names["T3"][2] == "entropy-peak-25pct-off-grpo"  # T3's "off" is T1's lowest-entropy cell
    assert names["T4"][0] == names["T3"][0] == names["T5"][0] == "entropy-peak-25pct-sorted-grpo"
    assert names["T5"][1] == "entropy-peak-25pct-sorted-grpo-online"
    arms = regime_arms(cfg, "weak", "peak")
    assert (
        len({a.name for a in arms}) == len(arms) == 1 + 10 + 4 + 3 + 3 + 1
    )  # sft + 10 RL arms of T1 + new cells of T2..T5
    # T2–T5 only in the main regime
    assert set(table_rows(cfg, "converged", "peak")) == {"T1"}


def _records():
    """Six scored items: entropy rises with the index; items 4 and 5 are flipped; item 1 has no peak entropy."""
    out = []
    for i in range(6):
        out.append(
            {
                "id": f"i{i}",
                "answer_entropy": 0.1 * i,
                "sentence_entropy": 0.1 * i,
                "peak_entropy": None if i == 1 else 0.2 * i,
                "vote_entropy": 0.0,
                "accuracy": 1.0 - 0.2 * i,
                "format_rate": 1.0,
                "format_failures": 0,
                "flipped": i >= 4,
                "hard": i % 2 == 0,
            }
        )
    return out


def test_selections_keep_what_their_rule_says():
    records = _records()
    rows, stats = select(Arm("entropy", "answer", 0.5), records, 0, "answer")
    assert [r["id"] for r in rows if r["kept"]] == ["i0", "i1", "i2"] and stats["flip_rate"] == 0.0
    rows, _ = select(Arm("highest", "answer", 0.5), records, 0, "answer")
    assert [r["id"] for r in rows if r["kept"]] == ["i5", "i4", "i3"]
    rows, stats = select(Arm("oracle", "", 2 / 3), records, 0, "answer")
    assert stats["flip_rate"] == 0.0 and stats["n_kept"] == 4
    rows, _ = select(Arm("entropy", "peak", 0.5), records, 0, "peak")
    assert "i1" not in [r["id"] for r in rows if r["kept"]]  # a missing entropy ranks as the most uncertain
    rows, stats = select(Arm("full"), records, 0, "answer")
    assert all(r["kept"] for r in rows) and stats["flip_rate"] == round(2 / 6, 4)


def test_sft_checkpoints_land_on_epoch_boundaries():
    cfg = ExperimentConfig(sft_checkpoint_epochs=[2.0, 4.0, 10.0], sft_batch_size=32)
    per_epoch, at, save_steps = sft_schedule(4400, cfg)
    assert per_epoch == 138 and at == {2.0: 276, 4.0: 552, 10.0: 1380}
    assert all(step % save_steps == 0 for step in at.values()) and save_steps == 276


def test_main_signal_rule_is_the_most_negative_spearman_without_vote():
    cfg = ExperimentConfig()
    rq1 = {
        "spearman_answer": -0.01,
        "spearman_sentence": -0.4,
        "spearman_mixed": -0.3,
        "spearman_vote": None,
        "spearman_peak": -0.45,
    }
    assert resolve_main_signal(cfg, rq1) == "peak"
    rq1["spearman_vote"] = -0.7  # vote's ρ is partly by construction (same verdicts): never auto's pick
    assert resolve_main_signal(cfg, rq1) == "peak"
    assert resolve_main_signal(ExperimentConfig(main_signal="vote"), rq1) == "vote"


def test_paired_bootstrap_interval_holds_the_mean_and_refuses_one_unit():
    rng = np.random.default_rng(0)
    d = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=400, p=[0.1, 0.1, 0.5, 0.15, 0.15])
    low, high = paired_bootstrap(d, 1000)
    assert low < d.mean() < high and high - low < 0.25
    assert paired_bootstrap(np.array([0.5]), 100) is None
    assert paired_bootstrap(np.zeros(10), 100) == (0.0, 0.0)


def test_a_folder_refuses_a_run_with_other_settings(tmp_path):
    cfg = ExperimentConfig(output_dir=str(tmp_path))
    check_preset(cfg)
    check_preset(ExperimentConfig(output_dir=str(tmp_path), workers=2))  # how it runs may change
    with pytest.raises(EgtError, match="rl_steps"):
        check_preset(ExperimentConfig(output_dir=str(tmp_path), rl_steps=7))


def test_config_checks_name_the_field():
    with pytest.raises(EgtError, match="main_regime"):
        ExperimentConfig(regimes=["converged"], main_regime="weak").check()
    with pytest.raises(EgtError, match="weak_epoch"):
        ExperimentConfig(weak_epoch=3.0).check()
    with pytest.raises(EgtError, match="online_stages"):
        ExperimentConfig(rl_steps=10, online_stages=3).check()


@pytest.mark.parametrize("preset", ["lab_full", "lab_quick", "qwen2_5_vl_7b"])
def test_presets_are_valid_configs(preset):
    values = yaml.safe_load((REPO / "configs" / "experiment" / f"{preset}.yaml").read_text())
    known = {f.name for f in fields(ExperimentConfig)}
    assert set(values) <= known, set(values) - known
    ExperimentConfig(**values).check()


def test_the_demo_runs_the_lab_quick_preset():
    from egt.pipelines.demo import DemoArgs, experiment_config

    values = yaml.safe_load((REPO / "configs" / "experiment" / "lab_quick.yaml").read_text())
    demo = experiment_config(DemoArgs(output_dir=values["output_dir"]))
    for key, value in values.items():
        if key in ("preset", "output_dir", "curricula", "estimators", "subset_sizes"):
            continue
        assert getattr(demo, key) == value, key


def test_rq1_scores_with_the_backend_it_is_given(monkeypatch, tmp_path):
    import egt.pipelines.scoring.run as scoring
    from egt.pipelines.rq1 import run_rq1

    seen = []

    class Stop(Exception):
        pass

    def capture(model_args, data, out, cfg, **kwargs):
        seen.append(cfg)
        raise Stop

    monkeypatch.setattr(scoring, "score_pool", capture)  # run_rq1 calls it through that module
    with pytest.raises(Stop):
        run_rq1("judge", "pool.jsonl", None, tmp_path, rollouts=2, backend="vllm")
    assert seen[0].backend == "vllm" and seen[0].rollouts == 2
    with pytest.raises(Stop):
        run_rq1("judge", "pool.jsonl", None, tmp_path)
    assert seen[1].backend == "transformers"


def test_the_experiment_backend_is_checked_and_older_folders_resume(tmp_path):
    import json

    with pytest.raises(EgtError, match="backend"):
        ExperimentConfig(backend="onnx").check()
    check_preset(ExperimentConfig(output_dir=str(tmp_path)))
    path = tmp_path / "experiment.json"
    old = json.loads(path.read_text())
    del old["backend"]  # written before the field existed
    path.write_text(json.dumps(old))
    check_preset(ExperimentConfig(output_dir=str(tmp_path)))
    with pytest.raises(EgtError, match="backend"):
        check_preset(ExperimentConfig(output_dir=str(tmp_path), backend="vllm"))


def test_own_data_is_checked_before_anything_is_written(tmp_path, small_lab):
    from egt.pipelines.experiment.runner import run_experiment

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q"}\n')
    good = small_lab / "test.jsonl"
    out = tmp_path / "exp"
    common = dict(output_dir=str(out), seeds=[0], tables=["T1"], images_dir=str(small_lab))
    with pytest.raises(EgtError, match=r"bad.jsonl: line 1 \(id='a'\): field 'responses'"):
        run_experiment(ExperimentConfig(sft_data=str(good), pool=str(bad), test=str(good), **common))
    missing = tmp_path / "missing_image.jsonl"
    missing.write_text(good.read_text().replace("images/test-00000.png", "images/absent.png", 1))
    with pytest.raises(EgtError, match=r"1 image file\(s\) missing \(first: id='test-00000'"):
        run_experiment(ExperimentConfig(sft_data=str(good), pool=str(good), test=str(missing), **common))
    with pytest.raises(EgtError, match="field 'pool': .*no such file"):
        run_experiment(
            ExperimentConfig(sft_data=str(good), pool=str(tmp_path / "none.jsonl"), test=str(good), **common)
        )
    assert not out.exists()
