"""Stage-1 SFT: the fidelity filter, and a real (tiny) training run that learns."""

from __future__ import annotations

import pytest
import torch

from egt.records import PreferencePair
from egt.train.sft import select_traces


def _pair(i, preferred, traces):
    return PreferencePair(id=str(i), question="q", responses=("a", "b"), preferred=preferred, meta={"traces": traces})


T1 = "<think>r</think><answer>1</answer>"
T2 = "<think>r</think><answer>2</answer>"


def test_fidelity_filter_drops_traces_that_disagree_with_the_label():
    pairs = [
        _pair(0, 0, [T1, T2]),  # consistent: stored says 1 (=0), swapped says 2 (=0)
        _pair(1, 1, [T1, T2]),  # traces pick response 0, label says 1 → dropped in both orders
        _pair(2, 0, ["garbage", T2]),
    ]
    kept, stats = select_traces(pairs, "both", seed=0, fidelity_filter=True)
    assert [(p.id, s) for p, s, _ in kept] == [("0", False), ("0", True), ("2", True)]
    assert stats.dropped_fidelity == 2 and stats.dropped_unparsable == 1
    kept_all, stats_off = select_traces(pairs, "both", seed=0, fidelity_filter=False)
    assert len(kept_all) == 5 and stats_off.dropped_fidelity == 0


def test_random_trace_order_is_seeded():
    pairs = [_pair(i, 0, [T1, T2]) for i in range(50)]
    a, _ = select_traces(pairs, "random", seed=1, fidelity_filter=True)
    b, _ = select_traces(pairs, "random", seed=1, fidelity_filter=True)
    assert [s for _, s, _ in a] == [s for _, s, _ in b] and 10 < sum(s for _, s, _ in a) < 40


@pytest.mark.slow
def test_sft_smoke_parameters_change_and_loss_falls(small_lab, tmp_path):
    from trl import SFTConfig

    from egt.models.load import load_model
    from egt.models.tiny import build_model
    from egt.train.sft import JudgeSFTArgs, cpu_sft_defaults, train_judge_sft

    cfg = SFTConfig(**{**cpu_sft_defaults(), "output_dir": str(tmp_path / "judge"), "max_steps": 12,
                       "per_device_train_batch_size": 16, "logging_steps": 1, "disable_tqdm": True,
                       "warmup_steps": 0})
    summary = train_judge_sft(JudgeSFTArgs(data=str(small_lab / "sft.jsonl")), cfg)
    assert summary["steps"] == 12 and summary["last_loss"] < 0.7 * summary["first_loss"]
    trained = load_model(str(tmp_path / "judge"), device="cpu")
    fresh = build_model(trained.tokenizer, _tiny_cfg(), seed=0)
    changed = [n for n, p in trained.model.named_parameters() if not torch.equal(p, dict(fresh.named_parameters())[n])]
    assert len(changed) > 0.9 * len(list(fresh.parameters()))
    assert (tmp_path / "judge" / "egt_judge.json").is_file()
    assert not (tmp_path / "judge.checkpoints").exists()


def _tiny_cfg():
    from egt.models.tiny import TinyVLConfig

    return TinyVLConfig()
