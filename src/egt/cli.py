"""The ``egt`` command: one group of subcommands, each a thin entry in ``egt.commands``.

Each entry parses its typed config (YAML + overrides, see :mod:`egt.config`) and calls the
library. User errors (:class:`egt.errors.EgtError`) print one line and exit with status 2.
Commands are imported lazily so ``egt --help`` stays instant.
"""

from __future__ import annotations

import importlib
import os
import sys

# command words -> (module in egt.commands, function, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str, str]] = {
    ("lab", "make"): ("lab", "make", "Generate the shapes lab: a synthetic visual preference task with known noise."),
    ("train", "sft"): ("train", "sft", "SFT a judge on reasoning traces (EGT stage 1, with the fidelity filter)."),
    ("train", "rl"): (
        "train_rl",
        "rl",
        "RL of a judge: GRPO/DAPO/GTPO/GRPO-S, judge reward, entropy curriculum (EGT stage 2).",
    ),
    ("train", "rm"): ("rm", "train", "Train a scalar reward model (Bradley–Terry) on image + text preference pairs."),
    ("ensemble",): (
        "rm",
        "ensemble",
        "Combine reward models: mean of z-normalised rewards, fitted on a calibration set.",
    ),
    ("eval",): ("evaluate", "main", "Evaluate a judge on a pairs dataset or a reward benchmark."),
    ("score",): ("score", "main", "Score a pool by the judge's response entropy (K rollouts per item, resumable)."),
    ("analyze",): ("analyze", "main", "Entropy vs rollout accuracy and label noise: stats, plots, HTML review page."),
    ("curate",): ("curate", "main", "Keep the lowest-entropy items (or a baseline selection); write the manifest."),
    ("math", "eval"): (
        "math",
        "evaluate",
        "Accuracy and pass@k on GSM8K-format math, from a model or a solutions file (resumable).",
    ),
    ("math", "pairs"): ("math", "pairs", "Right-vs-wrong math solutions of the same question as preference pairs."),
    ("math", "lab"): ("math", "lab", "Arithmetic word problems and a tiny text model trained on them (CPU math lab)."),
    ("selfcompare", "build"): (
        "math",
        "selfcompare_build",
        "Self-compare SFT data: verify attempts, compare wrong ones with the reference (resumable).",
    ),
    ("selfcompare", "train"): (
        "math",
        "selfcompare_train",
        "SFT on self-compare records through TRL (loss on the assistant turn).",
    ),
    ("experiment",): (
        "experiment",
        "main",
        "EGT's experiment: selection × curriculum × estimator under RL, tables T0–T5 (resumable).",
    ),
    ("demo",): ("demo", "demo", "The whole EGT loop on the CPU: lab → SFT → score → curate → RL, with a report."),
}


def usage() -> str:
    lines = ["usage: egt <command> [--config FILE.yaml] [--field value ...]", "", "commands:"]
    width = max(len(" ".join(k)) for k in COMMANDS)
    for words, (_, _, help_text) in COMMANDS.items():
        lines.append(f"  {' '.join(words):<{width}}  {help_text}")
    lines += ["", "Run 'egt <command> --help' for the options of one command."]
    return "\n".join(lines)


def find_command(argv: list[str]) -> tuple[tuple[str, ...], list[str]] | None:
    for n in (2, 1):
        words = tuple(argv[:n])
        if words in COMMANDS:
            return words, argv[n:]
    return None


def quiet_libraries() -> None:
    """Keep the console for EGT's own progress and tables: no weight-loading bars or info logs."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from egt import __version__

        print(__version__)
        return 0
    found = find_command(argv)
    if found is None:
        print(f"egt: unknown command {' '.join(argv[:2])!r}\n\n{usage()}", file=sys.stderr)
        return 2
    words, rest = found
    module_name, func_name, _ = COMMANDS[words]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet_libraries()
    from egt.errors import EgtError

    try:
        module = importlib.import_module(f"egt.commands.{module_name}")
        result = getattr(module, func_name)(rest, prog=f"egt {' '.join(words)}")
    except EgtError as e:
        print(f"egt: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("egt: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
