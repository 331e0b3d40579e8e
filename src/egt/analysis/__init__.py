"""The entropy–accuracy analysis of a scored pool (EGT arXiv 2602.01884 §4.2; docs/methods.md §2).

``stats`` — Spearman ρ, accuracy by entropy bin, AUROC for flipped labels / hard items;
``plots`` — PNG plots; ``review`` — the self-contained HTML review page; ``analyze`` — ``egt
analyze`` end to end; ``rq1`` — the demo's step: analyse and curate the lab's scored pool (the
scoring run in front of it: :mod:`egt.pipelines.rq1`).
"""

from egt.analysis.analyze import analyze_scores
from egt.analysis.rq1 import rq1_summary_rows
from egt.analysis.stats import accuracy_by_bin, analyze_records, auroc, spearman

__all__ = ["accuracy_by_bin", "analyze_records", "analyze_scores", "auroc", "rq1_summary_rows", "spearman"]
