import numpy as np
import pytest

from ecgtune import metrics


def test_abs_sum_costs_of_confident_right_wrong_and_empty_rows():
    labels = np.array([0, 1, 2])
    outputs = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=float)
    # right: 0, confidently wrong: 2, all-zero: 1
    assert metrics.abs_sum(outputs, labels) == 3.0


def test_threshold_decisions_leave_uncertain_rows_empty():
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.4, 0.35, 0.15, 0.1], [0.1, 0.1, 0.2, 0.6]])
    decided = metrics.threshold_decisions(probs)
    np.testing.assert_array_equal(decided, [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])


def test_threshold_decisions_pick_the_largest_margin_when_several_clear():
    probs = np.array([[0.45, 0.40, 0.1, 0.05]])
    decided = metrics.threshold_decisions(probs, thresholds=np.array([0.44, 0.2, 0.5, 0.5]))
    np.testing.assert_array_equal(decided, [[0, 1, 0, 0]])


def test_empty_row_beats_argmax_when_unsure():
    labels = np.array([1])
    probs = np.array([[0.4, 0.35, 0.15, 0.1]])
    assert metrics.abs_sum(metrics.threshold_decisions(probs), labels) == 1.0
    assert metrics.abs_sum(metrics.argmax_decisions(probs), labels) == 2.0


def test_report_and_log_loss():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    labels = np.array([0, 1, 1])
    report = metrics.classification_report(probs, labels)
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["abs_sum"] == 2.0
    assert report["abs_sum_proba"] == pytest.approx(0.2 + 0.4 + 1.2)
    assert report["log_loss"] == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="do not match"):
        metrics.abs_sum(np.zeros((2, 4)), np.array([0, 1, 2]))
