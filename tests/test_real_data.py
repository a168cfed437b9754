"""Checks on the real rows in ../shared/data (skipped when that folder is absent)."""

import numpy as np
import pytest

from conftest import SHARED_DATA
from ecgtune.data import load_dataset

TIANCHI = SHARED_DATA / "tianchi_sample"
MITBIH = SHARED_DATA / "mitbih" / "train.csv.gz"


@pytest.mark.skipif(not TIANCHI.is_dir(), reason="../shared/data/tianchi_sample is absent")
def test_tianchi_sample_rows():
    train = load_dataset(TIANCHI / "train.csv", require_labels=True)
    test = load_dataset(TIANCHI / "testA.csv", signal_length=train.signal_length)
    assert len(train) == 100 and train.signal_length == 205 and set(train.labels) <= {0, 1, 2, 3}
    assert train.signals.min() >= 0 and train.signals.max() <= 1
    assert test.labels is None and list(test.ids[:2]) == [100000, 100001] and len(test) == 100
    # the first sample is at the R peak
    assert np.median(train.signals[:, 0]) > 0.9


@pytest.mark.skipif(not MITBIH.is_file(), reason="../shared/data/mitbih is absent")
def test_mitbih_real_beats():
    beats = load_dataset(MITBIH, require_labels=True)
    assert beats.signals.shape == (80_535, 205)
    np.testing.assert_array_equal(beats.class_counts(), [72_060, 2_224, 5_608, 643])
