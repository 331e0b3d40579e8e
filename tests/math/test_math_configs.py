"""Every recipe under configs/math parses with the dataclasses of the command it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from egt.config import parse_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "math"


def types_for(name: str):
    from egt.commands.math import MathEvalArgs, MathLabMakeArgs, MathPairsArgs
    from egt.commands.selfcompare import SelfCompareBuildArgs, SelfCompareTrainArgs
    from egt.math.generate import SamplingArgs
    from egt.math.lab import MathLabConfig, TinyTextConfig
    from egt.math.selfcompare import ComparerArgs
    from egt.models.args import ModelArgs

    if name.startswith("gsm8k_pairs"):
        return [MathPairsArgs]
    if name.startswith("gsm8k"):
        return [MathEvalArgs, ModelArgs, SamplingArgs]
    if name.startswith("selfcompare_train"):
        from trl import SFTConfig

        return [SelfCompareTrainArgs, SFTConfig]
    if name.startswith("selfcompare"):
        return [SelfCompareBuildArgs, ModelArgs, SamplingArgs, ComparerArgs]
    if name.startswith("math_lab"):
        return [MathLabMakeArgs, MathLabConfig, TinyTextConfig]
    raise AssertionError(f"no command known for {name}")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_recipe_parses(path):
    parsed = parse_config(types_for(path.name), ["--config", str(path)], "test")
    assert parsed and all(p is not None for p in parsed)
