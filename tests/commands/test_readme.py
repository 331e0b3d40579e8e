"""The README's command sequences run as written: top to bottom, on a fresh copy of the shipped
configs, each command reading what the ones before it wrote (with tiny sizes appended per command).

The lab sequence is the fenced ``bash`` block after the ``<!-- readme-sequence -->`` marker; the
"Your own data" sequence (traces → SFT → score → curate → RL → eval) the block after
``<!-- readme-own-data -->``, run against a loopback OpenAI-compatible teacher
(``tests/openai_standin.py``) that judges the lab's images by their true label.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from egt.cli import COMMANDS, find_command, main
from egt.records import read_pairs

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
MARK = "<!-- readme-sequence -->"
OWN_MARK = "<!-- readme-own-data -->"
README_TEACHER_URL = "http://127.0.0.1:8000/v1"  # the own-data block's --base_url, replaced by the stand-in's
OLD_FLAGS = ("--out", "--judge", "--presentation", "--trace_order")

# Appended to each command (a later flag wins): the same sequence at a size one CPU core runs in minutes.
TINY: dict[tuple[str, ...], list[str]] = {
    ("lab", "make"): ["--n_sft", "48", "--n_rl_pool", "16", "--n_test", "8"],
    ("train", "sft"): ["--max_steps", "2", "--per_device_train_batch_size", "8", "--warmup_steps", "0"],
    ("eval",): ["--max_new_tokens", "8", "--device", "cpu"],
    ("score",): ["--rollouts", "2", "--max_new_tokens", "8", "--device", "cpu"],
    ("curate",): ["--allow_missing_signal", "true"],  # a 2-step SFT judge writes no parsable verdict
    ("train", "rl"): [
        *["--max_steps", "1", "--per_device_train_batch_size", "8", "--num_generations", "4"],
        *["--max_completion_length", "8", "--save_strategy", "no", "--keep_checkpoints", "false"],
    ],
    ("rm", "train"): ["--max_steps", "2", "--per_device_train_batch_size", "4", "--warmup_steps", "0"],
    ("rm", "ensemble"): ["--calibration_limit", "4", "--device", "cpu"],
    ("math", "lab"): [
        *["--n_train", "16", "--n_test", "4", "--base_steps", "2", "--batch_size", "4", "--hidden_size", "32"],
        *["--num_hidden_layers", "1", "--num_attention_heads", "2", "--num_key_value_heads", "1"],
        *["--intermediate_size", "64"],
    ],
    ("math", "eval"): ["--limit", "2", "--max_new_tokens", "6", "--device", "cpu"],
    ("math", "selfcompare", "build"): ["--limit", "2", "--max_new_tokens", "6", "--device", "cpu"],
    ("math", "selfcompare", "train"): ["--max_steps", "1", "--per_device_train_batch_size", "2"],
}


def readme_sequence(text: str, mark: str = MARK) -> list[list[str]]:
    """The marked block's commands, one argv each (``\\`` continuations joined, comments dropped)."""
    if mark not in text:
        raise AssertionError(f"README.md has no {mark} block")
    block = re.search(r"```bash\n(.*?)```", text[text.index(mark) :], re.S)
    assert block is not None, f"no ```bash block after {mark}"
    joined = block.group(1).replace("\\\n", " ")
    return [argv for line in joined.splitlines() if (argv := shlex.split(line, comments=True))]


def test_the_sequence_uses_known_commands_and_one_vocabulary():
    sequence = readme_sequence(README.read_text())
    assert len(sequence) >= 10
    for argv in sequence:
        assert argv[0] == "egt", argv
        found = find_command(argv[1:])
        assert found is not None and found[0] in COMMANDS, argv
        assert not set(OLD_FLAGS) & set(argv), argv
    covered = {find_command(argv[1:])[0] for argv in sequence}
    assert set(TINY) <= covered  # every tiny override is used by the sequence


def test_readme_links_stay_inside_the_repository():
    targets = re.findall(r"\]\(([^)]+)\)", README.read_text())
    assert targets
    for target in targets:
        path = target.split("#")[0]
        assert "://" not in target and not path.startswith(("/", "..")), target
        assert (REPO / path).exists(), target


@pytest.mark.slow
def test_readme_sequence_runs_top_to_bottom(tmp_path, monkeypatch, capsys):
    shutil.copytree(REPO / "configs", tmp_path / "configs")  # a fresh clone: the shipped configs, no runs/
    monkeypatch.chdir(tmp_path)
    for argv in readme_sequence(README.read_text()):
        words, _ = find_command(argv[1:])
        code = main([*argv[1:], *TINY.get(words, [])])
        assert code == 0, f"{shlex.join(argv)} exited {code}:\n{capsys.readouterr().err[-2000:]}"
    check_the_chain(tmp_path / "runs")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_the_chain(runs: Path) -> None:
    """Each command read what the one before it wrote, and its numbers follow from its files."""
    from egt.records import read_pairs

    test = read_pairs(runs / "lab" / "test.jsonl")
    pool = read_pairs(runs / "lab" / "rl_pool.jsonl")
    assert (len(pool), len(test)) == (16, 8)  # TINY's lab sizes
    for name, judge in (
        ("eval", "judge"),
        ("eval-longer", "longer"),
        ("eval-rl", "judge"),
        ("eval-ensemble", "ensemble"),
    ):
        report, predictions = (
            json.loads((runs / name / "report.json").read_text()),
            _jsonl(runs / name / "predictions.jsonl"),
        )
        assert report["judge"] == judge and report["n_items"] == len(test), name
        assert sorted((p["id"], p["swapped"]) for p in predictions) == sorted(
            (t.id, s) for t in test for s in (False, True)
        ), name
        right = [p["status"] == "ok" and p["predicted"] == p["preferred"] for p in predictions]
        assert report["metrics"]["accuracy"] == pytest.approx(sum(right) / len(right)), name
        assert report["parse_failures"] == sum(p["status"] == "parse_failure" for p in predictions), name
    longer = {t.id: max((0, 1), key=lambda i: len(t.responses[i])) for t in test}
    shown = [p for p in _jsonl(runs / "eval-longer" / "predictions.jsonl") if p["status"] == "ok"]
    assert shown and all(p["predicted"] == longer[p["id"]] for p in shown)

    meta = json.loads((runs / "score" / "scores.jsonl.meta.json").read_text())["header"]
    assert meta["model"]["path"] == str((runs / "sft" / "judge").resolve()) and meta["data"]["n_items"] == len(pool)
    scores = _jsonl(runs / "score" / "scores.jsonl")
    assert [r["id"] for r in scores] == [p.id for p in pool] and all(len(r["verdicts"]) == 2 for r in scores)
    selection = json.loads((runs / "curate" / "selection.json").read_text())
    assert selection["counts"]["pool"] == len(pool) and selection["counts"]["kept"] == len(pool) // 2  # --fraction 0.5
    manifest = _jsonl(runs / "curate" / "manifest.jsonl")
    assert sorted(r["id"] for r in manifest) == sorted(p.id for p in pool)
    rl = json.loads((runs / "rl" / "judge" / "rl_summary.json").read_text())
    assert rl["n_pairs"] == sum(r["kept"] for r in manifest) and rl["steps"] == 1 and rl["estimator"] == "gtpo"
    ensemble = json.loads((runs / "rm" / "ensemble" / "egt_ensemble.json").read_text())
    assert [m["path"] for m in ensemble["members"]] == ["../lab_mlp", "../lab_linear"]
    assert (runs / "rm" / "lab_linear" / "egt_reward.json").is_file()
    assert (
        _jsonl(runs / "math" / "selfcompare" / "sft.jsonl")
        and (runs / "math" / "selfcompare_model" / "config.json").is_file()
    )


def test_the_own_data_sequence_is_traces_then_the_egt_loop():
    sequence = readme_sequence(README.read_text(), OWN_MARK)
    words = [find_command(argv[1:])[0] for argv in sequence]
    assert words == [("traces",), ("train", "sft"), ("score",), ("curate",), ("train", "rl"), ("eval",)]
    traces_argv = sequence[0]
    assert traces_argv[traces_argv.index("--base_url") + 1] == README_TEACHER_URL
    sft_data = sequence[1][sequence[1].index("--data") + 1]
    assert sft_data == traces_argv[traces_argv.index("--output_dir") + 1] + "/traces.jsonl"


def own_pool_from_the_lab(lab: Path, data: Path) -> None:
    """``data/my_pairs.jsonl`` / ``my_test.jsonl`` with their images: the user's own files, here a lab's."""
    shutil.copytree(lab / "images", data / "images")
    shutil.copyfile(lab / "rl_pool.jsonl", data / "my_pairs.jsonl")
    shutil.copyfile(lab / "test.jsonl", data / "my_test.jsonl")


def true_label_teacher(pool: Path):
    """A teacher that sees the image and answers with the pair's true label: it is never told the
    (noisy) label, so the fidelity filter drops the lab's flipped pairs."""
    import hashlib

    from egt.records import open_images, read_pairs
    from openai_standin import attached_images, user_text

    def key(image, question):
        return hashlib.sha1(image.convert("RGB").tobytes()).hexdigest(), question

    truth = {}
    for pair in read_pairs(pool):
        truth[key(open_images(pair, pool.parent)[0], pair.question)] = pair.responses[pair.true_preferred]

    def answer(body):
        question, first, second = re.search(
            r"Question: (.*)\nResponse 1: (.*)\nResponse 2: (.*)", user_text(body)
        ).groups()
        better = truth[key(attached_images(body)[0], question)]
        k = 1 if first == better else 2
        assert (first, second)[k - 1] == better
        return f"<think>The image shows what response {k} says.</think><answer>{k}</answer>"

    return answer


@pytest.mark.slow
def test_readme_own_data_sequence_runs_against_a_loopback_teacher(tmp_path, monkeypatch, capsys, small_lab):
    from openai_standin import OpenAIStandIn

    monkeypatch.chdir(tmp_path)
    own_pool_from_the_lab(small_lab, tmp_path / "data")
    sequence = readme_sequence(README.read_text(), OWN_MARK)
    with OpenAIStandIn(answer=true_label_teacher(tmp_path / "data" / "my_pairs.jsonl")) as teacher:
        for argv in sequence:
            words, _ = find_command(argv[1:])
            argv = [teacher.url if a == README_TEACHER_URL else a for a in argv]
            code = main([*argv[1:], *TINY.get(words, [])])
            assert code == 0, f"{shlex.join(argv)} exited {code}:\n{capsys.readouterr().err[-2000:]}"
    stats = json.loads((tmp_path / "runs/own/traces/stats.json").read_text())
    flipped = sum(p.flipped for p in read_pairs(tmp_path / "data/my_pairs.jsonl"))
    assert stats["dropped_disagrees_with_label"] == flipped and stats["kept"] == stats["pairs"] - flipped
    assert len(teacher.requests) == 2 * stats["pairs"]
    for made in (
        "sft/config.json",
        "score/scores.jsonl",
        "curate/manifest.jsonl",
        "rl/config.json",
        "eval/report.json",
    ):
        assert (tmp_path / "runs/own" / made).is_file(), made


def documented_options(words: tuple[str, ...]) -> set[str]:
    """The options in the tables of docs/cli.md's section ``## egt <words>``."""
    text = (REPO / "docs" / "cli.md").read_text()
    heading = f"\n## egt {' '.join(words)}\n"
    assert heading in text, f"docs/cli.md has no section for 'egt {' '.join(words)}'"
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(--\w+)`", section, re.M))


def help_options(words: tuple[str, ...], capsys) -> tuple[set[str], set[str]]:
    """(every option ``--help`` lists, the project's own ones: those above TRL / transformers' heading)."""
    assert main([*words, "--help"]) == 0
    text = capsys.readouterr().out
    own = text.split("TRL / transformers options:", 1)[0]

    def options(part: str) -> set[str]:
        found = set(re.findall(r"^\s{2}(--\w+)", part, re.M)) - {"--help", "--config"}
        return {o for o in found if not (o.startswith("--no_") and f"--{o[5:]}" in found)}  # --no_X is --X false

    return options(text), options(own)


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_docs_cli_documents_every_option_the_command_takes(words, capsys):
    documented = documented_options(words)
    accepted, own = help_options(words, capsys)
    assert documented <= accepted, f"documented but not accepted: {sorted(documented - accepted)}"
    assert own <= documented, f"accepted but not documented: {sorted(own - documented)}"
