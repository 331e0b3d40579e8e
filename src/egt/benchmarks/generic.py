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
mapping built from them. The mapping itself — parsing, label encodings, suggestions — is
:mod:`egt.benchmarks.field_mapping`; this module reads the rows with it.

Repeated ids (rule ``keep``): people's files repeat ids on purpose (an arena file's
``question_id`` names the question, asked of many model pairs), so every row is an item; a
repeated id's rows get the keys ``{id}#0``, ``{id}#1``… and keep the id as ``original_id``.

Metrics: ``accuracy`` (micro) and accuracy per category. Tie / parse-failure rule (default
``wrong``): both score 0, the project's default; ``--tie_policy half`` scores them 0.5.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from egt.benchmarks.base import Benchmark, adapter_benchmark
from egt.benchmarks.common import Rows, grouped_accuracy, image_cell, key_rows, mean, nonempty, require_row, scored
from egt.benchmarks.field_mapping import (
    DEFAULTS,
    PREFERRED,
    TIE,
    Encoding,
    first_present,
    get_field,
    has_field,
    infer_encoding,
    mapping_error,
    parse_encoding,
    parse_fields,
)
from egt.data.readers import field_error, read_records
from egt.errors import EgtError
from egt.evaluation.runner import Prediction
from egt.records import PreferencePair

NAME = "generic"
TIE_POLICY = "wrong"
RULE = "the project's default: a tie or an unparsable verdict is not a correct preference"
REPEATED_IDS_RULE = "people's files repeat an id on purpose, e.g. one question asked of several model pairs"
ASSISTANT_ROLES = ("assistant", "gpt", "model", "bot", "chatbot")
USER_ROLES = ("user", "human")


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
    value = get_field(row, name)
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
        first = first_present(row, "question")
        if first is not None:
            names = [first]
        elif response_names and _is_conversation(get_field(row, response_names[0])):
            return _turn(loc, row, response_names[0], get_field(row, response_names[0]), "question")
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
        if not has_field(row, "responses"):
            raise mapping_error(
                loc, row, "a label is mapped but no responses: map responses=A+B (two fields) or responses=LIST"
            )
        names = ("responses",)
    elif has_field(row, "chosen") or has_field(row, "rejected"):
        return Layout("pair", ("chosen", "rejected"))
    elif has_field(row, "responses"):
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
    if has_field(row, "preferred"):
        return Layout(form, names, "preferred", PREFERRED, strict_01=True)
    if has_field(row, "label"):
        return Layout(form, names, "label", None)
    raise mapping_error(
        loc,
        row,
        "no label saying which response won: map label=FIELD:ENCODING (e.g. label=winner:A/B) or preferred=FIELD (0/1)",
    )


def _responses(loc: str, row: Mapping, lay: Layout) -> tuple[str, str]:
    if lay.form == "list":
        name = lay.responses[0]
        value = get_field(row, name)
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
        encoding, note = infer_encoding(lay.label, [get_field(row, lay.label) for _, row in records])
        lay = Layout(lay.form, lay.responses, lay.label, encoding)
        notes.append(note)
    skipped: Counter = Counter()
    pairs = Rows(notes=notes)
    for k, (loc, row) in enumerate(records):
        id_name = mapping.get("id") or "id"
        rid = get_field(row, id_name)
        if rid is None and "id" not in mapping:
            rid = k
        if isinstance(rid, bool) or not isinstance(rid, (str, int)) or str(rid) == "":
            raise field_error(loc, row, id_name, "missing or not a non-empty string")
        if lay.form == "pair":
            responses, preferred = _responses_pair(loc, row, lay), 0
        else:
            value = get_field(row, lay.label)
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
        img_name = mapping.get("images") or first_present(row, "images") or "images"
        img = get_field(row, img_name)
        cells = img if isinstance(img, (list, tuple)) else ([] if img is None else [img])
        images = [image_cell(loc, {**row, img_name: c}, img_name) for c in cells]
        extra = {}
        for key in ("category", "source"):
            name = mapping.get(key) or key
            value = get_field(row, name)
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


def with_fields(fields: str) -> Benchmark:
    """The generic benchmark reading with a field mapping (checked now, before any loading)."""
    parse_fields(fields)
    return adapter_benchmark(
        globals(),
        load=partial(load, fields=fields),
        title="pairs (generic)",
        headline="{accuracy} accuracy",
        headline_metrics=("accuracy",),
        columns=(("Accuracy", "metrics.accuracy"),),
        repeated_ids="keep",
    )


BENCHMARK = with_fields("")
