"""Thin command entries: parse a config, call the library, report. See :mod:`egt.cli` and docs/cli.md.

One vocabulary for every command: ``--data`` (the input), ``--model`` (the judge or model used or
trained from), ``--output_dir`` (always a folder), ``--order stored|random|both``.
"""

from __future__ import annotations

from pathlib import Path


def in_folder(path: str, name: str) -> str:
    """``path`` itself, or ``path/name`` when ``path`` is the folder a command wrote (``--scores runs/score``)."""
    return str(Path(path) / name) if path and Path(path).is_dir() else path
