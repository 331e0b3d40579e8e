"""Anyone's own preference pairs: any JSONL / JSON / parquet file, with a field mapping.

``--fields "OURS=THEIRS,..."`` says which of the file's fields (dots reach into nested objects:
``meta.kind``) fill ours. The two responses and which one won come in one of three layouts:

- ``chosen=GOOD,rejected=BAD``: the chosen one is preferred;
- ``responses=A+B``: two fields (``output_1+output_2``, ``conversation_a+conversation_b``), or
  ``responses=LIST``: one field holding 2 strings;
- with either ``responses`` form, the winner: ``label=FIELD:ENCODING`` where ENCODING lists the
  value that means "the first response", then "the second", then any values that mean a tie:
  ``0/1``, ``1/2``, ``A/B`` (any case), ``model_a/model_b`` (arena files; any value starting
  with ``tie`` — ``tie``, ``tie (bothbad)`` — is a tie), ``Output1/Output2``, or your own
  (``label=verdict:left/right/same``). Without ``:ENCODING`` the encoding is inferred from the
  values in the file when only one of those fits (``1, 2`` → ``1/2``; a file of only ``1`` s is
  ambiguous and refused). ``preferred=FIELD`` is EGT's own ``0/1`` label.

A row whose label is a tie has no preferred response: it is skipped and counted (the report says
how many, per value); the judge's own ties and unparsable verdicts are scored by ``--tie_policy``.

Other fields: ``id`` (default ``id``; absent → the record's position), ``question`` (default the
first present of ``question``, ``prompt``, ``query``, ``instruction``; ``question=instruction+input``
joins fields with a blank line; when the responses are conversations, their last user turn),
``images`` (default ``images`` or ``image``: one path, a list of paths, or embedded images),
``category``, ``source``. A response or question may be a chat conversation (a list of
``{role, content}``): the last assistant turn is the response, the last user turn before it the
question (earlier turns are not shown to the judge).

When the file does not fit the mapping, the error names the record's fields and suggests a
mapping built from them.

Repeated ids (rule ``keep``): people's files repeat ids on purpose (an arena file's
``question_id`` names the question, asked of many model pairs), so every row is an item; a
repeated id's rows get the keys ``{id}#0``, ``{id}#1``… and keep the id as ``original_id``.

Metrics: ``accuracy`` (micro) and accuracy per category. Tie / parse-failure rule (default
``wrong``): both score 0, the project's default; ``--tie_policy half`` scores them 0.5.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from egt.benchmarks.base import Benchmark
from egt.benchmarks.common import (
    Rows,
    combine_views,
    field_error,
    grouped_accuracy,
    image_cell,
    key_rows,
    mean,
    nonempty,
    read_records,
    require_row,
    scored,
)
from egt.errors import EgtError
from egt.evaluation.runner import Prediction
from egt.records import PreferencePair

NAME = "generic"
TIE_POLICY = "wrong"
RULE = "the project's default: a tie or an unparsable verdict is not a correct preference"
REPEATED_IDS_RULE = "people's files repeat an id on purpose, e.g. one question asked of several model pairs"
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
ASSISTANT_ROLES = ("assistant", "gpt", "model", "bot", "chatbot")
USER_ROLES = ("user", "human")


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


def _get(row: Mapping, dotted: str) -> Any:
    value: Any = row
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _has(row: Mapping, dotted: str) -> bool:
    return _get(row, dotted) is not None


def _first_present(row: Mapping, ours: str) -> str | None:
    return next((n for n in DEFAULTS[ours] if _has(row, n)), None)


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


# --------------------------------------------------------------------------------------------
# reading values


def _message_text(loc: str, row: Mapping, name: str, message: Mapping) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI-style parts
        texts = [p.get("text") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
        if texts:
            return "\n".join(texts)
    raise field_error(loc, row, name, f"a message without text content ({message!r:.80})")


def _turn(loc: str, row: Mapping, name: str, messages: list, want: str) -> str:
    """The last assistant turn (``want="response"``) or the last user turn before it (``"question"``)."""
    roles = [str(m.get("role", "")).lower() if isinstance(m, Mapping) else "" for m in messages]
    last_assistant = max((i for i, r in enumerate(roles) if r in ASSISTANT_ROLES), default=None)
    if want == "response":
        if last_assistant is None:
            raise field_error(loc, row, name, "a conversation without an assistant turn")
        return _message_text(loc, row, name, messages[last_assistant])
    end = last_assistant if last_assistant is not None else len(messages)
    user = max((i for i, r in enumerate(roles[:end]) if r in USER_ROLES), default=None)
    if user is None:
        raise field_error(loc, row, name, "a conversation without a user turn")
    return _message_text(loc, row, name, messages[user])


def _is_conversation(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, Mapping) and "role" in m for m in value)


def _text(loc: str, row: Mapping, name: str, want: str) -> str:
    value = _get(row, name)
    if isinstance(value, str):
        return value
    if _is_conversation(value):
        return _turn(loc, row, name, value, want)
    if value is None:
        raise mapping_error(loc, row, f"field {name!r}: missing")
    raise field_error(loc, row, name, f"expected a string or a conversation, got {value!r:.60}")


def _question(loc: str, row: Mapping, mapping: Mapping[str, str], response_names: Sequence[str]) -> str:
    if "question" in mapping:
        names = mapping["question"].split("+")
    else:
        first = _first_present(row, "question")
        if first is not None:
            names = [first]
        elif response_names and _is_conversation(_get(row, response_names[0])):
            return _turn(loc, row, response_names[0], _get(row, response_names[0]), "question")
        else:
            raise mapping_error(
                loc, row, f"no question (none of {', '.join(DEFAULTS['question'])}): map it with question=FIELD"
            )
    texts = [_text(loc, row, n, "question") for n in names]
    return "\n\n".join(t for t in texts if t.strip()) if len(texts) > 1 else texts[0]


@dataclass(frozen=True)
class Layout:
    """How this file's rows give two responses and a winner (decided once, from the mapping or the
    first record)."""

    form: str  # "pair" (chosen/rejected) | "list" (one field of 2) | "two" (two fields)
    responses: tuple[str, ...]  # their field names
    label: str | None = None  # their label field (form list / two)
    encoding: Encoding | None = None  # None: to be inferred from the file's values
    strict_01: bool = False  # EGT's ``preferred``: any other value is an error


def layout_of(loc: str, row: Mapping, mapping: Mapping[str, str]) -> Layout:
    if "chosen" in mapping:
        return Layout("pair", (mapping["chosen"], mapping["rejected"]))
    if "responses" in mapping:
        names = tuple(mapping["responses"].split("+"))
    elif "label" in mapping or "preferred" in mapping:
        if not _has(row, "responses"):
            raise mapping_error(
                loc, row, "a label is mapped but no responses: map responses=A+B (two fields) or responses=LIST"
            )
        names = ("responses",)
    elif _has(row, "chosen") or _has(row, "rejected"):
        return Layout("pair", ("chosen", "rejected"))
    elif _has(row, "responses"):
        names = ("responses",)
    else:
        raise mapping_error(
            loc,
            row,
            "no responses: neither chosen+rejected nor a responses field — map "
            "responses=A+B (two fields) or responses=LIST with label=FIELD",
        )
    form = "two" if len(names) == 2 else "list"
    if "preferred" in mapping:
        return Layout(form, names, mapping["preferred"], PREFERRED, strict_01=True)
    if "label" in mapping:
        name, _, enc = mapping["label"].partition(":")
        return Layout(form, names, name, parse_encoding(enc) if enc else None)
    if _has(row, "preferred"):
        return Layout(form, names, "preferred", PREFERRED, strict_01=True)
    if _has(row, "label"):
        return Layout(form, names, "label", None)
    raise mapping_error(
        loc,
        row,
        "no label saying which response won: map label=FIELD:ENCODING (e.g. label=winner:A/B) or preferred=FIELD (0/1)",
    )


def _responses(loc: str, row: Mapping, lay: Layout) -> tuple[str, str]:
    if lay.form == "list":
        name = lay.responses[0]
        value = _get(row, name)
        if value is None:
            raise mapping_error(loc, row, f"field {name!r}: missing")
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise field_error(
                loc, row, name, "expected 2 strings (or map two fields responses=A+B, or chosen and rejected)"
            )
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif _is_conversation(item):
                out.append(_turn(loc, row, name, item, "response"))
            else:
                raise field_error(
                    loc, row, name, "expected 2 strings (or map two fields responses=A+B, or chosen and rejected)"
                )
        return out[0], out[1]
    a, b = lay.responses
    return _text(loc, row, a, "response"), _text(loc, row, b, "response")


def load(path: str | Path, images_dir: str | Path | None = None, fields: str = "") -> list[PreferencePair]:
    mapping = parse_fields(fields)
    records = [(loc, require_row(loc, row)) for loc, row in read_records(path)]
    if not records:
        raise EgtError(f"{path}: the dataset is empty")
    lay = layout_of(*records[0], mapping)
    notes = []
    if lay.form != "pair" and lay.encoding is None:
        encoding, note = infer_encoding(lay.label, [_get(row, lay.label) for _, row in records])
        lay = Layout(lay.form, lay.responses, lay.label, encoding)
        notes.append(note)
    skipped: Counter = Counter()
    pairs = Rows(notes=notes)
    for k, (loc, row) in enumerate(records):
        id_name = mapping.get("id") or "id"
        rid = _get(row, id_name)
        if rid is None and "id" not in mapping:
            rid = k
        if isinstance(rid, bool) or not isinstance(rid, (str, int)) or str(rid) == "":
            raise field_error(loc, row, id_name, "missing or not a non-empty string")
        if lay.form == "pair":
            responses, preferred = _responses_pair(loc, row, lay), 0
        else:
            value = _get(row, lay.label)
            if value is None:
                raise mapping_error(loc, row, f"field {lay.label!r}: missing")
            winner = lay.encoding.read(value)
            if winner is None:
                if lay.strict_01:
                    raise field_error(loc, row, lay.label, f"must be 0 or 1, got {value!r}")
                raise field_error(
                    loc,
                    row,
                    lay.label,
                    f"{value!r} is not a value of {lay.encoding.text} (a tie value? add it: "
                    f"label={lay.label}:{lay.encoding.text}/{value})",
                )
            if winner == TIE:
                skipped[f"{lay.label} = {value!r}, a tie: no preferred response"] += 1
                continue
            responses, preferred = _responses(loc, row, lay), winner
        question = _question(loc, row, mapping, lay.responses)
        img_name = mapping.get("images") or _first_present(row, "images") or "images"
        img = _get(row, img_name)
        cells = img if isinstance(img, (list, tuple)) else ([] if img is None else [img])
        images = [image_cell(loc, {**row, img_name: c}, img_name) for c in cells]
        extra = {}
        for key in ("category", "source"):
            name = mapping.get(key) or key
            value = _get(row, name)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # e.g. category=turn
            if value is not None and not isinstance(value, str):
                raise field_error(loc, row, name, "must be a string")
            extra[key] = value
        pairs.append(
            PreferencePair(
                id=str(rid), question=question, responses=responses, preferred=int(preferred), images=images, **extra
            )
        )
    pairs.skipped = dict(skipped)
    if not pairs and skipped:
        raise EgtError(f"{path}: every row's label is a tie ({sum(skipped.values())} rows): nothing to evaluate")
    return nonempty(key_rows(pairs, "keep", path), path)


def _responses_pair(loc: str, row: Mapping, lay: Layout) -> tuple[str, str]:
    chosen, rejected = lay.responses
    return _text(loc, row, chosen, "response"), _text(loc, row, rejected, "response")


def score_view(predictions: Sequence[Prediction], pairs: Mapping[str, PreferencePair], tie_policy: str) -> dict:
    items = scored(predictions, tie_policy)
    return {
        "metrics": {"accuracy": mean([s for _, s in items])},
        "categories": grouped_accuracy(items, lambda p: pairs[p.id].category),
    }


def aggregate(predictions: Sequence[Prediction], pairs: Sequence[PreferencePair], tie_policy: str = TIE_POLICY) -> dict:
    return combine_views(predictions, pairs, tie_policy, score_view)


def with_fields(fields: str) -> Benchmark:
    """The generic benchmark reading with a field mapping (checked now, before any loading)."""
    parse_fields(fields)
    return Benchmark(
        name=NAME,
        title="pairs (generic)",
        load=partial(load, fields=fields),
        aggregate=aggregate,
        tie_policy=TIE_POLICY,
        rule=RULE,
        headline="{accuracy} accuracy",
        headline_metrics=("accuracy",),
        columns=(("Accuracy", "metrics.accuracy"),),
        repeated_ids="keep",
        repeated_ids_rule=REPEATED_IDS_RULE,
    )


BENCHMARK = with_fields("")
