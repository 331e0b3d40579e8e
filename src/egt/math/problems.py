"""A deterministic generator of small arithmetic word problems with GSM8K-format worked solutions.

Each problem starts with an amount and applies 2–3 operations (buy more, give away, buy boxes of
k items, lose half); every step of the solution is one line (``Tom has 7 + 5 = 12 pens.``) and
the last line is ``#### N``, as in GSM8K. GSM8K's ``<<7+5=12>>`` calculator annotations are left
out: they double the numbers a tiny model must write and carry no extra information. The same ``seed`` always gives
the same problems; :func:`lab_splits` gives disjoint train/test question sets.
"""

from __future__ import annotations

import random

NAMES = [
    ("Tom", "he"),
    ("Mia", "she"),
    ("Sam", "he"),
    ("Ana", "she"),
    ("Leo", "he"),
    ("Ivy", "she"),
    ("Max", "he"),
    ("Zoe", "she"),
    ("Ben", "he"),
    ("Eva", "she"),
]
ITEMS = ["apples", "pens", "books", "stamps", "cards", "shells", "marbles", "coins"]


def _op_buy(rng: random.Random, x: int, name: str, pron: str, item: str) -> tuple[str, list[str], int]:
    b = rng.randint(2, 12)
    y = x + b
    return f"{pron.capitalize()} buys {b} more {item}.", [f"{name} has {x} + {b} = {y} {item}."], y


def _op_give(rng: random.Random, x: int, name: str, pron: str, item: str) -> tuple[str, list[str], int] | None:
    if x < 3:
        return None
    b = rng.randint(1, min(12, x - 1))
    y = x - b
    return f"{pron.capitalize()} gives away {b} {item}.", [f"{name} has {x} - {b} = {y} {item}."], y


def _op_boxes(rng: random.Random, x: int, name: str, pron: str, item: str) -> tuple[str, list[str], int]:
    k, per = rng.randint(2, 4), rng.randint(2, 6)
    m = k * per
    y = x + m
    return (
        f"{pron.capitalize()} buys {k} boxes of {per} {item}.",
        [f"The boxes hold {k} * {per} = {m} {item}.", f"{name} has {x} + {m} = {y} {item}."],
        y,
    )


def _op_half(rng: random.Random, x: int, name: str, pron: str, item: str) -> tuple[str, list[str], int] | None:
    if x % 2 or x < 4:
        return None
    y = x // 2
    return (
        f"{pron.capitalize()} loses half of {'his' if pron == 'he' else 'her'} {item}.",
        [f"{name} has {x} / 2 = {y} {item}."],
        y,
    )


OPERATIONS = (_op_buy, _op_give, _op_boxes, _op_half)


def make_problem(rng: random.Random, max_ops: int = 3) -> dict:
    """One problem: ``{"question", "answer"}`` with a worked GSM8K-format answer."""
    name, pron = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    x = rng.randint(3, 20)
    sentences, steps = [f"{name} has {x} {item}."], []
    n_ops = rng.randint(2, max_ops)
    while len(steps) < 1 or len(sentences) - 1 < n_ops:
        made = rng.choice(OPERATIONS)(rng, x, name, pron, item)
        if made is None:
            continue
        sentence, lines, x = made
        sentences.append(sentence)
        steps += lines
    sentences.append(f"How many {item} does {name} have now?")
    return {"question": " ".join(sentences), "answer": "\n".join(steps + [f"#### {x}"])}


def make_problems(
    n: int, seed: int, max_ops: int = 3, exclude: set[str] | None = None, prefix: str = "p"
) -> list[dict]:
    """``n`` distinct problems (questions not in ``exclude``), deterministic in ``seed``."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    out = []
    while len(out) < n:
        p = make_problem(rng, max_ops)
        if p["question"] in seen:
            continue
        seen.add(p["question"])
        out.append({"id": f"{prefix}{len(out):05d}", **p})
    return out


def lab_splits(n_train: int, n_test: int, seed: int, max_ops: int = 3) -> tuple[list[dict], list[dict]]:
    """Disjoint train and held-out test problems."""
    train = make_problems(n_train, seed, max_ops, prefix="train")
    test = make_problems(n_test, seed + 10_000, max_ops, exclude={p["question"] for p in train}, prefix="test")
    return train, test
