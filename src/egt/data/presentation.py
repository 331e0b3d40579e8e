"""Which response is shown first: the presentation orders, one seeded coin, one validation.

Orders (docs/methods.md §8): ``stored`` shows the responses as stored — never enough on its own
for a benchmark that stores the winner first; ``random`` swaps each item by a seeded coin;
``both`` shows every item in both orders (two presentations per item).

Every seeded draw EGT makes from a name — an item's swap coin, a rollout's generator seed, the
``random`` curation baseline's order, a chunk's sampling seed — is a blake2b hash of
``"{seed}:{part}:{part}…"`` (:func:`stable_hash`): independent of ``PYTHONHASHSEED``, of the
order items are visited in and of what ran before, so a resumed or sharded run draws what an
uninterrupted one does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from egt.errors import EgtError

__all__ = [
    "ORDERS",
    "check_order",
    "derived_seed",
    "presentations",
    "presented_swapped",
    "rollout_seed",
    "seeded_coin",
    "stable_hash",
    "stable_unit",
]

ORDERS = ("stored", "random", "both")


def stable_hash(seed: int, *parts: object) -> int:
    """A 64-bit number from a seed and a key (``blake2b("{seed}:{part}:…")``)."""
    text = ":".join([str(seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def stable_unit(key: str, seed: int) -> float:
    """A deterministic number in [0, 1) from a string and a seed."""
    return stable_hash(seed, key) / 2**64


def seeded_coin(seed: int, *parts: object) -> bool:
    """The one seeded coin: True (swap) for about half of all keys, the same for the same key and seed."""
    return stable_hash(seed, *parts) < 2**63


def derived_seed(seed: int, *parts: object) -> int:
    """A generator seed (63 bits, what ``torch.Generator.manual_seed`` takes) for one named draw."""
    return stable_hash(seed, *parts) >> 1


def check_order(order: str, name: str = "order", allowed: Sequence[str] = ORDERS) -> str:
    """``order`` if it is one of ``allowed``, else the one error message for a bad order."""
    if order not in allowed:
        raise EgtError(f"--{name}: unknown presentation order {order!r} (one of {' | '.join(allowed)})")
    return order


def presentations(pairs: Sequence, order: str, seed: int = 0, name: str = "order") -> list[tuple[int, bool]]:
    """``(pair_index, swapped)`` for every presentation to make; ``pairs`` need an ``id``.

    ``random`` swaps item ``i`` when ``seeded_coin(seed, pairs[i].id)``; ``both`` lists the
    stored order before the swapped one for each item."""
    check_order(order, name)
    if order == "stored":
        return [(i, False) for i in range(len(pairs))]
    if order == "random":
        return [(i, seeded_coin(seed, p.id)) for i, p in enumerate(pairs)]
    return [(i, s) for i in range(len(pairs)) for s in (False, True)]


def rollout_seed(seed: int, item_id: str, rollout: int) -> int:
    """The generator seed of one rollout: a hash of (seed, item id, rollout index), 63 bits."""
    return derived_seed(seed, item_id, rollout)


def presented_swapped(seed: int, item_id: str, rollout: int, order: str) -> bool:
    """Whether rollout k of an item shows the responses swapped (``order=random``: a seeded coin;
    ``order=both``: odd rollouts swapped, so an even K sees each order K/2 times)."""
    if order == "stored":
        return False
    if order == "both":
        return rollout % 2 == 1
    return seeded_coin(seed, "order", item_id, rollout)
