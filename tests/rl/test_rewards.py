"""The judge reward (docs/methods.md §4): each term by hand, the combination, and the TRL function form.

R = w_f·format + accuracy·(1 + w_l·logic), R1-Reward's w_f = w_l = 0.5. Worked values:
correct and consistent → 0.5 + 1·(1 + 0.5) = 2.0; correct, conclusion names the other → 0.5 + 0.5 = 1.0;
wrong but well formed → 0.5; unparsable → 0.
"""

from __future__ import annotations

import pytest

from egt.errors import EgtError
from egt.rl.rewards import (
    BOTH,
    OpenAILogicChecker,
    RewardTerms,
    RuleLogicChecker,
    judge_reward_functions,
    judge_reward_terms,
    make_logic_checker,
    named_response,
)
from openai_standin import OpenAIStandIn, user_text

GOOD_1 = "<think>response 1 says red, image red, correct. so response 1 is better.</think><answer>1</answer>"


@pytest.mark.parametrize(
    "text, ok",
    [
        (GOOD_1, True),
        ("  \n<think>x</think>\n<answer> 2 </answer>\n", True),  # whitespace around the blocks is allowed
        ("<think>x</think><answer>3</answer>", False),  # not 1 or 2
        ("<answer>1</answer>", False),  # no reasoning block
        ("<think>x</think>", False),  # no answer
        ("<think>x</think><answer>1</answer> thanks", False),  # text outside
        ("note <think>x</think><answer>1</answer>", False),
        ("<think>a</think><think>b</think><answer>1</answer>", False),  # two think blocks
        ("<think>x</think><answer>1</answer><answer>2</answer>", False),  # two answers
        ("<think>x <answer>2</answer></think><answer>1</answer>", False),  # a tag inside the reasoning
        ("", False),
    ],
)
def test_format_term(text, ok):
    assert judge_reward_terms(text, preferred=0, swapped=False).format == float(ok)


def test_accuracy_maps_a_swapped_presentation_back_to_the_stored_order():
    says_1 = "<think>r</think><answer>1</answer>"
    says_2 = "<think>r</think><answer>2</answer>"
    assert judge_reward_terms(says_1, preferred=0, swapped=False).accuracy == 1.0
    assert judge_reward_terms(says_2, preferred=0, swapped=False).accuracy == 0.0
    # shown swapped, "Response 1" is the stored response 1: the label 1 is right
    assert judge_reward_terms(says_1, preferred=1, swapped=True).accuracy == 1.0
    assert judge_reward_terms(says_1, preferred=0, swapped=True).accuracy == 0.0
    assert judge_reward_terms(says_2, preferred=0, swapped=True).accuracy == 1.0
    assert judge_reward_terms("garbage 1", preferred=0, swapped=False) == RewardTerms(0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "sentence, named",
    [
        ("so response 1 is better.", 1),
        ("Therefore Response 2 is the better answer", 2),
        ("Response 1 is better than Response 2.", 1),
        ("response 1 is worse than response 2", 2),
        ("Response 2 is less accurate than Response 1.", 1),
        ("Response 1 is wrong.", 2),
        ("Response 1 is not correct", 2),
        ("I prefer response 2 over response 1.", 2),
        ("the second response wins", 2),
        ("Response 1 is wrong and response 2 is correct.", 2),
        ("Response 1 and Response 2 are both correct.", BOTH),
        ("Response 1 and response 2 are equally good", BOTH),
        ("The square is red.", None),
    ],
)
def test_named_response(sentence, named):
    assert named_response(sentence) == named


def test_rule_logic_checker_plus_minus_zero():
    check = RuleLogicChecker(n_sentences=2)
    reasoning = (
        "response 1 says red, image red, correct. response 2 says blue, image red, wrong. so response 1 is better."
    )
    assert check(reasoning, verdict=0) == 1  # verdict Response 1, conclusion Response 1
    assert check(reasoning, verdict=1) == -1  # verdict Response 2, conclusion the other
    assert check("Both look fine. Response 1 and response 2 are equally good.", verdict=0) == -1  # both
    assert check("The image shows a red square. It is hard to say.", verdict=0) == 0  # cannot tell
    # the conclusion is searched among the last n sentences only, from the end
    assert check("Response 2 is better. The image is red. Nothing else.", verdict=1) == 0
    assert RuleLogicChecker(n_sentences=3)("Response 2 is better. The image is red. Nothing else.", verdict=1) == 1


def test_combination_weights_by_hand():
    consistent = judge_reward_terms(GOOD_1, 0, False, RuleLogicChecker())
    assert consistent == RewardTerms(1.0, 1.0, 1.0) and consistent.total() == pytest.approx(2.0)
    inconsistent = "<think>so response 2 is better.</think><answer>1</answer>"
    terms = judge_reward_terms(inconsistent, 0, False, RuleLogicChecker())
    assert terms == RewardTerms(1.0, 1.0, -1.0) and terms.total() == pytest.approx(1.0)
    wrong = judge_reward_terms(GOOD_1, 1, False, RuleLogicChecker())
    assert wrong.total() == pytest.approx(0.5)  # logic does not count when the verdict is wrong
    assert terms.total(format_weight=1.0, logic_weight=0.25) == pytest.approx(1.0 + 1.0 * (1 - 0.25))


def test_trl_reward_functions_sum_to_the_reward_and_log_logic():
    funcs, weights = judge_reward_functions(0.5, 0.5, RuleLogicChecker())
    assert [f.__name__ for f in funcs] == ["judge_format", "judge_accuracy", "judge_logic"]
    assert weights == [0.5, 1.0, 0.5]
    completions = [
        [{"role": "assistant", "content": c}]
        for c in (GOOD_1, "<think>so response 2 is better.</think><answer>1</answer>", GOOD_1, "nonsense")
    ]
    columns = dict(preferred=[0, 0, 1, 0], swapped=[False, False, False, True], id=list("abcd"))
    logged = {}
    per_func = [f(prompts=[None] * 4, completions=completions, log_metric=logged.__setitem__, **columns) for f in funcs]
    totals = [sum(w * r[i] for w, r in zip(weights, per_func)) for i in range(4)]
    assert totals == pytest.approx([2.0, 1.0, 0.5, 0.0])
    assert per_func[2] == [1.0, -1.0, 0.0, 0.0]  # accuracy-gated logic
    assert logged["rewards/logic_ungated/mean"] == pytest.approx((1 - 1 + 1 + 0) / 4)
    with pytest.raises(EgtError, match="swapped"):
        funcs[1](prompts=[None], completions=["x"], preferred=[0])


def test_a_custom_logic_callable_replaces_the_rule():
    funcs, _ = judge_reward_functions(logic_checker=lambda reasoning, verdict: -1)
    assert funcs[2](None, [GOOD_1], preferred=[0], swapped=[False]) == [-1.0]
    funcs, _ = judge_reward_functions(logic_checker=lambda reasoning, verdict: 7)
    with pytest.raises(EgtError, match="-1, 0 or \\+1"):
        funcs[2](None, [GOOD_1], preferred=[0], swapped=[False])
    assert make_logic_checker("none") is None
    with pytest.raises(EgtError, match="logic_endpoint"):
        make_logic_checker("openai")


def test_openai_compatible_logic_checker_against_a_local_server():
    def answer(body):
        return "-1" if "Final answer: Response 2" in user_text(body) else "+1"

    with OpenAIStandIn(answer=answer, faults=[429]) as server:
        check = OpenAILogicChecker(server.url, model="judge-7b")
        assert check("so response 1 is better.", verdict=0) == 1  # after one rate-limited attempt
        assert check("so response 1 is better.", verdict=1) == -1
    assert server.requests[0]["model"] == "judge-7b" and len(server.requests) == 3
    with OpenAIStandIn(answer=lambda body: "no idea") as server:
        with pytest.raises(EgtError, match="unreadable reply"):
            OpenAILogicChecker(server.url, model="m")("x", 0)
    dead = OpenAILogicChecker("http://127.0.0.1:9/v1", model="m", timeout=0.5, retries=0)
    with pytest.raises(EgtError, match="logic checker"):
        dead("x", 0)
    assert OpenAILogicChecker("http://127.0.0.1:9/v1", model="m", timeout=0.5, on_error="zero", retries=0)("x", 0) == 0
