"""Selectors over a scored pool (EGT arXiv 2602.01884 §3.3; docs/methods.md §3): who is kept, in what order.

Every selector returns a full *ordering* of the pool; the first ``n`` are kept. Orderings:

* ``entropy`` (EGT) — by ascending key ``(format_failures, scores[by] missing, scores[by], …, id)``
  with ``by`` ∈ answer | sentence | mixed | vote | peak (:data:`ENTROPY_KINDS`):

  - an item with format failures (rollouts the strict parser rejects) ranks after every item
    without, fewer failures first, whatever its entropy: its entropies are means over the
    rollouts that parsed — possibly one — so failed rollouts must never make it look certain
    (issue 14; :mod:`egt.pipelines.scoring.run`);
  - an item without that entropy (no well-formed verdict / no ``<think>`` in any rollout) goes
    after those with one, as the most uncertain (the rule of ``egt.entropy.percentile_rank``);
  - the vote entropy of K verdicts takes only a handful of values, so its ties are broken by
    sentence entropy (ascending, missing last) before the id; every other kind's ties by id.
* ``random`` (paper baseline) — a seeded permutation: ascending ``stable_unit(id, seed)``.
* ``accuracy`` (paper baseline) — descending rollout accuracy. With K rollouts accuracy takes
  only K + 1 values, so ties are large: they are broken in seeded random order [our choice — an
  entropy tie-break would make the baseline partly the method it is compared with].
* ``pass_rate`` (the offline form of DAPO's dynamic sampling, arXiv 2503.14476; EasyR1's
  ``online_filtering`` bounds 0.01 / 0.99) — the items whose pass rate (rollout accuracy: the share
  of the scored rollouts that agree with the label) lies *strictly* inside ``pass_band = (low,
  high)``, by default ``(0, 1)``: the learnable items. An item every rollout gets right (or wrong)
  gives GRPO a group of equal accuracies, i.e. nothing to learn from. Within the band the entropy
  selector's key orders them (the curriculum's order); after them the items at or below ``low``,
  then at or above ``high``, then those without an accuracy, each part in the entropy order too.
  All in-band items are kept unless ``n`` / ``fraction`` asks for fewer (the lowest-entropy ones).

All four are deterministic: the same scores and seed give the same ordering.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from egt.data.presentation import stable_unit
from egt.entropy import mixed_entropy
from egt.errors import EgtError

SELECTORS = ("entropy", "random", "accuracy", "pass_rate")
DEFAULT_PASS_BAND = (0.0, 1.0)
ENTROPY_KINDS = ("answer", "sentence", "mixed", "vote", "peak")
"""The entropies a selection (and the curriculum) can be ordered by; ``scores[kind]`` in the manifest."""
TIE_BREAK = {"vote": "sentence"}
"""Kinds whose ties are broken by another entropy before the id: the vote entropy is coarse."""


def item_scores(records: Sequence[dict], lam: float = 0.5) -> dict[str, dict]:
    """``{id: {"answer", "sentence", "mixed", "vote", "peak", "accuracy", "format_failures"}}``.

    From a scores file's records. ``mixed`` is recomputed over the given pool with ``lam``
    (docs/methods.md §2: 0.5), so it always matches the pool being curated. ``peak`` is None for files
    scored before it existed; ``format_failures`` falls back to the None verdicts.
    """
    from egt.entropy.score_store import format_failures

    mixed = mixed_entropy([r.get("answer_entropy") for r in records], [r.get("sentence_entropy") for r in records], lam)
    return {
        r["id"]: {
            "answer": r.get("answer_entropy"),
            "sentence": r.get("sentence_entropy"),
            "mixed": round(float(m), 6),
            "vote": r.get("vote_entropy"),
            "peak": r.get("peak_entropy"),
            "accuracy": r.get("accuracy"),
            "format_failures": format_failures(r),
        }
        for r, m in zip(records, mixed.tolist(), strict=True)
    }


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ascending(value) -> tuple[bool, float]:
    """Sort key of one entropy: present values ascending, then missing ones (most uncertain)."""
    return (True, 0.0) if _missing(value) else (False, float(value))


def check_kind(by: str) -> None:
    """Refuse an entropy kind outside :data:`ENTROPY_KINDS` (a user error: ``--by``)."""
    if by not in ENTROPY_KINDS:
        raise EgtError(f"--by: unknown entropy {by!r} (one of {', '.join(ENTROPY_KINDS)})")


def entropy_key(scores: dict, by: str, item_id: str) -> tuple:
    """The entropy selector's sort key of one item (module doc): least certain sorts last.

    ``(format_failures, missing, scores[by], [missing, scores[tie-break]], id)`` — the tie-break
    entropy only for the kinds in :data:`TIE_BREAK` (vote → sentence). Scores without
    ``format_failures`` (older manifests) count 0.
    """
    key = (int(scores.get("format_failures") or 0), *_ascending(scores.get(by)))
    if by in TIE_BREAK:
        key += _ascending(scores.get(TIE_BREAK[by]))
    return (*key, item_id)


def order_by_entropy(scores: dict[str, dict], by: str) -> list[str]:
    """Ids least → most uncertain by ``by``: :func:`entropy_key` ascending (module doc)."""
    check_kind(by)
    return sorted(scores, key=lambda i: entropy_key(scores[i], by, i))


def order_random(scores: dict[str, dict], seed: int) -> list[str]:
    """A seeded permutation of the ids (independent of the input order)."""
    return sorted(scores, key=lambda i: (stable_unit(i, seed), i))


def order_by_accuracy(scores: dict[str, dict], seed: int) -> list[str]:
    """Ids by descending rollout accuracy; ties in seeded random order; missing accuracy last."""

    def key(i: str):
        acc = scores[i]["accuracy"]
        return (_missing(acc), 0.0 if _missing(acc) else -acc, stable_unit(i, seed), i)

    return sorted(scores, key=key)


def parse_pass_band(text: str) -> tuple[float, float]:
    """``"LOW,HIGH"`` → ``(low, high)`` with ``0 ≤ low < high ≤ 1`` (a user error names ``--pass_band``)."""
    try:
        low, high = (float(x) for x in str(text).split(","))
    except ValueError:
        raise EgtError(f"--pass_band: expected LOW,HIGH (e.g. 0,1), got {text!r}") from None
    if not 0.0 <= low < high <= 1.0:
        raise EgtError(f"--pass_band: need 0 <= LOW < HIGH <= 1, got {low},{high}")
    return low, high


def pass_band_side(accuracy, band: tuple[float, float]) -> str:
    """Where a pass rate lies: ``inside`` (strictly), ``below`` (≤ low), ``above`` (≥ high) or ``missing``."""
    if _missing(accuracy):
        return "missing"
    low, high = band
    return "below" if accuracy <= low else "above" if accuracy >= high else "inside"


def order_by_pass_rate(scores: dict[str, dict], by: str, band: tuple[float, float]) -> list[str]:
    """In-band ids by :func:`entropy_key`, then below, above and missing ones, each by the same key."""
    check_kind(by)
    sides = ("inside", "below", "above", "missing")
    return sorted(
        scores, key=lambda i: (sides.index(pass_band_side(scores[i]["accuracy"], band)), entropy_key(scores[i], by, i))
    )


def keep_count(pool: int, n: int = 0, fraction: float = 0.0) -> int:
    """How many to keep: ``n``, or ``round(fraction · pool)`` (half up, at least 1)."""
    if (n > 0) == (fraction > 0):
        raise EgtError("give exactly one of --n N (N ≥ 1) or --fraction q (0 < q ≤ 1)")
    if n < 0 or fraction < 0:
        raise EgtError("--n and --fraction must be positive")
    if n:
        if n > pool:
            raise EgtError(f"--n {n}: the pool has only {pool} items")
        return n
    if fraction > 1:
        raise EgtError(f"--fraction {fraction}: must be in (0, 1]")
    return max(1, int(math.floor(fraction * pool + 0.5)))


def selector_ordering(
    scores: dict[str, dict], selector: str, by: str, seed: int, band: tuple[float, float] = DEFAULT_PASS_BAND
) -> list[str]:
    if selector == "pass_rate":
        return order_by_pass_rate(scores, by, band)
    if selector == "entropy":
        return order_by_entropy(scores, by)
    if selector == "random":
        return order_random(scores, seed)
    if selector == "accuracy":
        return order_by_accuracy(scores, seed)
    raise EgtError(f"--selector: unknown selector {selector!r} (one of {', '.join(SELECTORS)})")


def _fmt(x) -> str:
    return "none" if _missing(x) else f"{x:.4g}"


def select(
    scores: dict[str, dict],
    selector: str,
    by: str = "answer",
    n: int = 0,
    fraction: float = 0.0,
    seed: int = 0,
    pass_band: tuple[float, float] = DEFAULT_PASS_BAND,
) -> list[dict]:
    """Manifest rows in the selector's order: ``{"id", "scores", "kept", "rank", "selector", "by", "reason"}``.

    ``rank`` is the position in the ordering (0 = first kept); the first ``keep_count`` are kept.
    ``by`` names the entropy a curriculum sorts the kept items by (the entropy selector's key —
    :func:`egt.curation.manifest.curriculum_order`); for ``random`` and ``accuracy`` it only says
    which entropy that is. ``reason`` says why in words, and for the entropy selector says when an
    item was put behind the clean ones for its format failures. ``pass_band`` is the pass-rate
    selector's open band; it keeps every in-band item unless ``n`` / ``fraction`` asks for fewer.
    """
    check_kind(by)
    order = selector_ordering(scores, selector, by, seed, pass_band)
    total = len(order)
    if selector == "pass_rate":
        inside = sum(pass_band_side(scores[i]["accuracy"], pass_band) == "inside" for i in order)
        low, high = pass_band
        if not inside:
            raise EgtError(f"--pass_band {low:g},{high:g}: no item's pass rate is strictly inside it")
        keep = keep_count(total, n, fraction) if (n or fraction) else inside
        if keep > inside:
            raise EgtError(f"asked to keep {keep} items, but only {inside} have a pass rate inside ({low:g}, {high:g})")
    else:
        keep = keep_count(total, n, fraction)
    name = f"entropy:{by}" if selector == "entropy" else selector
    rows = []
    for rank, item in enumerate(order):
        kept = rank < keep
        s = scores[item]
        if selector == "entropy":
            value, failures = s.get(by), int(s.get("format_failures") or 0)
            if failures:
                why = (
                    f"{failures} rollout(s) failed the strict format, so it ranks after every item without "
                    f"format failures as less certain ({by} entropy {_fmt(value)}): #{rank + 1} of {total}"
                )
            elif _missing(value):
                why = (
                    f"no {by} entropy (no parsable block in any rollout): #{rank + 1} of {total}, "
                    "missing values rank last as the most uncertain"
                )
            else:
                why = f"{by} entropy {_fmt(value)} is #{rank + 1} lowest of {total}"
            if by in TIE_BREAK:
                why += f" (ties broken by {TIE_BREAK[by]} entropy {_fmt(s.get(TIE_BREAK[by]))})"
            why += f"; the lowest {keep} are kept"
        elif selector == "pass_rate":
            side, low, high = pass_band_side(s["accuracy"], pass_band), *pass_band
            why = {
                "inside": f"pass rate {_fmt(s['accuracy'])} is inside ({low:g}, {high:g})",
                "below": f"pass rate {_fmt(s['accuracy'])} <= {low:g}: (nearly) every rollout disagrees with the label",
                "above": f"pass rate {_fmt(s['accuracy'])} >= {high:g}: (nearly) every rollout agrees with the label",
                "missing": "no pass rate (no scored rollouts)",
            }[side]
            why += f"; #{rank + 1} of {total} by {by} entropy within its part; the first {keep} are kept"
        elif selector == "random":
            why = f"seeded random order (seed {seed}): #{rank + 1} of {total}; the first {keep} are kept"
        else:
            why = (
                f"rollout accuracy {_fmt(s['accuracy'])} is #{rank + 1} highest of {total} "
                f"(ties in seeded random order, seed {seed}); the top {keep} are kept"
            )
        rows.append(
            {
                "id": item,
                "scores": dict(s),
                "kept": kept,
                "rank": rank,
                "selector": name,
                "by": by,
                "reason": ("kept: " if kept else "dropped: ") + why,
            }
        )
    return rows
