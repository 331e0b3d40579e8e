"""Verifier agreement with the real GSM8K example model solutions (issue 7 target: ≥ 99%).

``../shared/data/gsm8k/example_model_solutions.jsonl`` holds 1,319 GSM8K test questions with four
real model solutions each and OpenAI's ``is_correct`` flag for every one (5,276 in all). We grade
each solution with ``egt.math.grade`` (math-verify on the extracted final answers) and count where
our verdict differs from the flag; unanswered solutions (no final-answer line) count as wrong,
as the flags do. Also: the number of math preference pairs the same file gives.

    .venv/bin/python bench/math_verifier.py [--data PATH] [--examples 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gsm8k" / "example_model_solutions.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT))
    parser.add_argument("--examples", type=int, default=10, help="disagreements to print")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"{args.data}: not found (the shared data folder is absent)", file=sys.stderr)
        return 2

    from egt.math.data import read_solutions
    from egt.math.evaluate import score_solution_sets, summarize
    from egt.math.pairs import math_pairs
    from egt.report import markdown_table

    started = time.time()
    sets = read_solutions(args.data)
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
    print(f"Verifier vs is_correct on {args.data}\n")
    print(markdown_table(["source", "solutions", "right (flag)", "right (ours)", "unanswered", "agreement"], rows))
    print(f"agreement: {fa['agree']}/{fa['flagged']} = {fa['rate']:.3%}  (target ≥ 99%)")
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
    return 0 if fa["rate"] >= 0.99 else 1


if __name__ == "__main__":
    sys.exit(main())
