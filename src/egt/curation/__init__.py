"""Entropy-guided curation (EGT arXiv 2602.01884 §3.3; docs/methods.md §3): selectors and the manifest.

``egt curate`` orders a scored pool with a selector (``entropy`` by answer / sentence / mixed /
vote / peak — items with format failures always after those without — or the paper's baselines
``random`` and ``accuracy``), keeps the first N or fraction q, and writes
``manifest.jsonl`` + the selected dataset. The curriculum sampler reads the manifest.
"""

from egt.curation.manifest import check_same_ids, curate_pool, curriculum_order, read_manifest
from egt.curation.selectors import (
    ENTROPY_KINDS,
    SELECTORS,
    item_scores,
    keep_count,
    order_by_accuracy,
    order_by_entropy,
    order_random,
    select,
)

__all__ = [
    "ENTROPY_KINDS",
    "SELECTORS",
    "check_same_ids",
    "curate_pool",
    "curriculum_order",
    "item_scores",
    "keep_count",
    "order_by_accuracy",
    "order_by_entropy",
    "order_random",
    "read_manifest",
    "select",
]
