"""The ``egt`` command: command tree, option parsing and help, bad input (exit 2, one line), baselines end to end."""

from __future__ import annotations

import json
import sys
import types
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from egt import cli
from egt.cli import main
from egt.config import parse_config
from egt.errors import EgtError
from egt.records import read_pairs

# ---- the command tree


def test_top_level_help_shows_groups_and_single_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("train …", "rm …", "math …", "lab …", "eval", "score", "demo"):
        assert f"\n  {line}" in out
    assert "train sft" not in out  # a group's commands are listed by 'egt train --help'
    assert main([]) == 0 and capsys.readouterr().out == out


@pytest.mark.parametrize("argv", [["train"], ["train", "--help"], ["train", "-h"]])
def test_group_help_lists_its_commands(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: egt train <command>")
    assert "\n  sft " in out and "\n  rl " in out and "eval" not in out


def test_nested_group_help(capsys):
    assert main(["math", "--help"]) == 0
    assert "\n  selfcompare build " in capsys.readouterr().out
    assert main(["math", "selfcompare"]) == 0
    out = capsys.readouterr().out
    assert "\n  build " in out and "\n  train " in out and "pairs" not in out


def test_every_command_resolves_to_a_function():
    """The table names real entry points (imports the command modules, not the libraries they call)."""
    import importlib

    for words, (module, function, _) in cli.COMMANDS.items():
        assert callable(getattr(importlib.import_module(f"egt.commands.{module}"), function)), words
        assert all(words[:n] in cli.GROUPS for n in range(1, len(words)))  # every group has a help line


@pytest.fixture
def fake_command(monkeypatch):
    """``egt math selfcompare build`` routed to a recorder instead of the real command."""
    calls = []
    module = types.ModuleType("egt.commands.fake_for_test")

    def run(argv, prog):
        calls.append((argv, prog))
        return 0

    module.run = run
    monkeypatch.setitem(sys.modules, "egt.commands.fake_for_test", module)
    monkeypatch.setitem(cli.COMMANDS, ("math", "selfcompare", "build"), ("fake_for_test", "run", "recorder"))
    return calls


def test_three_word_command_dispatch(fake_command):
    assert main(["math", "selfcompare", "build", "--limit", "3"]) == 0
    assert fake_command == [(["--limit", "3"], "egt math selfcompare build")]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["train", "sfft"], "unknown command 'train sfft' (did you mean train sft?)"),
        (["evl", "--data", "x"], "unknown command 'evl' (did you mean eval?)"),
        (["ensemble"], "unknown command 'ensemble'"),  # now 'rm ensemble'
    ],
)
def test_unknown_command_is_one_line_with_suggestion(capsys, argv, needle):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and needle in captured.err


# ---- options: help, --config, errors (toy configs, so these stay fast)


@dataclass
class Toy:
    """The toy command's own settings."""

    data: str = field(metadata={"help": "Input file."})
    max_steps: int = field(default=10, metadata={"help": "Steps."})
    order: Literal["both", "random", "stored"] = field(default="both", metadata={"help": "Order."})
    note: str = field(default="", metadata={"help": "Free text."})
    check: bool = field(default=True, metadata={"help": "Check the input."})


@dataclass
class LibraryArgs:
    learning_rate: float = field(default=1e-3, metadata={"help": "Step size."})
    report_to: str = field(default="none", metadata={"help": "Loggers."})
    packing: bool = field(default=False, metadata={"help": "Pack sequences."})


LibraryArgs.__module__ = "trl.trainer.toy_config"  # shown as a TRL / transformers class


@dataclass
class Warns:
    level: int = 0

    def __post_init__(self):
        warnings.warn("deprecated spelling", FutureWarning, stacklevel=2)


def toy_help(capsys, types_=(Toy, LibraryArgs), argv=("--help",), **kwargs) -> str:
    with pytest.raises(SystemExit) as exit_:
        parse_config(list(types_), list(argv), "egt toy", "A toy command.", **kwargs)
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_help_shows_config_project_options_first_and_required(capsys):
    out = toy_help(capsys)
    assert "--config FILE.yaml" in out
    own, library = out.index("Toy options:"), out.index("LibraryArgs: TRL / transformers options:")
    assert own < out.index("--max_steps") < library < out.index("--learning_rate")
    data_line = out[out.index("--data") : out.index("--max_steps")]
    assert "(required)" in data_line and "default" not in data_line
    assert "{both,random,stored}" in out and "(default: )" not in out
    assert "--max-steps" not in out  # one name per option in help (the hyphen spelling still parses)
    assert "--check [BOOL]" in out and "--no_check            Same as --check false." in out
    assert out.startswith("usage: egt toy [--config FILE.yaml]") and len(out.splitlines()[0]) < 80


def test_help_shows_command_defaults(capsys):
    assert "(default: 0.5)" in toy_help(capsys, defaults={"learning_rate": 0.5})


def test_real_command_help_through_the_cli(capsys):
    assert main(["lab", "make", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: egt lab make [--config FILE.yaml]") and "LabConfig options:" in out


def test_precedence_defaults_recipe_flags(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("max_steps: 7\nlearning_rate: 0.25\n")
    (toy, lib) = parse_config([Toy, LibraryArgs], ["--data", "d"], "egt toy", defaults={"max_steps": 3})
    assert (toy.data, toy.max_steps, lib.learning_rate) == ("d", 3, 1e-3)
    argv = ["--config", str(recipe), "--data", "d", "--learning_rate", "0.5"]
    (toy, lib) = parse_config([Toy, LibraryArgs], argv, "egt toy", defaults={"max_steps": 3})
    assert (toy.max_steps, lib.learning_rate) == (7, 0.5)
    (toy, _) = parse_config([Toy, LibraryArgs], [f"--config={recipe}", "--max-steps", "9", "--data", "d"], "egt toy")
    assert toy.max_steps == 9
    with pytest.raises(ValueError, match="unknown fields"):  # a command's typo in its defaults is a bug
        parse_config([Toy], ["--data", "d"], "egt toy", defaults={"max_step": 3})


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--data", "d", "--max_step", "3"], "unknown option --max_step (did you mean --max_steps?)"),  # no prefixes
        (["--data", "d", "--ordr", "random"], "unknown option --ordr (did you mean --order?)"),
        (["--data", "d", "--ordr=random", "--zzz"], "unknown options --ordr (did you mean --order?), --zzz"),
        (["--data", "d", "stray"], "unexpected argument 'stray'"),
        (["--data", "d", "--order", "sideways"], "invalid choice: 'sideways' (choose from 'both', 'random', 'stored')"),
        (["--max_steps", "3"], "required: --data"),
        (["--data", "d", "--max_steps", "many"], "invalid int value: 'many'"),
    ],
)
def test_option_errors_are_one_line(argv, needle):
    with pytest.raises(EgtError) as error:
        parse_config([Toy], argv, "egt toy")
    assert needle in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("egt toy: ")


@pytest.mark.parametrize(
    "text, needle",
    [
        ("data: d\nmax_stepz: 3\n", "r.yaml: unknown key max_stepz (did you mean max_steps?)"),
        ("data: d\norder: sideways\n", "r.yaml: order: invalid choice 'sideways' (choose from both, random, stored)"),
        ("data: d\n max_steps: [3\n", "r.yaml:2: malformed YAML"),
        ("- data\n", "r.yaml: a recipe is a YAML mapping"),
    ],
)
def test_recipe_errors_are_one_line(tmp_path, text, needle):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(EgtError) as error:
        parse_config([Toy], ["--config", str(recipe)], "egt toy")
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_recipe_sets_required_option_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("EGT_TOY_VAR", raising=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: from-yaml\norder: random\nenv:\n  EGT_TOY_VAR: 1\n")
    (toy,) = parse_config([Toy], ["--config", str(recipe)], "egt toy")
    assert (toy.data, toy.order) == ("from-yaml", "random")
    import os

    assert os.environ["EGT_TOY_VAR"] == "1"


def test_unknown_option_through_the_cli_is_one_line_exit_2(tmp_path, capsys):
    assert main(["lab", "make", "--output_dri", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown option --output_dri (did you mean --output_dir?)" in err
    recipe = tmp_path / "lab.yaml"
    recipe.write_text("n_sfft: 3\n")
    assert main(["lab", "make", "--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{recipe}: unknown key n_sfft (did you mean n_sft?)" in err
    assert not (tmp_path / "x").exists()


def test_no_library_warning_before_a_user_error():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(EgtError):
            parse_config([Warns], ["--levle", "1"], "egt toy")
    assert caught == []
    with pytest.warns(FutureWarning, match="deprecated spelling"):  # a valid run still shows it
        (warns,) = parse_config([Warns], ["--level", "1"], "egt toy")
    assert warns.level == 1


def test_library_names():
    from egt.config import is_library

    assert is_library("trl:SFTConfig") and is_library("transformers.training_args") and is_library("trl.x:Y")
    assert not is_library("egt.train.sft:JudgeSFTArgs") and not is_library("trlx:Config")


def test_library_help_comes_from_the_cache(tmp_path, monkeypatch, capsys):
    """A TRL class named by string: the first --help imports it and fills the cache, later ones do not import it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    module = types.ModuleType("trl.egt_toy_config")
    module.LibraryArgs = LibraryArgs
    monkeypatch.setitem(sys.modules, "trl.egt_toy_config", module)
    first = toy_help(capsys, types_=(Toy, "trl.egt_toy_config:LibraryArgs"), defaults={"learning_rate": 0.5})
    assert len(list((tmp_path / "egt" / "help").glob("trl.egt_toy_config.LibraryArgs-trl*.json"))) == 1
    monkeypatch.delitem(sys.modules, "trl.egt_toy_config")  # an import now would fail
    again = toy_help(capsys, types_=(Toy, "trl.egt_toy_config:LibraryArgs"), defaults={"learning_rate": 0.5})
    assert again == first == toy_help(capsys, defaults={"learning_rate": 0.5})
    assert "--packing [BOOL]" in again and "(default: 0.5)" in again


# ---- commands end to end


def _write(path, lines):
    path.write_text("".join(lines))
    return path


GOOD = json.dumps({"id": "a", "question": "q", "responses": ["x", "yy"], "preferred": 1}) + "\n"


@pytest.mark.parametrize(
    "bad_line, needle",
    [
        ("{oops\n", "line 2: malformed JSON"),
        (
            json.dumps({"id": "b", "question": "q", "responses": ["x", "y", "z"], "preferred": 0}) + "\n",
            "field 'responses'",
        ),
        (json.dumps({"id": "b", "question": "q", "responses": ["x", "y"], "preferred": 5}) + "\n", "field 'preferred'"),
        (
            json.dumps(
                {"id": "b", "question": "q", "responses": ["x", "y"], "preferred": 0, "images": ["../../etc/x.png"]}
            )
            + "\n",
            "escapes the images root",
        ),
        (
            json.dumps({"id": "b", "question": "q", "responses": ["x", "y"], "preferred": 0, "images": ["missing.png"]})
            + "\n",
            "missing",
        ),
    ],
)
def test_eval_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, bad_line, needle, tiny_judge_dir):
    data = _write(tmp_path / "d.jsonl", [GOOD, bad_line])
    out = tmp_path / "out"
    judge = str(tiny_judge_dir) if "image" in needle else "first"
    assert main(["eval", "--data", str(data), "--model", judge, "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("egt: error:") and needle in err and "Traceback" not in err
    assert not out.exists()


def test_eval_empty_dataset_and_missing_file(tmp_path, capsys):
    assert (
        main(
            [
                "eval",
                "--data",
                str(_write(tmp_path / "e.jsonl", [])),
                "--model",
                "first",
                "--output_dir",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "empty" in capsys.readouterr().err
    assert (
        main(["eval", "--data", str(tmp_path / "nope.jsonl"), "--model", "first", "--output_dir", str(tmp_path / "o")])
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_eval_report_layout_with_baselines(tmp_path, small_lab):
    for name in ("random", "first", "longer"):
        out = tmp_path / name
        assert main(["eval", "--data", str(small_lab / "test.jsonl"), "--model", name, "--output_dir", str(out)]) == 0
        report = json.loads((out / "report.json").read_text())
        assert {"judge", "n_items", "order", "metrics", "categories", "ties", "parse_failures"} <= set(report)
        assert report["judge"] == name and report["n_items"] == 16 and report["order"] == "both"
        assert 0 <= report["metrics"]["accuracy"] <= 1
        assert sum(1 for _ in open(out / "predictions.jsonl")) == 32 and (out / "report.md").is_file()
    first = json.loads((tmp_path / "first" / "report.json").read_text())
    assert first["metrics"]["accuracy"] == 0.5 and first["metrics"]["order_consistency"] == 0.0


def test_generative_judge_eval_scores_the_verdicts_it_parsed(tmp_path, small_lab, trained_judge_dir):
    """``egt eval`` with the judge trained for a few SFT steps (greedy, both orders): each prediction is
    the verdict parsed from its kept text, mapped to the stored order, and the report's accuracy and
    parse failures are those of the predictions."""
    from egt.judge.base import original_choice
    from egt.judge.parse import parse_verdict
    from trained_judge import MAX_NEW_TOKENS

    out = tmp_path / "gen"
    args = [
        "eval",
        "--data",
        str(small_lab / "test.jsonl"),
        "--model",
        str(trained_judge_dir),
        "--output_dir",
        str(out),
    ]
    args += f"--max_new_tokens {MAX_NEW_TOKENS} --limit 6 --prompt_style compact".split()
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    preds = [json.loads(line) for line in open(out / "predictions.jsonl")]
    assert report["n_items"] == 6 and len(preds) == 12
    for p in preds:  # raw generations are kept for auditing, and they are what was scored
        verdict = parse_verdict(p["text"])
        assert (p["status"] == "parse_failure") == (verdict is None), p
        if verdict is not None:
            assert p["predicted"] == original_choice(verdict.choice, p["swapped"]), p
    assert report["parse_failures"] == sum(p["status"] == "parse_failure" for p in preds) < len(preds)
    right = [p["status"] == "ok" and p["predicted"] == p["preferred"] for p in preds]
    assert report["metrics"]["accuracy"] == pytest.approx(sum(right) / len(preds))
    assert 0 < sum(right) < len(preds)  # right and wrong verdicts: a wrong mapping would show


def test_lab_make_and_bad_config(tmp_path, capsys):
    out = tmp_path / "lab"
    assert main(["lab", "make", "--output_dir", str(out), "--n_sft", "4", "--n_rl_pool", "4", "--n_test", "4"]) == 0
    assert {p.name for p in out.iterdir()} == {"images", "sft.jsonl", "rl_pool.jsonl", "test.jsonl", "lab.json"}
    assert main(["lab", "make", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    cfg = _write(
        tmp_path / "lab.yaml",
        ["output_dir: " + str(tmp_path / "lab2") + "\n", "n_sft: 2\n", "n_rl_pool: 2\n", "n_test: 3\n"],
    )
    assert main(["lab", "make", "--config", str(cfg), "--n_test", "5"]) == 0  # YAML, then CLI overrides
    assert sum(1 for _ in open(tmp_path / "lab2" / "test.jsonl")) == 5


@pytest.mark.slow
def test_reduced_demo_end_to_end(tmp_path):
    """The whole loop at toy size: lab → SFT → eval → score (every signal) → RL on two subsets; a rerun reuses it."""
    out = tmp_path / "demo"
    argv = ["demo", "--output_dir", str(out), *"--n_sft 96 --n_rl_pool 32 --n_test 12 --epochs 1".split()]
    argv += "--batch_size 16 --fraction 0.5 --rl_steps 2 --rollouts 2".split()
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert (Path(report["paths"]["judge"]) / "model.safetensors").is_file()
    test = read_pairs(Path(report["paths"]["lab"]) / "test.jsonl")
    assert len(test) == 12 and report["sft"]["steps"] > 0
    # the test accuracy is the items' accuracy: the category accuracies weighted by their counts
    counts = Counter(p.category for p in test)
    by_category = report["test_accuracy_by_category"]
    assert set(by_category) == set(counts)
    assert report["test_accuracy"] == pytest.approx(sum(by_category[c] * n for c, n in counts.items()) / len(test))
    # baselines over both orders: "first" is right in exactly one order of each item; "longer" as recomputed
    longer = [
        len(p.responses[0]) != len(p.responses[1]) and max((0, 1), key=lambda i: len(p.responses[i])) == p.preferred
        for p in test
    ]  # a tie scores as wrong
    assert report["baselines"]["first"] == 0.5
    assert report["baselines"]["longer"] == pytest.approx(sum(longer) / len(test))
    assert set(report["baselines"]) == {"random", "first", "longer"}
    for s in ("answer", "sentence", "mixed", "vote", "peak"):
        assert {f"spearman_{s}", f"auroc_flipped_{s}", f"auroc_hard_{s}"} <= set(report["rq1"])
    assert {"flip_rate_kept", "flip_rate_dropped"} <= set(report["rq1"]["curation"])
    rl = report["rl"]
    assert rl["signal"] in ("answer", "sentence", "mixed", "vote", "peak") and rl["fraction"] == 0.5
    for arm in ("entropy", "random"):  # each arm's accuracy is a mean over 12 items × 2 orders
        assert (rl[arm]["test_accuracy"] * 24) == pytest.approx(round(rl[arm]["test_accuracy"] * 24), abs=1e-6)
    assert rl["entropy"]["selection"]["n_kept"] == rl["random"]["selection"]["n_kept"] == 16
    done = sorted(p.stat().st_mtime_ns for p in out.rglob("done.json"))
    assert main(argv) == 0  # every step is reused
    assert sorted(p.stat().st_mtime_ns for p in out.rglob("done.json")) == done


def test_help_cut_short_by_a_closed_pipe_ends_without_a_traceback():
    """``egt -h | head -1``: the reader closes the pipe after one line; egt must not print a traceback."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(cli.__file__).parents[1])}
    shell = f"{sys.executable} -m egt.cli -h | head -1"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.startswith("usage: egt") and done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_markdown_cells_escape_pipes_html_and_newlines():
    from egt.report import markdown_table

    table = markdown_table(["name", "n"], [["a|b <script>x</script>\nnext", 3]])
    assert table.splitlines()[2] == "| a\\|b &lt;script&gt;x&lt;/script&gt; next | 3 |"
