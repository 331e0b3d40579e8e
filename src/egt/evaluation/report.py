"""Write an evaluation's outputs atomically: report.json, report.md, predictions.jsonl."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from egt.data.atomic import atomic_write_json, atomic_write_jsonl, atomic_write_text
from egt.evaluation.runner import Prediction
from egt.report import markdown_cell, markdown_table


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def eval_markdown(report: dict) -> str:
    m = report["metrics"]
    head = (
        f"**{markdown_cell(report['judge'])}** on {markdown_cell(report.get('data', '?'))} — "
        f"{report['n_items']} items, order `{report['order']}`\n\n"
    )
    rows = [
        [name, _pct(v) if "rate" in name or "accuracy" in name or "consistency" in name else v] for name, v in m.items()
    ]
    rows += [["ties", report["ties"]], ["parse failures", report["parse_failures"]]]
    text = head + markdown_table(["metric", "value (%)"], rows)
    if report.get("categories"):
        text += "\n" + markdown_table(
            ["category", "n", "accuracy (%)"],
            [[c, v["n"], _pct(v["accuracy"])] for c, v in report["categories"].items()],
        )
    return text


def write_eval_outputs(out: Path, report: dict, predictions: Sequence[Prediction], markdown: str | None = None) -> str:
    """Write the three files; ``markdown`` replaces the default layout (benchmarks bring their own)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(out / "predictions.jsonl", (p.to_json() for p in predictions))
    markdown = eval_markdown(report) if markdown is None else markdown
    atomic_write_text(out / "report.md", markdown)
    atomic_write_json(out / "report.json", report)
    return markdown
