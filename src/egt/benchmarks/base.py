"""The :class:`Benchmark` record: how to load a release, how to score it, how to show it.

An adapter module defines ``load(path, images_dir)``, ``score_view(predictions, pairs, tie_policy)``
(one presentation order's report blocks) and its constants ``NAME``, ``TIE_POLICY``, ``RULE``,
``REPEATED_IDS_RULE`` (and ``CATEGORIES``, ``RELEASE_COUNTS`` where the paper has them);
:func:`adapter_benchmark` turns them into its one ``BENCHMARK``, whose ``aggregate`` combines the
orders (:func:`egt.benchmarks.common.combine_views`). ``tie_policy`` is how a tie or an
unparsable verdict scores (``wrong`` = 0, ``half`` = 0.5); each benchmark's default follows its own
official script and ``rule`` says which, in words printed in every report.

What a repeated id means is each benchmark's own, so each states it (``repeated_ids``):

- ``refuse``: a repeated id is an error (EGT's own pairs format, RewardBench: their ids are unique);
- ``keep``: every row is an item; the rows of a repeated id get the item keys ``{id}#0``,
  ``{id}#1``… in file order, the release's id kept as ``meta["original_id"]`` (VL-RewardBench,
  Multimodal RewardBench, the generic format);
- ``group``: the rows of one id are the pairs of one question (MM-RLHF-RewardBench's Acc+): every
  row gets the key ``{id}#k`` and keeps the question's id.

``repeated_ids_rule`` says why, in words printed with the release summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egt.benchmarks.common import ViewScorer, combine_views
from egt.evaluation.runner import Prediction
from egt.records import PreferencePair

Loader = Callable[[str | Path, str | Path | None], list[PreferencePair]]
Aggregator = Callable[[Sequence[Prediction], Sequence[PreferencePair], str], dict]


@dataclass(frozen=True)
class Benchmark:
    """One reward benchmark: load → judge (the harness) → aggregate → report."""

    name: str  # registry key, the value of ``egt eval --benchmark``
    title: str  # as the papers write it
    load: Loader
    aggregate: Aggregator
    tie_policy: str  # the official default, see ``rule``
    rule: str  # how ties and parse failures score, and where that rule comes from
    headline: str  # the headline cell (docs/methods.md §8), a format string over ``metrics`` (percent)
    headline_metrics: tuple[str, ...]  # shown per presentation order
    columns: tuple[tuple[str, str], ...] = ()  # the paper's table: (label, "metrics.x" | "categories.c")
    category_fields: tuple[str, ...] = ("accuracy",)  # per-category fields shown as percentages
    extra_tables: tuple[str, ...] = ()  # further report blocks shown as tables (e.g. "sources")
    notes: tuple[str, ...] = field(default_factory=tuple)  # printed under the tables
    repeated_ids: str = "refuse"  # refuse | keep | group (see the module docstring)
    repeated_ids_rule: str = ""  # why, in words
    release_counts: tuple[tuple[str, int], ...] = ()  # items per category in the full public release
    categories: tuple[str, ...] = ()  # the paper's order of its categories (others follow, sorted)

    def scoring_rule(self, tie_policy: str) -> str:
        if tie_policy == self.tie_policy:
            return f"ties and parse failures score {_policy_words(tie_policy)} (the benchmark's rule: {self.rule})"
        return (
            f"ties and parse failures score {_policy_words(tie_policy)} (--tie_policy {tie_policy}; "
            f"the benchmark's own rule would score {_policy_words(self.tie_policy)}: {self.rule})"
        )


REPEATED_ID_RULES = ("refuse", "keep", "group")


def _policy_words(policy: str) -> str:
    return {"wrong": "0 (wrong)", "half": "0.5 (half)"}.get(policy, policy)


def view_aggregator(score_view: ViewScorer, default_tie_policy: str) -> Aggregator:
    """``aggregate(predictions, pairs, tie_policy=default_tie_policy)``: ``score_view`` over each
    presentation order judged, combined (:func:`egt.benchmarks.common.combine_views`)."""

    def aggregate(
        predictions: Sequence[Prediction], pairs: Sequence[PreferencePair], tie_policy: str = default_tie_policy
    ) -> dict:
        return combine_views(predictions, pairs, tie_policy, score_view)

    return aggregate


def adapter_benchmark(names: Mapping[str, Any], **shown: Any) -> Benchmark:
    """An adapter module's ``BENCHMARK`` from its own names (it passes ``globals()``): ``NAME``,
    ``TIE_POLICY``, ``RULE``, ``REPEATED_IDS_RULE``, ``load``, ``score_view`` and, where it has them,
    ``CATEGORIES`` and ``RELEASE_COUNTS``; ``shown`` gives the rest (``title``, ``headline``,
    ``columns``…, ``repeated_ids``) and may replace ``load``."""
    optional = {key.lower(): names[key] for key in ("CATEGORIES", "RELEASE_COUNTS") if key in names}
    return Benchmark(
        **{"name": names["NAME"], "load": names["load"], **optional, **shown},
        aggregate=view_aggregator(names["score_view"], names["TIE_POLICY"]),
        tie_policy=names["TIE_POLICY"],
        rule=names["RULE"],
        repeated_ids_rule=names["REPEATED_IDS_RULE"],
    )
