"""Settings shared by the trainers: where checkpoints go, and TRL's SFT defaults on a CPU."""

from __future__ import annotations

from pathlib import Path

from egt.models.training import checkpoint_dir, cpu_sft_defaults


def test_checkpoints_live_beside_the_final_model():
    assert checkpoint_dir("runs/rl/judge") == Path("runs/rl/judge.checkpoints")
    assert checkpoint_dir(Path("/tmp/out/")) == Path("/tmp/out.checkpoints")


def test_cpu_sft_defaults_make_a_cpu_sft_config_without_checkpointing(tmp_path):
    from trl import SFTConfig

    defaults = cpu_sft_defaults()
    config = SFTConfig(**{**defaults, "output_dir": str(tmp_path)})
    assert config.use_cpu and not config.bf16 and config.report_to == []
    assert not config.activation_checkpointing  # TRL's SFTConfig turns it on by default
    assert SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False).activation_checkpointing
    assert defaults is not cpu_sft_defaults()  # a fresh dict each call: callers may update it


def test_resume_values_from_a_command_line_become_what_trainer_train_takes():
    from egt.models.training import resume_value

    assert [resume_value(v) for v in ("true", "True", "1", "yes")] == [True] * 4
    assert [resume_value(v) for v in ("", "false", "no", "None")] == [None] * 4
    assert resume_value("runs/judge.checkpoints/checkpoint-8") == "runs/judge.checkpoints/checkpoint-8"
    assert resume_value(None) is None and resume_value(True) is True
