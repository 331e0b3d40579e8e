"""SFT through TRL: loss only on the assistant turn, parameters change, loss falls; the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from egt.errors import EgtError
from egt.math.lab import conversations, sft_config
from egt.math.train import check_messages, to_prompt_completion

pytestmark = pytest.mark.slow  # trains a (tiny) model


def fresh_model(tiny_lab):
    from egt.models.load import load_model

    return load_model(str(tiny_lab / "model"), device="cpu", dtype="float32", for_training=True)


def test_loss_mask_covers_the_assistant_turn_only(tiny_lab, problems, tmp_path):
    from trl import SFTTrainer

    loaded = fresh_model(tiny_lab)
    trainer = SFTTrainer(
        model=loaded.model,
        args=sft_config(str(tmp_path), 1, 1e-3, 2, 0),
        train_dataset=to_prompt_completion(conversations(problems[:2])),
        processing_class=loaded.tokenizer,
    )
    row = trainer.train_dataset[0]
    ids, mask = row["input_ids"], [int(label != -100) for label in row["labels"]]
    assert mask[0] == 0 and mask[-1] == 1 and sorted(mask) == mask  # prompt first, then the completion
    completion = loaded.tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert completion.startswith(problems[0]["answer"]) and completion.rstrip().endswith("<|im_end|>")
    assert problems[0]["question"] not in completion


def test_sft_changes_parameters_and_loss_falls(tiny_lab, problems, tmp_path):
    from egt.math.train import sft_train

    loaded = fresh_model(tiny_lab)
    before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    config = sft_config(str(tmp_path), 16, 1e-2, 8, 0)
    config.logging_steps = 1
    history = sft_train(loaded.model, loaded.tokenizer, conversations(problems), config, quiet=True)
    changed = [n for n, p in loaded.model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) == len(before)
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 16
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses


def test_selfcompare_train_cli(tiny_lab, problems, tmp_path, capsys):
    from egt.cli import main
    from egt.models.load import load_model

    data = tmp_path / "sft.jsonl"
    rows = [{"messages": c, "kind": "verified"} for c in conversations(problems[:6])]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "model"
    code = main(
        [
            "math",
            "selfcompare",
            "train",
            "--model",
            str(tiny_lab / "model"),
            "--data",
            str(data),
            "--output_dir",
            str(out),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "3",
            "--save_strategy",
            "no",
            "--activation_checkpointing",
            "false",
            "--disable_tqdm",
            "true",
            "--kinds",
            "verified",
        ]
    )
    assert code == 0
    assert (out / "config.json").is_file() and not (tmp_path / "model.checkpoints").exists()
    assert load_model(str(out), device="cpu").model is not None
    code = main(
        [
            "math",
            "selfcompare",
            "train",
            "--model",
            str(tiny_lab / "model"),
            "--data",
            str(data),
            "--output_dir",
            str(tmp_path / "m2"),
            "--kinds",
            "comparison",
        ]
    )
    assert code == 2 and "no records of kind 'comparison'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "record, message",
    [
        ({"messages": [{"role": "user", "content": "q"}]}, "at least 2 turns"),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "a"}]},
            "last turn must be the assistant",
        ),
        ({"messages": [{"role": "bot", "content": "q"}, {"role": "assistant", "content": "a"}]}, "needs a role"),
        ({"text": "x"}, "field 'messages'"),
    ],
)
def test_bad_sft_records(record, message):
    with pytest.raises(EgtError, match=message):
        check_messages(record, "f.jsonl: line 1")


def test_math_lab_cli_writes_problems_and_a_trained_model(tmp_path, capsys):
    from egt.cli import main

    code = main(
        [
            "math",
            "lab",
            "--output_dir",
            str(tmp_path / "lab"),
            "--n_train",
            "24",
            "--n_test",
            "4",
            "--base_steps",
            "2",
            "--batch_size",
            "4",
            "--hidden_size",
            "32",
            "--num_hidden_layers",
            "1",
            "--num_attention_heads",
            "2",
            "--num_key_value_heads",
            "1",
            "--intermediate_size",
            "64",
        ]
    )
    assert code == 0
    lines = (tmp_path / "lab" / "train.jsonl").read_text().splitlines()
    assert len(lines) == 24 and "#### " in json.loads(lines[0])["answer"]
    assert (tmp_path / "lab" / "model" / "config.json").is_file()
    assert "final loss" in capsys.readouterr().out


def test_lab_round_smoke(tmp_path):
    """One seed of the bench's pipeline at toy size: base, build, three arms, accuracies."""
    from egt.math.lab import MathLabConfig, TinyTextConfig, run_lab

    cfg = MathLabConfig(
        n_train=24,
        n_test=4,
        n_pool=4,
        base_steps=2,
        extra_steps=2,
        batch_size=4,
        k_samples=2,
        max_new_tokens=8,
        eval_batch_size=4,
    )
    model_cfg = TinyTextConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, intermediate_size=64
    )
    result = run_lab(cfg, model_cfg, seed=0, work_dir=tmp_path, log=lambda m: None)
    assert set(result["after"]) == {"plain SFT", "self-compare", "verified only"}
    assert result["build"]["attempts"] == 8
    assert (
        result["build"]["kept"] == result["build"]["wrong"] + result["build"]["unanswered"]
    )  # the script always corrects
    assert 0.0 <= result["before"]["accuracy"] <= 1.0
    assert list(tmp_path.iterdir()) == []  # the work folder is cleaned up
