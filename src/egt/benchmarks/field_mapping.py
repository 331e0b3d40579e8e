"""The generic format's field mapping: ``--fields "OURS=THEIRS,..."`` parsed and checked, a label's
encoding (given or inferred from the file's values), dotted field access, and the errors that name a
record's fields and suggest a mapping built from them.

The syntax, in words, is :mod:`egt.benchmarks.generic`'s docstring (and docs/benchmarks.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from egt.errors import EgtError

OUR_FIELDS = ("id", "question", "chosen", "rejected", "responses", "label", "preferred", "images", "category", "source")
DEFAULTS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "question": ("question", "prompt", "query", "instruction"),
    "chosen": ("chosen",),
    "rejected": ("rejected",),
    "responses": ("responses",),
    "preferred": ("preferred",),
    "label": ("label",),
    "images": ("images", "image"),
    "category": ("category",),
    "source": ("source",),
}


# --------------------------------------------------------------------------------------------
# label encodings


def _norm(value: Any) -> str | None:
    """A label value as compared: ``1``, ``1.0`` and ``"1"`` alike, letters in any case; None for
    values no encoding reads (booleans, lists, missing)."""
    if value is None or isinstance(value, bool) or isinstance(value, (list, tuple, dict)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


TIE = "tie"  # what Encoding.read returns for a tie value


@dataclass(frozen=True)
class Encoding:
    """How a label field names the winner: ``first`` / ``second`` / tie values (compared lower-case)."""

    first: str
    second: str
    ties: tuple[str, ...] = ()
    tie_prefix: str = ""  # any value starting with it is a tie (arena files: "tie", "tie (bothbad)")
    text: str = ""  # as written, for messages

    def read(self, value: Any) -> int | str | None:
        """0 (first), 1 (second), ``TIE``, or None (not a value of this encoding)."""
        v = _norm(value)
        if v is None:
            return None
        if v == self.first:
            return 0
        if v == self.second:
            return 1
        if v in self.ties or (self.tie_prefix and v.startswith(self.tie_prefix)):
            return TIE
        return None


def parse_encoding(text: str) -> Encoding:
    """``"1/2"`` → first ``1``, second ``2``; ``"model_a/model_b/tie"``; values compared lower-case."""
    parts = [p.strip() for p in text.split("/")]
    if len(parts) < 2 or not all(parts):
        raise EgtError(
            f"--fields: label encoding {text!r}: expected FIRST/SECOND[/TIE...], e.g. 1/2, A/B, model_a/model_b/tie"
        )
    low = [p.lower() for p in parts]
    if len(set(low)) != len(low):
        raise EgtError(f"--fields: label encoding {text!r} names a value twice")
    prefix = "tie" if low[:2] == ["model_a", "model_b"] else ""
    return Encoding(first=low[0], second=low[1], ties=tuple(low[2:]), tie_prefix=prefix, text=text)


# the encodings a label's values are matched against when the mapping does not say
KNOWN_ENCODINGS = tuple(parse_encoding(t) for t in ("0/1", "1/2", "A/B", "model_a/model_b", "Output1/Output2"))
PREFERRED = parse_encoding("0/1")  # EGT's own ``preferred`` field


def infer_encoding(name: str, values: Sequence[Any]) -> tuple[Encoding, str]:
    """The one known encoding that reads every value of the label field, and a note saying so."""
    seen = sorted({v for v in (_norm(x) for x in values) if v is not None})
    fits = [e for e in KNOWN_ENCODINGS if seen and all(e.read(v) is not None for v in seen)]
    shown = ", ".join(seen[:8]) + (", …" if len(seen) > 8 else "")
    if len(fits) != 1:
        why = (
            f"its values ({shown}) fit {' and '.join(e.text for e in fits)} alike"
            if fits
            else f"its values ({shown or 'none'}) fit none of {', '.join(e.text for e in KNOWN_ENCODINGS)}"
        )
        raise EgtError(
            f"--fields: say how label {name!r} names the winner: label={name}:FIRST/SECOND[/TIE...], "
            f"e.g. label={name}:1/2 — {why}"
        )
    enc = fits[0]
    return enc, (
        f"label {name!r} read as {enc.text} (inferred from its values {shown}; write label={name}:{enc.text} to say so)"
    )


# --------------------------------------------------------------------------------------------
# the mapping


def parse_fields(spec: str) -> dict[str, str]:
    """``"question=prompt,responses=output_1+output_2,label=pref:1/2"`` → ``{ours: theirs}``, checked."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        ours, sep, theirs = (s.strip() for s in part.partition("="))
        if not sep or not ours or not theirs:
            raise EgtError(f"--fields: expected OURS=THEIRS, got {part!r}")
        if ours not in OUR_FIELDS:
            raise EgtError(f"--fields: unknown field {ours!r} (one of {', '.join(OUR_FIELDS)})")
        if ours in mapping:
            raise EgtError(f"--fields: {ours!r} is mapped twice")
        if "+" in theirs and ours not in ("question", "responses"):
            raise EgtError(f"--fields: {ours}={theirs}: only question and responses join fields with '+'")
        if ours == "responses" and theirs.count("+") > 1:
            raise EgtError(f"--fields: responses={theirs}: expected one list field or two fields A+B")
        if ":" in theirs:
            if ours != "label":
                raise EgtError(f"--fields: {ours}={theirs}: only label takes an encoding (label=FIELD:1/2)")
            parse_encoding(theirs.partition(":")[2])
        if any(not n.strip() for n in theirs.partition(":")[0].split("+")):
            raise EgtError(f"--fields: {ours}={theirs}: an empty field name")
        mapping[ours] = theirs
    pair = {"chosen", "rejected"} & set(mapping)
    if pair and pair != {"chosen", "rejected"}:
        raise EgtError("--fields: map chosen and rejected together")
    if pair and {"responses", "label", "preferred"} & set(mapping):
        raise EgtError("--fields: map either chosen+rejected, or responses with label (or preferred), not both")
    if {"label", "preferred"} <= set(mapping):
        raise EgtError("--fields: map label (any encoding) or preferred (0/1), not both")
    return mapping


def get_field(row: Mapping, dotted: str) -> Any:
    """The value at ``dotted`` (``meta.kind`` reaches into nested objects); None when absent."""
    value: Any = row
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def has_field(row: Mapping, dotted: str) -> bool:
    return get_field(row, dotted) is not None


def first_present(row: Mapping, ours: str) -> str | None:
    """The first of our field's default names (:data:`DEFAULTS`) the record has."""
    return next((n for n in DEFAULTS[ours] if has_field(row, n)), None)


# --------------------------------------------------------------------------------------------
# errors that name the record's fields and suggest a mapping

_PAIR_TAG = re.compile(r"^(?P<base>.*?)(?P<tag>[12abAB])$")
RESPONSE_HINTS = ("output", "response", "answer", "completion", "conversation", "generation", "reply", "text")
LABEL_HINTS = ("label", "winner", "preference", "preferred", "better", "choice")
QUESTION_HINTS = ("question", "prompt", "query", "instruction", "text", "input")
NOT_RESPONSES = {"model", "id", "score", "scores", "rating", "rank", "image", "img", "judge", "annotator"}


def _field_names(row: Mapping) -> list[str]:
    return [f"{k}.*" if isinstance(v, Mapping) else str(k) for k, v in row.items()]


def _looks_like_text(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and bool(value) and isinstance(value[0], Mapping))


def suggest_fields(row: Mapping) -> str:
    """A ``--fields`` value for this record's layout, or "" when nothing fits."""
    keys = [k for k in row if isinstance(k, str)]
    low = {k.lower(): k for k in keys}
    parts = []
    question = next((low[h] for h in QUESTION_HINTS if h in low and isinstance(row[low[h]], str)), None)
    chosen = next((k for k in keys if "chosen" in k.lower() and _looks_like_text(row[k])), None)
    rejected = next((k for k in keys if "rejected" in k.lower() and _looks_like_text(row[k])), None)
    if chosen and rejected:
        responses = [f"chosen={chosen}", f"rejected={rejected}"]
    else:
        pairs: dict[tuple[str, str], dict[str, str]] = {}
        for k in keys:
            m = _PAIR_TAG.match(k)
            if not m or not _looks_like_text(row[k]):
                continue
            base, tag = m["base"], m["tag"].lower()
            if set(re.split(r"[_\-\s]+", base.lower())) & NOT_RESPONSES:  # model_a, score_1, image_2 …
                continue
            pairs.setdefault((base, "12" if tag in "12" else "ab"), {})[tag] = k
        found = [(base, tags) for (base, kind), tags in pairs.items() if len(tags) == 2]
        found.sort(key=lambda bt: not any(h in bt[0].lower() for h in RESPONSE_HINTS))
        responses = []
        if found:
            a, b = sorted(found[0][1].values())
            responses.append(f"responses={a}+{b}")
        elif "responses" not in low:
            lists = [
                k
                for k in keys
                if isinstance(row[k], list) and len(row[k]) == 2 and all(isinstance(x, str) for x in row[k])
            ]
            if lists:
                responses.append(f"responses={lists[0]}")
        label = next(
            (k for k in keys if k.lower() in LABEL_HINTS or any(h in k.lower() for h in LABEL_HINTS[:3])), None
        )
        if label and responses:
            responses.append(f"label={label}")
    extra = low.get("input") if question and question.lower() == "instruction" else None
    if extra and isinstance(row[extra], str):
        parts.append(f"question={question}+{extra}")  # instruction-tuning files: the input goes with it
    elif question and question.lower() not in DEFAULTS["question"]:
        parts.append(f"question={question}")
    parts += responses
    if "id" not in row:
        rid = next((k for k in keys if k.lower() in ("id", "uid", "question_id", "pair_id", "example_id", "idx")), None)
        if rid:
            parts.insert(0, f"id={rid}")
    return ",".join(parts)


def mapping_error(loc: str, row: Mapping, what: str) -> EgtError:
    msg = f"{loc}: {what}; this record's fields: {', '.join(_field_names(row))}"
    suggestion = suggest_fields(row)
    if suggestion:
        msg += f" — try --fields '{suggestion}'"
    return EgtError(msg + " (docs/benchmarks.md shows the mapping syntax)")
