"""GSM8K-format evaluation: grade solutions, per-item records, accuracy and pass@k.

Scoring rule (docs/methods.md §7): a solution is correct when its marked final answer equals the
reference's according to :func:`egt.math.answers.answers_match`. A solution without a marked
final answer is *unanswered*: counted on its own line of the report and scored as wrong.

``accuracy`` is the mean over questions of ``c / n`` (the unbiased pass@1 estimate; with one
greedy sample it is plain accuracy); ``pass@k`` uses the unbiased estimator of
:mod:`egt.math.metrics` for every requested ``k ≤ n``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from egt.math.answers import CORRECT, UNANSWERED, grade
from egt.math.data import MathItem, SolutionSet
from egt.math.journal import Journal, chunk_seed
from egt.math.metrics import mean_pass_at_k

if TYPE_CHECKING:
    from egt.math.generate import SamplingArgs
    from egt.models.load import LoadedModel


def grade_item(
    item: MathItem,
    solutions: Sequence[str],
    sources: Sequence[str] | None = None,
    flags: Sequence[bool | None] | None = None,
) -> dict:
    """The per-item record: every solution with its extracted answer and status."""
    samples = []
    for j, solution in enumerate(solutions):
        g = grade(solution, item.reference)
        sample = {"solution": solution, "answer": g.answer, "status": g.status}
        if sources is not None:
            sample["source"] = sources[j]
        if flags is not None and flags[j] is not None:
            sample["flag"] = flags[j]
        samples.append(sample)
    return {
        "id": item.id,
        "question": item.question,
        "gold": item.gold,
        "samples": samples,
        "n": len(samples),
        "n_correct": sum(s["status"] == CORRECT for s in samples),
        "n_unanswered": sum(s["status"] == UNANSWERED for s in samples),
    }


def score_solution_sets(sets: Sequence[SolutionSet]) -> list[dict]:
    """Grade existing solutions (no model)."""
    return [grade_item(s.item, s.solutions, s.sources, s.flags) for s in sets]


def evaluate_model(
    loaded: LoadedModel,
    items: Sequence[MathItem],
    sampling: SamplingArgs,
    journal: Journal,
    on_chunk: Callable[[int], None] | None = None,
) -> list[dict]:
    """Sample, grade and journal every item in chunks; finished chunks of a resumed run are skipped."""
    from egt.math.generate import sample_solutions

    size = sampling.batch_size
    for c, start in enumerate(range(0, len(items), size)):
        chunk = items[start : start + size]
        todo = [it for it in chunk if it.id not in journal]
        if todo:  # a partly finished chunk is regenerated whole so its samples are the same
            samples = sample_solutions(loaded, [it.question for it in chunk], sampling, chunk_seed(sampling.seed, c))
            journal.append(grade_item(it, s) for it, s in zip(chunk, samples, strict=True) if it.id not in journal)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return journal.ordered([it.id for it in items])


def summarize(records: Sequence[dict], ks: Sequence[int] = (1,)) -> dict:
    """Accuracy, pass@k, unanswered counts; per source and agreement with stored flags when present."""
    n_samples = sum(r["n"] for r in records)
    counts = [(r["n"], r["n_correct"]) for r in records]
    report: dict = {
        "questions": len(records),
        "samples": n_samples,
        "accuracy": sum(c / n for n, c in counts if n) / max(1, sum(1 for n, _ in counts if n)),
        "first_sample_accuracy": sum(r["samples"][0]["status"] == CORRECT for r in records if r["n"])
        / max(1, len(records)),
        "correct": sum(r["n_correct"] for r in records),
        "unanswered": sum(r["n_unanswered"] for r in records),
        "unanswered_rate": sum(r["n_unanswered"] for r in records) / max(1, n_samples),
        "pass_at_k": {str(k): mean_pass_at_k(counts, k) for k in ks if any(n >= k for n, _ in counts)},
    }
    by_source: dict[str, Counter] = {}
    flagged = agree = 0
    disagreements = []
    for r in records:
        for s in r["samples"]:
            if "source" in s:
                tally = by_source.setdefault(s["source"], Counter())
                tally["n"] += 1
                tally[s["status"]] += 1
            if "flag" in s:
                flagged += 1
                ok = (s["status"] == CORRECT) == s["flag"]
                agree += ok
                if not ok:
                    disagreements.append(
                        {
                            "id": r["id"],
                            "source": s.get("source"),
                            "flag": s["flag"],
                            "status": s["status"],
                            "answer": s["answer"],
                            "gold": r["gold"],
                        }
                    )
    if any(not src.isdigit() for src in by_source):  # named sources (models), not sample indices
        report["by_source"] = {
            src: {"n": t["n"], "accuracy": t[CORRECT] / t["n"], "unanswered": t[UNANSWERED]}
            for src, t in by_source.items()
        }
    if flagged:
        report["flag_agreement"] = {
            "flagged": flagged,
            "agree": agree,
            "rate": agree / flagged,
            "disagreements": len(disagreements),
            "examples": disagreements[:10],
        }
    return report
