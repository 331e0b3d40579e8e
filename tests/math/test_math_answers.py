"""Final-answer extraction and verification: hand-picked cases, properties, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egt.errors import EgtError
from egt.math import extract_answer, grade, verify
from egt.math.answers import UNANSWERED, clean_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Janet sells 9 eggs.\nShe makes $18.\n#### 18", "18"),  # GSM8K reference
        ("She has 13 eggs.\nA: 26", "26"),  # GSM8K example solutions
        ("So she makes 18 dollars. The answer is 18.", "18"),
        ("The final answer is: $1,234.50.", "$1,234.50"),
        ("Thus \\boxed{\\frac{1}{2}} of them.", "\\frac{1}{2}"),
        ("\\boxed{2^{3}}", "2^{3}"),  # nested braces
        ("**Answer:** 42", "42"),
        ("The answer is 12. Then she left.", "12"),  # stop at the sentence
        ("#### 3\nThe answer is 4", "4"),  # the last marker wins
        ("A: 7\n#### 8", "8"),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text", ["", "I think it is 5", "Janet has 16 - 3 = 13 eggs", "####", "A: ", "\\boxed{", None, 12]
)
def test_no_final_answer_is_unanswered(text):
    assert extract_answer(text) is None
    if isinstance(text, str):
        g = grade(text, "#### 5")
        assert g.status == UNANSWERED and not g.correct and g.answer is None


@pytest.mark.parametrize(
    "solution, reference, expected",
    [
        ("A: 18", "#### 18", True),
        ("A: 2,125", "#### 2125", True),  # thousands commas
        ("The answer is $1,234.50.", "#### 1234.5", True),  # currency, decimals, full stop
        ("A: 18 dollars", "#### 18", True),  # units
        ("A: 18.00", "#### 18", True),
        ("The answer is 50%", "#### 50", True),  # GSM8K writes percentages bare
        ("\\boxed{\\frac{1}{2}}", "#### 0.5", True),  # fractions vs decimals
        ("A: 3/4", "#### 0.75", True),
        ("A: -7", "#### -7", True),
        ("A: 8.333333333333334", "#### 8", False),
        ("A: 10.5", "#### 105", False),
        ("A: 26", "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18", False),
        ("A: 18", "18", True),  # a bare gold answer
        ("no answer here", "#### 18", False),
    ],
)
def test_verify(solution, reference, expected):
    assert verify(solution, reference) is expected


def test_reference_without_answer_is_a_user_error():
    with pytest.raises(EgtError, match="reference has no final answer"):
        verify("A: 1", "a long reference\nwith no final answer line")


def test_clean_answer():
    assert clean_answer("$1,234,567.") == "1234567"
    assert clean_answer("\\$<<2*9=18>>18") == "18"
    assert clean_answer("12,34") == "12,34"  # not a thousands separator: left alone


def test_verify_in_threads():
    """math-verify's signal timeout only works in the main thread; ours switches it off elsewhere."""
    cases = [("A: 7", True), ("A: 8", False), ("\\boxed{7.0}", True), ("The answer is 7 apples.", True)] * 5
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: verify(c[0], "#### 7"), cases))
    assert results == [c[1] for c in cases]


def test_overlong_answer_is_not_parsed():
    assert not verify("A: " + "9" * 500, "#### 9")


# --------------------------------------------------------------------------------------------
# properties

amounts = st.one_of(
    st.integers(-(10**7), 10**7),
    st.decimals(min_value=-(10**5), max_value=10**5, places=2).map(
        lambda d: d.normalize() if d == d.to_integral() else d
    ),
)


def with_commas(x) -> str:
    s = f"{x:,}"
    return s


@st.composite
def phrasings(draw, value):
    """A solution stating ``value`` in one of the ways models do."""
    text = str(value)
    if draw(st.booleans()):
        text = with_commas(value)
    if draw(st.booleans()) and not text.startswith("-"):
        text = "$" + text
    unit = draw(st.sampled_from(["", " dollars", " apples", " km"]))
    style = draw(
        st.sampled_from(["A: {}", "#### {}", "The answer is {}.", "So the final answer is {}", "\\boxed{{{}}}"])
    )
    body = style.format(text + unit) if not style.startswith("\\boxed") else style.format(text)
    prefix = draw(st.sampled_from(["", "She buys 3 + 4 = 7 pens.\n", "Step 1: 2 * 3 = 6\nStep 2: 6 + 1 = 7\n"]))
    return prefix + body


@settings(max_examples=150, deadline=None)
@given(data=st.data(), value=amounts)
def test_any_phrasing_of_the_gold_verifies(data, value):
    solution = data.draw(phrasings(value))
    assert verify(solution, f"#### {value}"), solution


@settings(max_examples=100, deadline=None)
@given(data=st.data(), value=st.integers(-(10**6), 10**6), delta=st.integers(1, 1000))
def test_a_different_number_never_verifies(data, value, delta):
    solution = data.draw(phrasings(value + delta))
    assert not verify(solution, f"#### {value}"), solution


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_extraction_never_crashes(text):
    ans = extract_answer(text)
    assert ans is None or (isinstance(ans, str) and ans.strip() == ans and ans)
    assert grade(text, "#### 1").status in ("correct", "wrong", "unanswered")


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_characters="#\\"), max_size=200).filter(
        lambda t: "answer" not in t.lower() and ":" not in t and "：" not in t
    )
)
def test_text_without_markers_is_unanswered(text):
    assert extract_answer(text) is None
