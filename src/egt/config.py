"""One way to configure every command: typed dataclasses, a YAML file, command-line overrides.

Built on TRL's ``TrlParser`` (itself ``transformers.HfArgumentParser``): ``--config recipe.yaml``
sets the defaults, and any ``--field value`` on the command line overrides them. TRL's own
config classes (``SFTConfig``, ``GRPOConfig``, …) can be parsed side by side with ours, so a
recipe can set any TRL / transformers training argument.

What this layer adds to ``TrlParser``:

* ``--help`` lists ``--config``, the project's options first (one group per dataclass) and the
  TRL / transformers options after, under their own heading; required options say so.
* A config type may be named ``"module:Class"``: it is imported only when needed, and ``--help``
  reads its options from a cache (``$XDG_CACHE_HOME/egt/help``, keyed by the installed TRL /
  transformers versions and, for our own classes, a digest of their module's source) so that help
  does not import torch; the first ``--help`` fills it.
* No option prefixes (``allow_abbrev=False``). Every mistake — an unknown option or YAML key, a bad
  value, a missing required option, a malformed YAML — is one :class:`EgtError` line naming it,
  with the closest valid name, raised before any dataclass is built (so before any library warning).
* ``defaults=`` is the one way a command sets its own defaults (e.g. CPU-friendly TRL settings);
  the recipe and the command line still override them.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import typing
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from trl import TrlParser  # cheap: TRL's own copy of HfArgumentParser, without transformers or torch

from egt.errors import EgtError, did_you_mean

LIBRARIES = ("trl", "transformers")  # fields declared in these packages are listed under their own heading
HELP_FLAGS = ("-h", "--help")
CONFIG_HELP = "YAML recipe: its keys set the defaults, flags on the command line override them."
LIBRARY_NOTE = "Accepted as documented by TRL / transformers; defaults shown are EGT's."


def parse_config(
    types: Sequence[type | str],
    argv: Sequence[str] | None,
    prog: str,
    description: str = "",
    defaults: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """Parse ``argv`` into one instance of each dataclass in ``types``.

    ``types`` are dataclasses, or ``"module:Class"`` names imported only when needed. Precedence:
    dataclass defaults < ``defaults`` < the ``--config`` YAML < command-line flags. ``--help``
    prints the options and raises ``SystemExit(0)``; every user mistake raises :class:`EgtError`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path, argv = split_config_flag(argv)
    recipe = read_recipe(config_path) if config_path else {}
    if any(arg in HELP_FLAGS for arg in argv):
        parser = help_parser(types, prog, description)
    else:
        parser = EgtParser([resolve(t) for t in types], prog=prog, description=description)
    if defaults:
        unknown = set(defaults) - {action.dest for action in parser._actions}
        if unknown:  # a bug in the command, not a user error
            raise ValueError(f"{prog}: defaults for unknown fields {sorted(unknown)}")
        set_defaults(parser, defaults)
    apply_recipe(parser, recipe, config_path)
    if any(arg in HELP_FLAGS for arg in argv):
        parser.print_help()
        raise SystemExit(0)
    return parser.parse(argv)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown as ``(default: x)``; required options marked ``(required)``; no ``(default: )``.

    Each option is shown by its first name (``--output_dir``; the ``--output-dir`` spelling works too).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if isinstance(action, argparse._StoreFalseAction):  # the `--no_x` twin of a boolean `--x`
            return f"Same as --{action.dest} false."
        if action.required:
            return f"{text} (required)".strip()
        if action.default == "" or "%(default)" in text:
            return text
        return super()._get_help_string(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        first = action.option_strings[0]
        names = ", ".join(s for s in action.option_strings if s == first or s != first.replace("_", "-"))
        if action.nargs == 0:
            return names
        if action.nargs == "?" and action.const is True:  # a boolean: `--x`, `--x true`, `--x no`, …
            return f"{names} [BOOL]"
        return f"{names} {self._format_args(action, self._get_default_metavar_for_optional(action))}"


class EgtParser(TrlParser):
    """``TrlParser`` with grouped help, ``--config`` in it, no prefixes, and one-line errors."""

    def __init__(self, dataclass_types: Sequence[type], prog: str, description: str = "", cached: Sequence = ()):
        self._groups: dict[tuple[type, bool], Any] = {}
        self.library_groups: list[Any] = []
        super().__init__(
            list(dataclass_types),
            prog=prog,
            description=description,
            usage=f"{prog} [--config FILE.yaml] [--option value ...]",
            allow_abbrev=False,
            formatter_class=HelpFormatter,
        )
        self.add_argument("--config", metavar="FILE.yaml", default=argparse.SUPPRESS, help=CONFIG_HELP)
        for group in cached:
            add_cached_group(self, group)
        self._action_groups.sort(key=lambda group: group in self.library_groups)  # stable: the project's first

    def _add_dataclass_arguments(self, dtype: type) -> None:
        hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if f.init:
                f.type = hints[f.name]
                self._parse_dataclass_field(self.group(dtype, declared_by_library(dtype, f.name)), f)

    def group(self, dtype: type, library: bool) -> Any:
        """The help group of ``dtype``'s own fields, or of those it takes from TRL / transformers."""
        if (dtype, library) not in self._groups:
            if library:
                group = self.add_argument_group(f"{dtype.__name__}: TRL / transformers options", LIBRARY_NOTE)
                self.library_groups.append(group)
            else:
                group = self.add_argument_group(f"{dtype.__name__} options", summary(dtype))
            self._groups[dtype, library] = group
        return self._groups[dtype, library]

    def error(self, message: str) -> typing.NoReturn:
        raise EgtError(f"{self.prog}: {message}")

    def parse(self, argv: Sequence[str]) -> tuple[Any, ...]:
        """Parse ``argv``; refuse unknown options before building any dataclass."""
        namespace, unknown = self.parse_known_args(list(argv))
        if unknown:
            raise EgtError(f"{self.prog}: {unknown_message(self, unknown)}")
        values = vars(namespace)
        with warnings.catch_warnings(record=True) as caught:  # shown only if every config is valid
            warnings.simplefilter("always")
            try:
                outputs = tuple(
                    dtype(**{f.name: values[f.name] for f in dataclasses.fields(dtype) if f.init})
                    for dtype in self.dataclass_types
                )
            except ValueError as e:  # a config's own check (__post_init__) of the values given
                raise EgtError(f"{self.prog}: {e}") from None
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        return outputs


def split_config_flag(argv: list[str]) -> tuple[Path | None, list[str]]:
    """Take ``--config PATH`` (or ``--config=PATH``) out of ``argv``; check that the file exists."""
    rest, path = [], None
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            path = next(args, None)
            if path is None:
                raise EgtError("--config needs a YAML file path")
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if path is not None and not Path(path).is_file():
        raise EgtError(f"{path}: config file not found")
    return (Path(path) if path is not None else None), rest


def read_recipe(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path`` (empty file: no settings); its ``env:`` entries go to the environment."""
    import yaml

    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise EgtError(f"{where}: malformed YAML ({' '.join(str(problem).split())})") from None
    if recipe is None:
        return {}
    if not isinstance(recipe, dict):
        raise EgtError(f"{path}: a recipe is a YAML mapping of option: value, not a {type(recipe).__name__}")
    env = recipe.pop("env", {})
    if not isinstance(env, dict):
        raise EgtError(f"{path}: env: a mapping of NAME: value")
    for name, value in env.items():
        os.environ[str(name)] = str(value)
    return recipe


def apply_recipe(parser: EgtParser, recipe: dict[str, Any], path: Path | None) -> None:
    """Make the recipe's values the parser's defaults; an unknown key or invalid choice is an error."""
    actions: dict[str, argparse.Action] = {}
    for action in parser._actions:
        actions.setdefault(action.dest, action)
    names = [name for name in actions if name not in ("help", "config")]
    unknown = [str(key) for key in recipe if key not in names]
    if unknown:
        named = ", ".join(f"{key}{did_you_mean(key, names)}" for key in unknown)
        raise EgtError(f"{path}: unknown key{'s' if len(unknown) > 1 else ''} {named}")
    for key, value in recipe.items():
        action = actions[key]
        if action.choices is not None:
            chosen = action.type(value) if isinstance(value, str) and callable(action.type) else value
            if chosen not in action.choices:
                valid = ", ".join(str(choice) for choice in action.choices)
                raise EgtError(f"{path}: {key}: invalid choice {value!r} (choose from {valid})")
    set_defaults(parser, recipe)


def set_defaults(parser: argparse.ArgumentParser, values: dict[str, Any]) -> None:
    """New defaults for the options with these names; an option given a default is no longer required."""
    for action in parser._actions:
        if action.dest in values:
            action.default = values[action.dest]
            action.required = False


def unknown_message(parser: argparse.ArgumentParser, unknown: Sequence[str]) -> str:
    """One line naming the unknown options, each with the closest valid one."""
    options = [arg.split("=", 1)[0] for arg in unknown if arg.startswith("-")]
    if not options:
        return f"unexpected argument {unknown[0]!r}"
    known = [action.option_strings[0] for action in parser._actions if action.option_strings]
    named = ", ".join(f"{option}{did_you_mean(option, known)}" for option in options)
    return f"unknown option{'s' if len(options) > 1 else ''} {named}"


# ---- resolving types, and help without importing TRL / transformers


def resolve(config_type: type | str) -> type:
    """A dataclass, from itself or from its ``"module:Class"`` name."""
    if not isinstance(config_type, str):
        return config_type
    module, _, name = config_type.partition(":")
    return getattr(importlib.import_module(module), name)


def is_library(name: str) -> bool:
    """Whether a module, or a ``"module:Class"`` name, belongs to TRL / transformers."""
    return name.partition(":")[0].split(".", 1)[0] in LIBRARIES


def declared_by_library(dtype: type, name: str) -> bool:
    """Whether field ``name`` of ``dtype`` is declared by a TRL / transformers class (not redeclared by ours)."""
    for klass in dtype.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            return is_library(klass.__module__)
    return is_library(dtype.__module__)


def summary(dtype: type) -> str | None:
    """The first line of the class docstring (not the signature that ``@dataclass`` writes when there is none)."""
    doc = vars(dtype).get("__doc__") or ""
    if not doc.strip() or doc.startswith(f"{dtype.__name__}("):
        return None
    return doc.strip().splitlines()[0]


def help_parser(types: Sequence[type | str], prog: str, description: str) -> EgtParser:
    """A parser for printing help: classes named by string (``"module:Class"``) come from the help cache."""
    classes, cached = [], []
    for config_type in types:
        if isinstance(config_type, str):
            cached += library_help(config_type)
        else:
            classes.append(resolve(config_type))
    return EgtParser(classes, prog=prog, description=description, cached=cached)


def help_cache_file(name: str) -> Path | None:
    """The cache file of ``name``'s help: keyed by the TRL / transformers versions and, for one of our
    own classes (e.g. a ``TrainingArguments`` subclass), by a digest of its module's source, so an
    edit to that module refreshes it. Finding the source imports only its parent packages."""
    try:
        versions = "-".join(f"{package}{metadata.version(package)}" for package in LIBRARIES)
    except metadata.PackageNotFoundError:
        return None
    if not is_library(name):
        spec = importlib.util.find_spec(name.partition(":")[0])
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            return None
        from egt import __version__

        versions += f"-egt{__version__}-" + hashlib.sha1(Path(spec.origin).read_bytes()).hexdigest()[:12]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "egt" / "help" / f"{name.replace(':', '.')}-{versions}.json"


def library_help(name: str) -> list[dict[str, Any]]:
    """The help groups of the library class ``name``, from the cache (filled on the first call)."""
    path = help_cache_file(name)
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    parser = EgtParser([resolve(name)], prog=name)
    groups = [
        {"title": g.title, "description": g.description, "library": g in parser.library_groups, "actions": []}
        for g in parser._action_groups[2:]
    ]
    for group, spec in zip(parser._action_groups[2:], groups):
        spec["actions"] = [action_spec(action) for action in group._group_actions]
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(groups))
            tmp.replace(path)
        except OSError:  # a read-only cache only costs speed
            pass
    return groups


def action_spec(action: argparse.Action) -> dict[str, Any]:
    """What ``--help`` shows of an option, as JSON (values as their text, which is all help prints)."""
    return {
        "flags": action.option_strings,
        "dest": action.dest,
        "store_false": isinstance(action, argparse._StoreFalseAction),
        "nargs": action.nargs,
        "const": action.const if action.const is True else None,
        "default": str(action.default),
        "choices": None if action.choices is None else [str(c) for c in action.choices],
        "required": action.required,
        "help": action.help,
        "metavar": action.metavar,
    }


def add_cached_group(parser: EgtParser, spec: dict[str, Any]) -> None:
    group = parser.add_argument_group(spec["title"], spec["description"])
    if spec["library"]:
        parser.library_groups.append(group)
    for a in spec["actions"]:
        common = {"dest": a["dest"], "default": a["default"], "required": a["required"], "help": a["help"]}
        if a["store_false"]:
            group.add_argument(*a["flags"], action="store_false", **common)
        else:
            shown = {"nargs": a["nargs"], "choices": a["choices"], "metavar": a["metavar"]}
            group.add_argument(*a["flags"], **shown, **({"const": True} if a["const"] else {}), **common)
