"""Console output: one rich console, tables and progress bars for every command."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(stderr=False, highlight=False)
errors = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    """A warning a user must not miss: ``egt: warning: …`` on stderr, in bold (plain text when piped)."""
    errors.print(f"egt: warning: {message}", style="bold yellow", markup=False, soft_wrap=True)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[str(c) for c in row])
    console.print(table)


def progress(
    iterable: Iterable, total: int | None = None, desc: str = "", unit: str = "it", disable: bool | None = None
):
    """A tqdm bar on stderr (shows items/s); silent when stderr is not a terminal and EGT_PROGRESS=0."""
    import os

    from tqdm.auto import tqdm

    if disable is None:
        disable = os.environ.get("EGT_PROGRESS", "1") == "0"
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr, dynamic_ncols=True)


def markdown_cell(value: Any) -> str:
    """A table cell's text, safe in Markdown: HTML escaped (``<b>`` stays text), ``|`` and newlines
    escaped so a category or benchmark name cannot break the table."""
    import html

    text = html.escape(str(value), quote=False)
    return text.replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(markdown_cell(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
