"""One way to configure every command: typed dataclasses, a YAML file, command-line overrides.

Built on TRL's ``TrlParser`` (itself ``transformers.HfArgumentParser``): ``--config recipe.yaml``
sets the defaults, and any ``--field value`` on the command line overrides them. TRL's own
config classes (``SFTConfig``, ``GRPOConfig``, …) can be parsed side by side with ours, so a
recipe can set any TRL / transformers training argument.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from egt.errors import EgtError


def parse_config(
    types: Sequence[type],
    argv: Sequence[str] | None,
    prog: str,
    description: str = "",
    defaults: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """Parse ``argv`` into one instance of each dataclass in ``types``.

    A missing or malformed ``--config`` file is a user error (exit 2, one line); unknown flags
    and bad values are reported by argparse, which also exits with status 2. ``defaults``
    replaces dataclass defaults (a recipe file and command-line flags still override them).
    """
    from trl import TrlParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise EgtError("--config needs a YAML file path")
        path = Path(argv[i + 1])
        if not path.is_file():
            raise EgtError(f"{path}: config file not found")
    parser = TrlParser(list(types), prog=prog, description=description)
    if defaults:  # command-specific defaults (e.g. CPU-friendly TRL settings); YAML and flags still win
        parser.set_defaults(**defaults)
    try:
        return tuple(parser.parse_args_and_config(argv))
    except ValueError as e:  # bad YAML keys/values surface as ValueError
        raise EgtError(f"{prog}: {e}") from None
    except Exception as e:
        import yaml

        if isinstance(e, yaml.YAMLError):
            raise EgtError(f"--config: malformed YAML ({e})") from None
        raise
