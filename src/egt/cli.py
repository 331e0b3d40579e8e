"""The ``egt`` command: groups of subcommands, each a thin entry in ``egt.commands``.

Each entry parses its typed config (YAML + overrides, see :mod:`egt.config`) and calls the
library. User errors (:class:`egt.errors.EgtError`) print one line and exit with status 2.
Commands are imported only once chosen, and nothing here imports transformers, so ``egt --help``,
``egt <group> --help`` and a mistyped command answer at once.
"""

from __future__ import annotations

import importlib
import os
import sys

from egt.errors import EgtError, did_you_mean

# command words -> (module in egt.commands, function, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str, str]] = {
    ("lab", "make"): ("lab", "make", "Generate the shapes lab: a synthetic visual preference task with known noise."),
    ("traces",): (
        "traces",
        "main",
        "Reasoning traces for your pairs from a teacher model (an endpoint or a checkpoint), fidelity-filtered.",
    ),
    ("train", "sft"): ("train", "sft", "SFT a judge on reasoning traces (EGT stage 1, with the fidelity filter)."),
    ("train", "rl"): (
        "train_rl",
        "rl",
        "RL of a judge: GRPO/DAPO/GTPO/GRPO-S, judge reward, entropy curriculum (EGT stage 2).",
    ),
    ("rm", "train"): ("rm", "train", "Train a scalar reward model (Bradley–Terry) on image + text preference pairs."),
    ("rm", "ensemble"): (
        "rm",
        "ensemble",
        "Combine reward models: mean of z-normalised rewards, fitted on a calibration set.",
    ),
    ("eval",): ("evaluate", "main", "Evaluate a judge on a pairs dataset or a reward benchmark."),
    ("score",): ("score", "main", "Score a pool by the judge's response entropy (K rollouts per item, resumable)."),
    ("analyze",): ("analyze", "main", "Entropy vs rollout accuracy and label noise: stats, plots, HTML review page."),
    ("curate",): ("curate", "main", "Keep the lowest-entropy items (or a baseline selection); write the manifest."),
    ("relabel",): ("relabel", "main", "Apply the review page's corrections (flip / drop / keep / unsure) to a pool."),
    ("math", "eval"): (
        "math",
        "evaluate",
        "Accuracy and pass@k on GSM8K-format math, from a model or a solutions file (resumable).",
    ),
    ("math", "pairs"): ("math", "pairs", "Right-vs-wrong math solutions of the same question as preference pairs."),
    ("math", "lab"): ("math", "lab", "Arithmetic word problems and a tiny text model trained on them (CPU math lab)."),
    ("math", "selfcompare", "build"): (
        "selfcompare",
        "build",
        "Self-compare SFT data: verify attempts, compare wrong ones with the reference (resumable).",
    ),
    ("math", "selfcompare", "train"): (
        "selfcompare",
        "train",
        "SFT on self-compare records through TRL (loss on the assistant turn).",
    ),
    ("experiment",): (
        "experiment",
        "main",
        "EGT's experiment: selection × curriculum × estimator under RL, tables T0–T5 (resumable).",
    ),
    ("demo",): ("demo", "demo", "The whole EGT loop on the CPU: lab → SFT → score → curate → RL, with a report."),
}

# group words -> one-line help (every prefix of a command's words is a group)
GROUPS: dict[tuple[str, ...], str] = {
    ("lab",): "The shapes lab: a synthetic visual preference task with known label noise.",
    ("train",): "Train a judge: SFT on reasoning traces, then RL.",
    ("rm",): "Scalar reward models: Bradley–Terry training and ensembles.",
    ("math",): "Math: GSM8K-format evaluation, preference pairs, a CPU lab, self-compare SFT.",
    ("math", "selfcompare"): "Self-compare SFT: compare wrong attempts with the reference, train on the comparisons.",
}

HELP_WORDS = ("-h", "--help", "help")


def listing(prefix: tuple[str, ...]) -> list[str]:
    """Lines naming what lies under ``prefix``: its subgroups (top level only) and its commands."""
    rows = []
    if not prefix:
        rows += [(f"{words[0]} …", text) for words, text in GROUPS.items() if len(words) == 1]
    for words, (_, _, text) in COMMANDS.items():
        if words[: len(prefix)] == prefix and (prefix or len(words) == 1):
            rows.append((" ".join(words[len(prefix) :]), text))
    width = max(len(name) for name, _ in rows)
    return [f"  {name:<{width}}  {text}" for name, text in rows]


def usage(prefix: tuple[str, ...] = ()) -> str:
    """The help of ``egt`` (groups and single commands) or of one group (its commands)."""
    name = " ".join(("egt", *prefix))
    lines = [f"usage: {name} <command> [--config FILE.yaml] [--option value ...]", ""]
    if prefix:
        lines += [GROUPS[prefix], ""]
    lines += ["commands:", *listing(prefix), ""]
    if not prefix:
        lines.append("Run 'egt <group> --help' for the commands of a group.")
    lines.append(f"Run '{name} <command> --help' for the options of one command.")
    return "\n".join(lines)


def find_command(argv: list[str]) -> tuple[tuple[str, ...], list[str]] | None:
    """The longest command at the start of ``argv`` and the arguments after it."""
    for n in (3, 2, 1):
        words = tuple(argv[:n])
        if words in COMMANDS:
            return words, argv[n:]
    return None


def unknown_command(argv: list[str]) -> str:
    """One line: the words that are not a command, and the closest command or group."""
    words = [arg for arg in argv[:3] if not arg.startswith("-")] or argv[:1]
    n = 1
    while n < len(words) and tuple(words[:n]) in GROUPS:  # 'train sfft' is read as a mistyped 'train sft'
        n += 1
    typed = " ".join(words[:n])
    names = [" ".join(w) for w in (*COMMANDS, *GROUPS)]
    return f"unknown command {typed!r}{did_you_mean(typed, names)}; run 'egt --help'"


def quiet_libraries() -> None:
    """Keep the console for EGT's own progress and tables: no weight-loading bars or info logs.

    Through the environment, so that nothing is imported for it (a user's own setting wins); a
    transformers already imported (e.g. in tests) is told directly.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        transformers = sys.modules["transformers"]
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    """``egt …``; output cut short by a closed pipe (``egt -h | head -1``) ends quietly, not in a traceback."""
    try:
        return run(argv)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 0


def run(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        from egt import __version__

        print(__version__)
        return 0
    found = find_command(argv)
    if found is None:
        prefix = tuple(argv[:2]) if tuple(argv[:2]) in GROUPS else tuple(argv[:1])
        if prefix not in GROUPS:
            prefix = ()
        rest = argv[len(prefix) :]
        if not rest or rest[0] in HELP_WORDS:  # 'egt', 'egt --help', 'egt train', 'egt math selfcompare -h'
            print(usage(prefix))
            return 0
        print(f"egt: error: {unknown_command(argv)}", file=sys.stderr)
        return 2
    words, rest = found
    module_name, func_name, _ = COMMANDS[words]
    quiet_libraries()
    try:
        module = importlib.import_module(f"egt.commands.{module_name}")
        result = getattr(module, func_name)(rest, prog=f"egt {' '.join(words)}")
    except EgtError as e:
        print(f"egt: error: {e}", file=sys.stderr)
        return e.exit_code
    except SystemExit as e:  # --help
        if e.code is not None and not isinstance(e.code, int):
            raise
        return e.code or 0
    except KeyboardInterrupt:
        print("egt: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
