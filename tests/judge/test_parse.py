"""The strict verdict parser: only exactly well-formed outputs parse (docs/methods.md §1)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from egt.judge.parse import lenient_verdict, parse_verdict
from egt.judge.prompt import format_judge_output

reasoning = st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=60)
TAGS = ["<think>", "</think>", "<answer>", "</answer>"]


@given(reasoning, st.sampled_from([1, 2]), st.sampled_from(["", " ", "\n"]))
def test_well_formed_outputs_parse(text, verdict, pad):
    out = parse_verdict(pad + format_judge_output(text, verdict) + pad)
    assert out is not None and out.choice == verdict - 1 and out.reasoning == text.strip()


@given(reasoning, st.sampled_from([1, 2]), st.text(min_size=1, max_size=10).filter(lambda s: s.strip()))
def test_text_outside_the_blocks_fails(text, verdict, junk):
    good = format_judge_output(text, verdict)
    assert parse_verdict(junk + good) is None or junk.strip() == ""
    assert parse_verdict(good + junk) is None


@given(reasoning, st.sampled_from([1, 2]), st.sampled_from(TAGS))
def test_extra_tag_inside_reasoning_fails(text, verdict, tag):
    assert parse_verdict(f"<think>{text}{tag}</think><answer>{verdict}</answer>") is None


@given(st.text(max_size=80))
def test_arbitrary_text_parses_only_if_well_formed(s):
    v = parse_verdict(s)
    if v is not None:
        assert s.count("<answer>") == 1 and s.count("<think>") == 1
        assert s.strip().endswith("</answer>") and s.strip().startswith("<think>")


def test_specific_failures():
    assert parse_verdict("<think>a</think><answer>3</answer>") is None
    assert parse_verdict("<think>a</think><answer>1</answer><answer>2</answer>") is None
    assert parse_verdict("<answer>1</answer>") is None
    assert parse_verdict("<think>a</think>") is None
    assert parse_verdict("<think>a</think><answer>12</answer>") is None
    assert parse_verdict("<think>a</think> <answer> 2 </answer>").choice == 1


def test_lenient_fallback_is_separate():
    assert parse_verdict("I think response 2") is None
    assert lenient_verdict("I think response 2") == 1
    assert lenient_verdict("<think>1</think><answer>2</answer> trailing") == 1
    assert lenient_verdict("no digits") is None
