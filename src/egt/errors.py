"""User-facing errors.

An :class:`EgtError` is a mistake in what the user gave us (a malformed record, a missing file, a
bad option). The CLI prints its message on one line and exits with status 2, without a traceback.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EgtError(Exception):
    """A user error: the message names the file, record and field where it can."""

    exit_code = 2


def where(path: object = None, record: object = None, field: str | None = None) -> str:
    """Format a location prefix such as ``data.jsonl: line 3 (id='a1'): field 'responses'``."""
    parts = []
    if path is not None:
        parts.append(str(path))
    if record is not None:
        parts.append(str(record))
    if field is not None:
        parts.append(f"field {field!r}")
    return ": ".join(parts)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the choice closest to ``word`` (difflib), or ``""`` when none is close."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""
