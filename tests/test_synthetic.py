import numpy as np

from ecgtune.data import CLASS_PRIOR, make_synthetic


def test_same_seed_same_beats_other_seed_other_beats():
    first, second = make_synthetic(500, seed=4), make_synthetic(500, seed=4)
    np.testing.assert_array_equal(first.signals, second.signals)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert not np.array_equal(make_synthetic(500, seed=5).signals, first.signals)


def test_beats_look_like_the_competitions():
    beats = make_synthetic(20_000, seed=0)
    signals = beats.signals
    assert signals.shape == (20_000, 205) and signals.dtype == np.float32
    assert signals.min() >= 0.0 and signals.max() <= 1.0
    # min-max scaled per beat, starting at the R peak
    assert np.median(signals[:, 0]) > 0.85
    np.testing.assert_allclose(signals.max(axis=1), 1.0, atol=1e-6)
    # zero-padded tail whose length varies with heart rate
    nonzero_length = 205 - np.argmax(signals[:, ::-1] != 0, axis=1)
    assert 100 < np.median(nonzero_length) < 160 and nonzero_length.std() > 10
    assert (signals[:, -20:] == 0).mean() > 0.8
    np.testing.assert_allclose(np.bincount(beats.labels) / len(beats), CLASS_PRIOR, atol=0.01)


def test_classes_differ_in_shape():
    beats = make_synthetic(8_000, seed=1)
    means = np.array([beats.signals[beats.labels == c].mean(axis=0) for c in range(4)])
    distances = np.abs(means[:, None] - means[None]).sum(axis=2)
    assert (distances[~np.eye(4, dtype=bool)] > 1.0).all()
