"""Verifier agreement with the real GSM8K example model solutions (issue 7 target: ≥ 99%).

``../shared/data/gsm8k/example_model_solutions.jsonl`` holds 1,319 GSM8K test questions with four
real model solutions each and OpenAI's ``is_correct`` flag for every one (5,276 in all). We grade
each solution with ``egt.math.grade`` (math-verify on the extracted final answers) and count where
our verdict differs from the flag; unanswered solutions (no final-answer line) count as wrong,
as the flags do. Also: the number of math preference pairs the same file gives.

    .venv/bin/python bench/math_verifier.py [--data PATH] [--examples 10] [--quick]

``--quick`` grades the first 200 questions only. Without the shared data folder the script says so
and writes ``"skipped"`` in its results.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import harness

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gsm8k" / "example_model_solutions.jsonl"


TARGET = 0.99


def main() -> int:
    parser = harness.make_parser(__doc__, repeats=1)
    parser.add_argument("--data", default=str(DEFAULT))
    parser.add_argument("--examples", type=int, default=10, help="disagreements to print")
    parser.add_argument("--questions", type=int, default=0, help="grade the first N questions only (0: all)")
    args = harness.parse(parser, quick={"questions": 200})
    if not Path(args.data).is_file():
        print(f"{args.data}: not found (the shared data folder is absent); skipped")
        return harness.finish(__file__, args, {"skipped": f"{args.data} not found"})

    from egt.math.data import read_solutions
    from egt.math.evaluate import score_solution_sets, summarize
    from egt.math.pairs import math_pairs

    started = time.time()
    sets = read_solutions(args.data, limit=args.questions)
    records = score_solution_sets(sets)
    report = summarize(records)
    seconds = time.time() - started
    fa = report["flag_agreement"]

    by_source: dict[str, Counter] = {}
    for r in records:
        for s in r["samples"]:
            t = by_source.setdefault(s["source"], Counter())
            t["n"] += 1
            t["agree"] += (s["status"] == "correct") == s["flag"]
            t["flag_right"] += s["flag"]
            t["ours_right"] += s["status"] == "correct"
            t["unanswered"] += s["status"] == "unanswered"
    rows = [
        [src, t["n"], t["flag_right"], t["ours_right"], t["unanswered"], f"{t['agree'] / t['n']:.2%}"]
        for src, t in by_source.items()
    ]
    rows.append(
        [
            "all",
            fa["flagged"],
            sum(t["flag_right"] for t in by_source.values()),
            report["correct"],
            report["unanswered"],
            f"{fa['rate']:.2%}",
        ]
    )
    harness.print_table(
        f"Verifier vs is_correct on {args.data} ({len(sets)} questions)",
        ["source", "solutions", "right (flag)", "right (ours)", "unanswered", "agreement"],
        rows,
    )
    print(f"agreement: {fa['agree']}/{fa['flagged']} = {fa['rate']:.3%}")
    print(f"disagreements: {fa['disagreements']}")
    for ex in fa["examples"][: args.examples]:
        print(
            f"  id={ex['id']} source={ex['source']} flag={ex['flag']} ours={ex['status']} "
            f"answer={ex['answer']!r} gold={ex['gold']!r}"
        )
    print(f"graded {fa['flagged']} solutions in {seconds:.1f}s")

    # where exact string comparison of the final answers would have judged differently
    naive = [
        (r["id"], s["source"], s["answer"], r["gold"], s["status"])
        for r in records
        for s in r["samples"]
        if s["answer"] is not None and (s["answer"].strip() == r["gold"].strip()) != (s["status"] == "correct")
    ]
    print(f"\nsolutions where exact string match of the answers would disagree with math-verify: {len(naive)}")
    for rid, src, ans, gold, status in naive[: args.examples]:
        print(f"  id={rid} source={src} answer={ans!r} gold={gold!r} → {status}")

    pairs, counts = math_pairs(sets)
    print(
        f"\nmath preference pairs: {counts['pairs']} from {counts['questions_with_both']} of {counts['questions']} "
        f"questions with both a right and a wrong solution (every distinct right × wrong combination; "
        f"{counts['questions_with_both']} with one pair per question)"
    )
    results = {
        "questions": len(sets),
        "flag_agreement": {key: fa[key] for key in ("agree", "flagged", "rate", "disagreements")},
        "by_source": {src: dict(t) for src, t in by_source.items()},
        "string_match_disagreements": len(naive),
        "pairs": counts,
        "seconds": seconds,
    }
    checks = [harness.Check("agreement with is_correct", fa["rate"], TARGET, ">=")]
    return harness.finish(__file__, args, results, checks)


if __name__ == "__main__":
    sys.exit(main())
