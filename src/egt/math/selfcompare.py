"""SkyMath-style self-compare data (docs/methods.md §7; our reading of the pipeline, the paper's exact
steps were not available).

For each question with a reference: K attempts (sampled from the policy, or read from an existing
solutions file); each is graded; every wrong one (and, by default, every unanswered one) goes to a
comparer (:mod:`egt.math.compare`) that compares it with the reference step by step, names the
first wrong step and writes a corrected solution. A comparison is *kept* only if the corrected
solution's answer verifies against the reference. The SFT dataset (chat ``messages``, the format
TRL's ``SFTTrainer`` reads) holds two kinds of records:

- ``comparison``: user = question + the model's own attempt (no reference: the model learns to
  check itself), assistant = the comparison + corrected solution;
- ``verified``: user = question, assistant = a verified solution (each distinct correct attempt
  and each kept correction).

Outcomes per attempt: correct | wrong | unanswered; per comparison: kept | rejected (the
correction does not verify) | unparsed (no "Corrected solution:") | failed (the comparer could
not be reached; retried on rerun) | pending (no comparer: prompts only).

Runs are resumable through :class:`egt.math.journal.Journal`; sampled attempts are seeded per
chunk, so a resumed run writes exactly what an uninterrupted one would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from egt.data.atomic import atomic_write_json, atomic_write_jsonl
from egt.errors import EgtError
from egt.math.answers import CORRECT, UNANSWERED, grade
from egt.math.compare import (
    ComparerFailed,
    Comparison,
    ComparisonRequest,
    comparison_prompt,
    format_comparison,
    parse_comparison,
    self_check_prompt,
)
from egt.math.data import MathItem
from egt.math.generate import DEFAULT_PROMPT, question_messages
from egt.math.journal import Journal

KEPT, REJECTED, UNPARSED, FAILED, PENDING = "kept", "rejected", "unparsed", "failed", "pending"
COMPARERS = ("self", "model", "openai", "reference", "none")


@dataclass
class ComparerArgs:
    """Which comparer judges the wrong attempts."""

    comparer: str = field(
        default="self",
        metadata={
            "help": "self (the policy) | model (--comparer_model) | openai "
            "(--comparer_url) | reference (scripted, lab only) | none (prompts only)."
        },
    )
    comparer_model: str = field(default="", metadata={"help": "Local checkpoint for --comparer model."})
    comparer_url: str = field(
        default="", metadata={"help": "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."}
    )
    comparer_model_name: str = field(default="", metadata={"help": "The endpoint's model name."})
    comparer_api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "Environment variable holding the API key (optional)."}
    )
    comparer_timeout: float = field(
        default=60.0, metadata={"help": "Seconds per request before it counts as timed out."}
    )
    comparer_retries: int = field(
        default=4,
        metadata={
            "help": "Retries after a timeout / 429 / 5xx (backoff 0.5 s doubling to 8 s, or the server's Retry-After)."
        },
    )
    comparer_concurrency: int = field(default=4, metadata={"help": "Requests to the endpoint at once."})
    comparer_max_new_tokens: int = field(default=512, metadata={"help": "Longest comparison generated."})
    compare_unanswered: bool = field(default=True, metadata={"help": "Also compare attempts without a final answer."})


def comparison_of(reply: str | ComparerFailed, reference: str) -> dict:
    """Turn one comparer reply into the stored comparison (status, parts, corrected answer)."""
    if isinstance(reply, ComparerFailed):
        return {"status": FAILED, "error": str(reply)}
    parsed = parse_comparison(reply)
    if parsed is None:
        return {"status": UNPARSED, "text": reply}
    g = grade(parsed.corrected, reference)
    return {
        "status": KEPT if g.status == CORRECT else REJECTED,
        "text": reply,
        "analysis": parsed.analysis,
        "first_wrong_step": parsed.first_wrong_step,
        "corrected": parsed.corrected,
        "corrected_answer": g.answer,
    }


def needs_comparison(attempt: dict, compare_unanswered: bool) -> bool:
    return attempt["status"] != CORRECT and (compare_unanswered or attempt["status"] != UNANSWERED)


def compare_attempts(record: dict, comparer, compare_unanswered: bool, only_failed: bool = False) -> dict:
    """Fill in the comparisons of a record's wrong attempts (or redo only the failed ones)."""
    todo = []
    for j, a in enumerate(record["attempts"]):
        if not needs_comparison(a, compare_unanswered):
            continue
        if only_failed and (a.get("comparison") or {}).get("status") != FAILED:
            continue
        todo.append(j)
    if comparer is None:
        for j in todo:
            record["attempts"][j]["comparison"] = {"status": PENDING}
        return record
    requests = [
        ComparisonRequest(record["question"], record["reference"], record["attempts"][j]["solution"]) for j in todo
    ]
    for j, reply in zip(todo, comparer.compare(requests) if requests else [], strict=True):
        record["attempts"][j]["comparison"] = comparison_of(reply, record["reference"])
    return record


def new_record(item: MathItem, attempts: Sequence[str], sources: Sequence[str] | None = None) -> dict:
    graded = []
    for j, solution in enumerate(attempts):
        g = grade(solution, item.reference)
        a = {"solution": solution, "answer": g.answer, "status": g.status}
        if sources is not None:
            a["source"] = sources[j]
        graded.append(a)
    return {
        "id": item.id,
        "question": item.question,
        "reference": item.reference,
        "gold": item.gold,
        "attempts": graded,
    }


def has_failures(record: dict) -> bool:
    return any((a.get("comparison") or {}).get("status") == FAILED for a in record["attempts"])


def run_build(
    items: Sequence[MathItem],
    attempts_for: Callable[[int, Sequence[MathItem]], list[tuple[list[str], list[str] | None]]],
    comparer,
    journal: Journal,
    *,
    chunk_size: int,
    compare_unanswered: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> list[dict]:
    """Attempts → grades → comparisons for every item, journaled; resumes and retries failures.

    ``attempts_for(chunk_index, chunk)`` returns ``(attempts, sources)`` per item of the chunk and
    must be deterministic in its arguments (seeded sampling, or a file).
    """
    for c, start in enumerate(range(0, len(items), chunk_size)):
        chunk = items[start : start + chunk_size]
        todo = {it.id for it in chunk if it.id not in journal}
        if todo:
            attempts = attempts_for(c, chunk)
            for it, (solutions, sources) in zip(chunk, attempts, strict=True):
                if it.id in journal:
                    continue
                record = compare_attempts(new_record(it, solutions, sources), comparer, compare_unanswered)
                journal.append([record], sync=False)  # per item: a crash mid-chunk keeps finished items
        if comparer is not None:
            for it in chunk:
                record = journal.get(it.id)
                if record is not None and it.id not in todo and has_failures(record):
                    journal.append(
                        [compare_attempts(record, comparer, compare_unanswered, only_failed=True)], sync=False
                    )
        journal.sync()
        if on_chunk is not None:
            on_chunk(len(chunk))
    return journal.ordered([it.id for it in items])


# --------------------------------------------------------------------------------------------
# outputs


def sft_records(records: Sequence[dict], prompt_template: str = DEFAULT_PROMPT) -> list[dict]:
    """The SFT dataset: kept comparisons, then verified solutions, per question in input order."""
    out = []
    for r in records:
        verified: list[str] = []
        for j, a in enumerate(r["attempts"]):
            comp = a.get("comparison") or {}
            if a["status"] == CORRECT:
                verified.append(a["solution"])
            if comp.get("status") == KEPT:
                target = format_comparison(Comparison(comp["analysis"], comp["first_wrong_step"], comp["corrected"]))
                out.append(
                    {
                        "id": f"{r['id']}:comparison:{j}",
                        "kind": "comparison",
                        "messages": [
                            {"role": "user", "content": self_check_prompt(r["question"], a["solution"])},
                            {"role": "assistant", "content": target},
                        ],
                    }
                )
                verified.append(comp["corrected"])
        seen: set[str] = set()
        for solution in verified:
            key = solution.strip()
            if key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "id": f"{r['id']}:verified:{len(seen) - 1}",
                    "kind": "verified",
                    "messages": question_messages(r["question"], prompt_template)
                    + [{"role": "assistant", "content": solution}],
                }
            )
    return out


def prompt_records(records: Sequence[dict], compare_unanswered: bool = True) -> list[dict]:
    """Comparison prompts for every wrong attempt (for an external comparer, or to inspect)."""
    return [
        {
            "id": f"{r['id']}:{j}",
            "item_id": r["id"],
            "attempt": j,
            "messages": [{"role": "user", "content": comparison_prompt(r["question"], r["reference"], a["solution"])}],
        }
        for r in records
        for j, a in enumerate(r["attempts"])
        if needs_comparison(a, compare_unanswered)
    ]


def count_outcomes(records: Sequence[dict], sft: Sequence[dict]) -> dict:
    attempts = Counter(a["status"] for r in records for a in r["attempts"])
    comparisons = Counter(
        (a.get("comparison") or {}).get("status") for r in records for a in r["attempts"] if a.get("comparison")
    )
    kinds = Counter(s["kind"] for s in sft)
    return {
        "questions": len(records),
        "attempts": sum(attempts.values()),
        "correct": attempts[CORRECT],
        "wrong": attempts["wrong"],
        "unanswered": attempts[UNANSWERED],
        "compared": sum(comparisons.values()),
        KEPT: comparisons[KEPT],
        REJECTED: comparisons[REJECTED],
        UNPARSED: comparisons[UNPARSED],
        FAILED: comparisons[FAILED],
        PENDING: comparisons[PENDING],
        "sft_comparison_records": kinds["comparison"],
        "sft_verified_records": kinds["verified"],
        "sft_records": len(sft),
    }


def write_build_outputs(
    out: str | Path, records: Sequence[dict], prompt_template: str = DEFAULT_PROMPT, compare_unanswered: bool = True
) -> dict:
    """Atomically write items.jsonl, sft.jsonl, prompts.jsonl and summary.json; return the counts."""
    out = Path(out)
    sft = sft_records(records, prompt_template)
    summary = count_outcomes(records, sft)
    atomic_write_jsonl(out / "items.jsonl", records)
    atomic_write_jsonl(out / "sft.jsonl", sft)
    atomic_write_jsonl(out / "prompts.jsonl", prompt_records(records, compare_unanswered))
    atomic_write_json(out / "summary.json", summary)
    return summary


def make_comparer(args: ComparerArgs, policy=None, load: Callable[[str], object] | None = None, seed: int = 0):
    """Build the comparer named by ``args`` (None for ``none``); ``policy`` serves ``self``."""
    from egt.math.compare import ModelComparer, OpenAIComparer, ReferenceComparer

    kind = args.comparer
    if kind not in COMPARERS:
        raise EgtError(f"field 'comparer': unknown comparer {kind!r} (one of {', '.join(COMPARERS)})")
    if kind == "none":
        return None
    if kind == "reference":
        return ReferenceComparer()
    if kind == "openai":
        if not args.comparer_url or not args.comparer_model_name:
            raise EgtError("--comparer openai needs --comparer_url and --comparer_model_name")
        return OpenAIComparer(
            args.comparer_url,
            args.comparer_model_name,
            api_key_env=args.comparer_api_key_env,
            timeout=args.comparer_timeout,
            max_retries=args.comparer_retries,
            concurrency=args.comparer_concurrency,
            max_tokens=args.comparer_max_new_tokens,
        )
    if kind == "self":
        if policy is None:
            raise EgtError("--comparer self needs --model (the policy); with --solutions pick model, openai or none")
        return ModelComparer(policy, "self", max_new_tokens=args.comparer_max_new_tokens, seed=seed)
    if not args.comparer_model:
        raise EgtError("--comparer model needs --comparer_model")
    if load is None:
        raise EgtError("--comparer model: no model loader given")
    return ModelComparer(
        load(args.comparer_model), args.comparer_model, max_new_tokens=args.comparer_max_new_tokens, seed=seed
    )
