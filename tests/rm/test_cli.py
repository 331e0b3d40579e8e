"""``egt rm train`` and ``egt rm ensemble`` end to end on a tiny lab (a couple of steps), and bad input."""

from __future__ import annotations

import json

import pytest

from egt.cli import main


def test_train_rm_then_ensemble_then_eval(tmp_path, lab, text_pairs_file, capsys):
    out = tmp_path / "rm"
    rc = main(
        [
            "rm",
            "train",
            "--model",
            "tiny",
            "--sources",
            f"{lab / 'sft.jsonl'},name=lab,n=12",
            f"{text_pairs_file},name=text,weight=0.5",
            "--output_dir",
            str(out),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--learning_rate",
            "1e-3",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
            "--head",
            "linear",
            "--chosen_lm_loss_coefficient",
            "0.5",
        ]
    )
    assert rc == 0
    mix = json.loads((out / "data_mix.json").read_text())
    assert {s["name"]: s["taken"] for s in mix["sources"]} == {"lab": 12, "text": 6}
    meta = json.loads((out / "egt_reward.json").read_text())
    assert meta["head"]["type"] == "linear" and meta["data_mix"]["total"] == 18
    assert (out / "model.safetensors").is_file() and (out / "backbone-init" / "config.json").is_file()

    ens = tmp_path / "ens"
    assert (
        main(
            [
                "rm",
                "ensemble",
                "--members",
                str(out),
                "--calibration",
                str(lab / "rl_pool.jsonl"),
                "--output_dir",
                str(ens),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    stored = json.loads((ens / "egt_ensemble.json").read_text())
    assert stored["members"][0]["path"] == "../rm" and stored["members"][0]["std"] > 0

    assert (
        main(
            [
                "eval",
                "--model",
                str(ens),
                "--data",
                str(lab / "test.jsonl"),
                "--output_dir",
                str(tmp_path / "ev"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["judge"] == "ens" and report["n_items"] == 16


def test_bad_inputs_exit_2_naming_the_source(tmp_path, capsys):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"id": "x1", "question": "q", "responses": ["same", "same"], "preferred": 0}) + "\n")
    rc = main(
        [
            "rm",
            "train",
            "--model",
            "tiny-text",
            "--sources",
            f"{bad},name=mine",
            "--output_dir",
            str(tmp_path / "o"),
            "--max_steps",
            "1",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "source 'mine'" in err and "id='x1'" in err and "identical" in err
    assert main(["rm", "train", "--sources", str(tmp_path / "missing.jsonl"), "--output_dir", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["rm", "ensemble", "--members", str(tmp_path), "--calibration", str(bad)]) == 2
    assert "not a reward model checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_a_fresh_process_judges_with_a_reward_model_checkpoint(tmp_path, vl_backbone):
    """`egt eval --model RM_DIR` in a new process must find the reward-model judge kind, not fall
    back to a generative judge (the kinds register when egt.rm is imported)."""
    import subprocess
    import sys

    from egt.rm.model import HeadConfig, RewardModel

    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("linear"), device="cpu")
    model.save_pretrained(tmp_path / "rm", processor)
    code = (
        "from egt.judge.args import JudgeArgs; from egt.pipelines.judges import make_judge; "
        f"print(type(make_judge(JudgeArgs(model={str(tmp_path / 'rm')!r}, device='cpu'))).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "RewardModelJudge"
