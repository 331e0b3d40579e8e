"""egt.data.presentation: one seeded coin (deterministic, balanced), one validation message for every order option."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from egt.data.presentation import (
    ORDERS,
    check_order,
    derived_seed,
    presentations,
    seeded_coin,
    stable_hash,
    stable_unit,
)
from egt.errors import EgtError

IDS = [f"item-{i}" for i in range(4000)]


def items(ids):
    return [SimpleNamespace(id=i) for i in ids]


def test_the_coin_is_a_function_of_seed_and_key_only():
    coins = [seeded_coin(7, i) for i in IDS]
    assert coins == [seeded_coin(7, i) for i in IDS]
    assert coins[::-1] == [seeded_coin(7, i) for i in reversed(IDS)]  # visiting order does not matter
    assert coins != [seeded_coin(8, i) for i in IDS]
    assert [seeded_coin(7, i, 0) for i in IDS] != [seeded_coin(7, i, 1) for i in IDS]  # keys with parts


def test_the_coin_is_balanced():
    """4000 fair coins: the share of heads lies within ±4 standard deviations (0.5 ± 0.032)."""
    for seed in range(3):
        share = sum(seeded_coin(seed, i) for i in IDS) / len(IDS)
        assert 0.468 < share < 0.532, (seed, share)
    pairs = [(seeded_coin(0, i), seeded_coin(1, i)) for i in IDS]  # seeds give unrelated coins
    agree = sum(a == b for a, b in pairs) / len(pairs)
    assert 0.468 < agree < 0.532


def test_unit_seed_and_coin_come_from_one_hash():
    h = stable_hash(3, "a", 1)
    assert h == stable_hash(3, "a:1") and 0 <= h < 2**64
    assert derived_seed(3, "a", 1) == h >> 1 < 2**63
    assert stable_unit("a:1", 3) == h / 2**64
    assert seeded_coin(3, "a", 1) == (stable_unit("a:1", 3) < 0.5)


def test_presentations_of_each_order():
    pairs = items(["a", "b", "c"])
    assert presentations(pairs, "stored", 5) == [(0, False), (1, False), (2, False)]
    assert presentations(pairs, "both", 5) == [(0, False), (0, True), (1, False), (1, True), (2, False), (2, True)]
    assert presentations(pairs, "random", 5) == [(i, seeded_coin(5, p.id)) for i, p in enumerate(pairs)]
    many = presentations(items(IDS), "random", 5)
    assert 0.468 < sum(s for _, s in many) / len(many) < 0.532


def test_one_validation_one_message():
    assert ORDERS == ("stored", "random", "both") and check_order("both") == "both"
    with pytest.raises(EgtError) as err:
        check_order("shuffled")
    assert str(err.value) == "--order: unknown presentation order 'shuffled' (one of stored | random | both)"
    with pytest.raises(EgtError, match=r"^--trace_order: unknown presentation order 'x' \(one of stored \| random\)$"):
        check_order("x", "trace_order", ("stored", "random"))


def test_every_order_option_gives_the_same_message():
    from egt.pipelines.scoring.config import ScoringConfig

    messages = []
    for check in (lambda: presentations(items(["a"]), "shuffled"), lambda: ScoringConfig(order="shuffled").check()):
        with pytest.raises(EgtError) as err:
            check()
        messages.append(str(err.value))
    assert messages == ["--order: unknown presentation order 'shuffled' (one of stored | random | both)"] * 2
