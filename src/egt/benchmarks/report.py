"""A benchmark run as markdown, in the layout the papers use.

First the headline cell of docs/methods.md §8 (``| model | VL-RewardBench |`` → ``72.89 overall / 70.12
macro``), then the paper's own table (categories and headline metrics as columns, in percent),
then what makes the number auditable: each presentation order and their mean, order consistency,
ties and parse failures with the rule that scored them, what was read from the release (items per
category against the full release, repeated ids and their item keys, skipped rows), the images
note, every category.
"""

from __future__ import annotations

from typing import Any

from egt.benchmarks.base import Benchmark
from egt.benchmarks.common import release_lines
from egt.report import markdown_cell, markdown_table


def pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def lookup(report: dict, path: str) -> float | None:
    """``metrics.overall`` → the metric; ``categories.general`` → that category's accuracy."""
    block, _, key = path.partition(".")
    value = report.get(block, {}).get(key)
    return value.get("accuracy") if isinstance(value, dict) else value


def headline_cell(report: dict, bench: Benchmark) -> str:
    return bench.headline.format(
        **{k: pct(v) for k, v in report["metrics"].items() if isinstance(v, (int, float)) or v is None}
    )


def _order_section(report: dict, bench: Benchmark) -> str:
    m = report["metrics"]
    names = [n for n in bench.headline_metrics if n in m]
    if f"{names[0]}_stored_order" in m:
        rows = [
            [label] + [pct(m.get(f"{n}_{suffix}")) for n in names]
            for label, suffix in (("stored", "stored_order"), ("swapped", "swapped_order"))
        ]
        rows.append(["mean"] + [pct(m.get(n)) for n in names])
        text = markdown_table(["order"] + [f"{n} (%)" for n in names], rows)
        consistency = pct(m.get("order_consistency"))
        return text + f"\norder consistency: {consistency}% of items get the same verdict in both orders\n"
    if report["order"] == "random":
        return f"order: random (seed {report.get('seed')}), one judgement per item\n"
    return f"order: `{report['order']}`, one judgement per item\n"


def _category_table(block: dict, fields: tuple[str, ...], title: str) -> str:
    columns = [title, "n"] + (["questions"] if any("n_questions" in v for v in block.values()) else [])
    columns += [f"{f.replace('_', ' ')} (%)" for f in fields]
    rows = []
    for name, v in block.items():
        row = [name, v.get("n")] + ([v.get("n_questions")] if "questions" in columns else [])
        rows.append(row + [pct(v.get(f)) for f in fields])
    return markdown_table(columns, rows)


def notes(report: dict) -> list[str]:
    """Lines on voting, images and skipped items, shared with the plain-pairs report."""
    out = []
    if report.get("votes", 1) > 1:
        out.append(
            f"voting@{report['votes']}: majority of {report['votes']} samples at temperature "
            f"{report.get('vote_temperature')}"
        )
    images = report.get("images") or {}
    if images.get("note"):
        out.append(f"images: {images['note']}")
    if images.get("skipped_by_category"):
        out.append(
            "skipped by category: "
            + ", ".join(f"{markdown_cell(c)} {n}" for c, n in images["skipped_by_category"].items())
        )
    return out


def benchmark_markdown(report: dict, bench: Benchmark) -> str:
    judge = report["judge"]
    parts = [
        f"**{markdown_cell(judge)}** on {bench.title} ({markdown_cell(report.get('data', '?'))}) — "
        f"{report['n_items']} items, "
        f"order `{report['order']}`\n",
        markdown_table(["model", bench.title], [[judge, headline_cell(report, bench)]]),
    ]
    if bench.columns:
        parts.append(
            markdown_table(
                ["model"] + [label for label, _ in bench.columns],
                [[judge] + [pct(lookup(report, path)) for _, path in bench.columns]],
            )
        )
    parts.append(_order_section(report, bench))
    m = report["metrics"]
    counts = (
        f"ties: {report['ties']}, parse failures: {report['parse_failures']} "
        f"(tie rate {pct(m.get('tie_rate'))}%, format-failure rate {pct(m.get('format_failure_rate'))}%) — "
        f"{report.get('scoring_rule', '')}"
    )
    if m.get("accuracy_lenient_parse") is not None:
        lenient = pct(m["accuracy_lenient_parse"])
        counts += f"; with a lenient parse of the failures (not counted) accuracy would be {lenient}%"
    parts.append(counts + "\n")
    if report.get("release"):
        parts.append("\n".join(f"- {line}" for line in release_lines(report["release"])) + "\n")
    extra = notes(report)
    if extra:
        parts.append("\n".join(f"- {line}" for line in extra) + "\n")
    if report.get("categories"):
        parts.append(_category_table(report["categories"], bench.category_fields, "category"))
    for name in bench.extra_tables:
        if report.get(name):
            parts.append(_category_table(report[name], ("accuracy",), name.rstrip("s")))
    parts += [f"{line}\n" for line in bench.notes]
    return "\n".join(parts)
