"""Generation from any model load_model takes: the tiny text model and a tiny Qwen2.5-VL."""

from __future__ import annotations

import json

import pytest

from egt.cli import main
from egt.math.generate import SamplingArgs, question_messages, sample_solutions


def test_sampling_is_seeded_per_call(tiny_loaded):
    args = SamplingArgs(n_samples=2, temperature=1.0, max_new_tokens=6)
    questions = ["Tom has 3 pens. How many pens does Tom have now?", "Mia has 4 cards."]
    first = sample_solutions(tiny_loaded, questions, args, seed=5)
    assert len(first) == 2 and all(len(s) == 2 for s in first)
    assert sample_solutions(tiny_loaded, questions, args, seed=5) == first
    assert sample_solutions(tiny_loaded, questions, args, seed=6) != first


def test_question_template():
    assert question_messages("What is {x}?", "Q: {question}\nA:") == [
        {"role": "user", "content": "Q: What is {x}?\nA:"}
    ]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n_samples", "3"], "needs --temperature > 0"),
        (["--prompt_template", "no placeholder"], "must contain {question}"),
        (["--n_samples", "0"], "must be ≥ 1"),
    ],
)
def test_bad_sampling_settings(tmp_path, capsys, tiny_lab, flags, message):
    code = main(
        [
            "math",
            "eval",
            "--model",
            str(tiny_lab / "model"),
            "--data",
            str(tiny_lab / "test.jsonl"),
            "--output_dir",
            str(tmp_path / "e"),
            *flags,
        ]
    )
    assert code == 2 and message in capsys.readouterr().err


def test_eval_through_a_vision_language_model(tmp_path, capsys, tiny_lab):
    """A VLM answers text-only questions through its processor's chat template and tokenizer."""
    from egt.models.tiny import TinyVLConfig, build_tiny_judge

    cfg = TinyVLConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        vision_hidden_size=32,
        vision_depth=1,
        mrope_section=[2, 2, 4],
    )
    corpus = [json.loads(line)["question"] for line in (tiny_lab / "train.jsonl").read_text().splitlines()]
    build_tiny_judge(corpus, tmp_path / "vl", cfg)
    code = main(
        [
            "math",
            "eval",
            "--model",
            str(tmp_path / "vl"),
            "--device",
            "cpu",
            "--data",
            str(tiny_lab / "test.jsonl"),
            "--limit",
            "3",
            "--max_new_tokens",
            "4",
            "--output_dir",
            str(tmp_path / "e"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["questions"] == 3 and report["samples"] == 3
