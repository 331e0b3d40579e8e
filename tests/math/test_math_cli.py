"""The math commands end to end (in-process through ``egt.cli.main``), bad input included."""

from __future__ import annotations

import json

import pytest

from egt.cli import main


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


EXAMPLE_LINE = {
    "question": "Tom has 3 pens and buys 4 more. How many pens?",
    "ground_truth": "Tom has 3 + 4 = <<3+4=7>>7 pens.\nA: 7",
    "6b": {"is_correct": True, "solution": "3 + 4 = 7\nA: 7"},
    "175b": {"is_correct": False, "solution": "3 * 4 = 12\nA: 12"},
    "trunc": {"is_correct": False, "solution": "3 + 4 is"},  # no final answer: unanswered
}


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_malformed_jsonl_is_one_line_exit_2_and_no_output(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [EXAMPLE_LINE, '{"question": "x", "solution": '])
    for argv in (
        ["math", "eval", "--solutions", str(bad), "--output_dir", str(tmp_path / "eval")],
        ["math", "pairs", "--solutions", str(bad), "--output_dir", str(tmp_path / "pairs")],
        [
            "math",
            "selfcompare",
            "build",
            "--solutions",
            str(bad),
            "--comparer",
            "none",
            "--output_dir",
            str(tmp_path / "sc"),
        ],
    ):
        code, out, err = run(capsys, *argv)
        assert code == 2, argv
        assert err.count("\n") == 1 and f"{bad}: line 2: malformed JSON" in err, err
        assert "Traceback" not in err
    assert not (tmp_path / "eval").exists() and not (tmp_path / "pairs").exists() and not (tmp_path / "sc").exists()


@pytest.mark.parametrize(
    "row, message",
    [
        (
            {"question": "q", "answer": "no final answer in this\nreference"},
            "line 1: field 'answer': reference has no final answer",
        ),
        ({"answer": "#### 3"}, "line 1: field 'question'"),
        ({"question": "q"}, "line 1: no reference"),
        ([1, 2], "line 1: expected a JSON object"),
    ],
)
def test_bad_questions_file(tmp_path, capsys, row, message):
    data = write_jsonl(tmp_path / "q.jsonl", [row])
    code, _, err = run(
        capsys,
        "math",
        "eval",
        "--data",
        str(data),
        "--model",
        str(tmp_path / "none"),
        "--output_dir",
        str(tmp_path / "o"),
    )
    assert code == 2 and message in err, err


def test_eval_scores_existing_solutions(tmp_path, capsys):
    solutions = write_jsonl(tmp_path / "s.jsonl", [EXAMPLE_LINE])
    code, out, _ = run(
        capsys, "math", "eval", "--solutions", str(solutions), "--output_dir", str(tmp_path / "e"), "--ks", "1", "2"
    )
    assert code == 0
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["samples"] == 3 and report["correct"] == 1 and report["unanswered"] == 1
    assert report["pass_at_k"]["2"] == pytest.approx(1 - 1 / 3)  # 1 - C(2,2)/C(3,2)
    assert report["flag_agreement"]["rate"] == 1.0
    assert set(report["by_source"]) == {"6b", "175b", "trunc"}
    items = [json.loads(line) for line in (tmp_path / "e" / "items.jsonl").read_text().splitlines()]
    assert [s["status"] for s in items[0]["samples"]] == ["correct", "wrong", "unanswered"]


def test_eval_simple_format_takes_references_from_data(tmp_path, capsys):
    data = write_jsonl(tmp_path / "q.jsonl", [{"id": "a", "question": "q1", "answer": "#### 5"}])
    solutions = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"id": "a", "question": "q1", "solution": "The answer is 5."},
            {"id": "a", "question": "q1", "solution": "\\boxed{6}"},
        ],
    )
    code, _, _ = run(
        capsys, "math", "eval", "--solutions", str(solutions), "--data", str(data), "--output_dir", str(tmp_path / "e")
    )
    assert code == 0
    assert json.loads((tmp_path / "e" / "report.json").read_text())["accuracy"] == 0.5
    orphan = write_jsonl(tmp_path / "o.jsonl", [{"id": "b", "question": "q2", "solution": "A: 1"}])
    code, _, err = run(capsys, "math", "eval", "--solutions", str(orphan), "--output_dir", str(tmp_path / "e2"))
    assert code == 2 and "no reference for id 'b'" in err


def test_pairs_and_comparison_prompts_from_a_solutions_file(tmp_path, capsys):
    solutions = write_jsonl(tmp_path / "s.jsonl", [EXAMPLE_LINE, {**EXAMPLE_LINE, "question": "other"}])
    code, out, _ = run(capsys, "math", "pairs", "--solutions", str(solutions), "--output_dir", str(tmp_path / "p"))
    assert code == 0
    from egt.records import read_pairs

    pairs = read_pairs(tmp_path / "p" / "pairs.jsonl")
    assert len(pairs) == 4  # 2 questions × 1 right × 2 wrong
    assert all(p.responses[p.preferred].endswith("A: 7") for p in pairs)

    code, out, _ = run(
        capsys,
        "math",
        "selfcompare",
        "build",
        "--solutions",
        str(solutions),
        "--comparer",
        "none",
        "--output_dir",
        str(tmp_path / "sc"),
    )
    assert code == 0
    summary = json.loads((tmp_path / "sc" / "summary.json").read_text())
    assert summary["pending"] == 4 and summary["sft_verified_records"] == 2 and summary["sft_comparison_records"] == 0
    prompts = [json.loads(line) for line in (tmp_path / "sc" / "prompts.jsonl").read_text().splitlines()]
    assert len(prompts) == 4 and "Reference solution:" in prompts[0]["messages"][0]["content"]


def test_selfcompare_with_the_reference_comparer(tmp_path, capsys, problems):
    data = write_jsonl(tmp_path / "q.jsonl", problems[:3])
    wrong = [
        {"id": p["id"], "question": p["question"], "solution": p["answer"].rsplit("#### ", 1)[0] + "#### 0"}
        for p in problems[:3]
    ]
    solutions = write_jsonl(tmp_path / "s.jsonl", wrong)
    code, _, _ = run(
        capsys,
        "math",
        "selfcompare",
        "build",
        "--solutions",
        str(solutions),
        "--data",
        str(data),
        "--comparer",
        "reference",
        "--output_dir",
        str(tmp_path / "sc"),
    )
    assert code == 0
    summary = json.loads((tmp_path / "sc" / "summary.json").read_text())
    assert summary["wrong"] == 3 and summary["kept"] == 3
    records = [json.loads(line) for line in (tmp_path / "sc" / "sft.jsonl").read_text().splitlines()]
    comparison = next(r for r in records if r["kind"] == "comparison")
    assert [m["role"] for m in comparison["messages"]] == ["user", "assistant"]
    assert (
        "Attempt:" in comparison["messages"][0]["content"] and "Reference" not in comparison["messages"][0]["content"]
    )
    assert "First wrong step:" in comparison["messages"][1]["content"]


def test_selfcompare_needs_a_comparer_it_can_build(tmp_path, capsys):
    solutions = write_jsonl(tmp_path / "s.jsonl", [EXAMPLE_LINE])
    code, _, err = run(
        capsys, "math", "selfcompare", "build", "--solutions", str(solutions), "--output_dir", str(tmp_path / "sc")
    )
    assert code == 2 and "--comparer self needs --model" in err
    code, _, err = run(
        capsys,
        "math",
        "selfcompare",
        "build",
        "--solutions",
        str(solutions),
        "--comparer",
        "openai",
        "--output_dir",
        str(tmp_path / "sc"),
    )
    assert code == 2 and "--comparer_url" in err


def test_eval_with_a_model_is_resumable(tmp_path, capsys, tiny_lab):
    argv = [
        "math",
        "eval",
        "--model",
        str(tiny_lab / "model"),
        "--device",
        "cpu",
        "--data",
        str(tiny_lab / "test.jsonl"),
        "--output_dir",
        str(tmp_path / "e"),
        "--n_samples",
        "2",
        "--temperature",
        "1",
        "--max_new_tokens",
        "6",
        "--batch_size",
        "4",
        "--ks",
        "1",
        "2",
    ]
    code, _, _ = run(capsys, *argv)
    assert code == 0
    first = (tmp_path / "e" / "items.jsonl").read_bytes()
    code, _, _ = run(capsys, *argv)  # everything is journaled: nothing is regenerated
    assert code == 0 and (tmp_path / "e" / "items.jsonl").read_bytes() == first
    code, _, err = run(capsys, *argv[:-3], "--seed", "9")
    assert code == 2 and "other settings (seed)" in err
