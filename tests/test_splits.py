import numpy as np
import pytest

from ecgtune.data import HeartbeatData, holdout_split, kfold_splits, make_synthetic, prepare_fold, rows_per_epoch
from ecgtune.errors import DataError


@pytest.fixture(scope="module")
def beats():
    return make_synthetic(3000, seed=5)


def test_holdout_is_stratified_disjoint_and_seeded(beats):
    train_rows, val_rows = holdout_split(beats.labels, 0.2, seed=1)
    assert np.intersect1d(train_rows, val_rows).size == 0
    assert len(train_rows) + len(val_rows) == len(beats)
    overall = np.bincount(beats.labels) / len(beats)
    np.testing.assert_allclose(np.bincount(beats.labels[val_rows]) / len(val_rows), overall, atol=0.01)
    again = holdout_split(beats.labels, 0.2, seed=1)
    np.testing.assert_array_equal(again[1], val_rows)
    assert not np.array_equal(holdout_split(beats.labels, 0.2, seed=2)[1], val_rows)


def test_kfold_puts_every_row_in_one_validation_fold(beats):
    folds = kfold_splits(beats.labels, 5, seed=0)
    seen = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(seen), np.arange(len(beats)))
    for train_rows, val_rows in folds:
        assert np.intersect1d(train_rows, val_rows).size == 0


def test_too_rare_a_class_is_a_clear_error():
    labels = np.array([0] * 10 + [1])
    with pytest.raises(DataError, match=r"class 1 has 1 row\(s\)"):
        holdout_split(labels)


def _tag_validation_rows(beats, val_rows):
    """Marks validation rows with 1.0 in an extra last sample, training rows with 0.0."""
    tagged = np.concatenate([beats.signals, np.zeros((len(beats), 1), np.float32)], axis=1)
    tagged[val_rows, -1] = 1.0
    return HeartbeatData(beats.ids, tagged, beats.labels, beats.source)


def test_smote_never_sees_validation_rows(beats):
    train_rows, val_rows = holdout_split(beats.labels, 0.25, seed=1)
    tagged = _tag_validation_rows(beats, val_rows)
    fold = prepare_fold(tagged, train_rows, val_rows, imbalance="smote", seed=0)
    assert len(fold.train_labels) > len(train_rows), "SMOTE should have added minority rows"
    assert np.bincount(fold.train_labels).min() == np.bincount(fold.train_labels).max()
    # A synthetic row interpolated from (or towards) a validation row would carry part of its tag.
    assert (fold.train_signals[:, -1] == 0.0).all()
    np.testing.assert_array_equal(fold.val_signals, tagged.signals[val_rows])


@pytest.mark.parametrize("imbalance", ["none", "smote", "class_weights"])
def test_the_rows_an_epoch_trains_on_are_known_before_resampling(beats, imbalance):
    train_rows, val_rows = holdout_split(beats.labels, 0.25, seed=1)
    fold = prepare_fold(beats, train_rows, val_rows, imbalance=imbalance, seed=0)
    assert rows_per_epoch(beats.labels[train_rows], imbalance) == len(fold.train_labels)


def test_the_write_ups_order_would_fail_the_leak_check(beats):
    """Resampling before splitting, as the write-up did, is caught by the same check."""
    from imblearn.over_sampling import SMOTE

    train_rows, val_rows = holdout_split(beats.labels, 0.25, seed=1)
    tagged = _tag_validation_rows(beats, val_rows)
    resampled, _ = SMOTE(random_state=0).fit_resample(tagged.signals, tagged.labels)
    synthetic = resampled[len(beats):]
    assert (synthetic[:, -1] > 0).any()


def test_class_weights_come_from_the_training_rows(beats):
    train_rows, val_rows = holdout_split(beats.labels, 0.2, seed=0)
    fold = prepare_fold(beats, train_rows, val_rows, imbalance="class_weights")
    counts = np.bincount(beats.labels[train_rows])
    np.testing.assert_allclose(fold.class_weights * counts, (fold.class_weights * counts)[0], rtol=1e-5)
    assert fold.class_weights[fold.train_labels].mean() == pytest.approx(1.0, rel=1e-5)
    assert len(fold.train_labels) == len(train_rows)


def test_overlapping_rows_and_unknown_method_are_refused(beats):
    with pytest.raises(ValueError, match="overlap"):
        prepare_fold(beats, np.arange(10), np.arange(5, 15))
    with pytest.raises(ValueError, match="valid: none, smote, class_weights"):
        prepare_fold(beats, np.arange(10), np.arange(10, 20), imbalance="oversample")
