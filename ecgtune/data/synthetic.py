"""Deterministic synthetic heartbeats in the competition's shape: the embedded default data set.

Each beat is a sum of Gaussian waves sampled at 125 Hz from its R peak on: the R peak's descent, the S
wave, the T wave, then the next beat's P, Q and R waves, plus baseline wander and noise. The visible part
is 1.2 x the beat's "record" RR interval long (so it varies with heart rate), min-max scaled to [0, 1]
and zero-padded to the signal length, as in the competition's rows. The four classes differ in QRS
width, S depth, T polarity and size, P presence and when the next beat comes:

    0  normal            narrow QRS, upright T, P present, next beat on time         64 %
    1  supraventricular  narrow QRS, weak P, next beat early                         4 %
    2  ventricular       wide QRS, deep S, inverted T, no P, compensatory pause      14 %
    3  fusion            between normal and ventricular                              18 %

A share of beats sit between two classes (their wave parameters interpolated towards another class),
which bounds the accuracy any classifier can reach; see README for what networks score on it.
"""

from __future__ import annotations

import numpy as np

from ecgtune.data.files import HeartbeatData

CLASS_PRIOR = (0.64, 0.04, 0.14, 0.18)
SAMPLING_HZ = 125.0
SIGNAL_LENGTH = 205

# Wave parameters per class (rows: normal, supraventricular, ventricular, fusion). Times in seconds,
# amplitudes relative to the R peak.
PARAMETER_NAMES = (
    "qrs_width", "s_depth", "s_delay", "t_amplitude", "t_width", "t_delay",
    "p_amplitude", "next_beat", "next_r_amplitude",
)
CLASS_MEANS = np.array([
    [0.014, 0.30, 0.035, 0.32, 0.045, 0.30, 0.12, 1.00, 1.00],
    [0.015, 0.30, 0.035, 0.26, 0.045, 0.28, 0.03, 0.80, 0.95],
    [0.034, 0.55, 0.060, -0.40, 0.065, 0.34, 0.00, 1.22, 1.00],
    [0.024, 0.42, 0.048, 0.06, 0.055, 0.32, 0.07, 1.04, 1.00],
])
RELATIVE_SPREAD = np.array([0.13, 0.18, 0.12, 0.24, 0.14, 0.06, 0.28, 0.05, 0.08])
ABSOLUTE_SPREAD = np.array([0.0, 0.0, 0.0, 0.07, 0.0, 0.0, 0.02, 0.0, 0.0])
AMBIGUOUS_SHARE = 0.015


def make_synthetic(
    n_rows: int,
    seed: int = 0,
    *,
    signal_length: int = SIGNAL_LENGTH,
    first_id: int = 0,
    with_labels: bool = True,
) -> HeartbeatData:
    """Generates `n_rows` labelled beats; the same arguments always give the same beats.

    Args:
        n_rows: number of beats.
        seed: random seed.
        signal_length: samples per beat (205 in the competition).
        first_id: id of the first row; ids count up from it.
        with_labels: keep the labels (False makes a test file).
    """
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(CLASS_PRIOR), size=n_rows, p=CLASS_PRIOR)
    params = _wave_parameters(rng, labels)
    signals = _render(rng, params, signal_length)
    return HeartbeatData(
        ids=np.arange(first_id, first_id + n_rows, dtype=np.int64),
        signals=signals,
        labels=labels.astype(np.int64) if with_labels else None,
        source=f"synthetic(n_rows={n_rows}, seed={seed})",
    )


def _wave_parameters(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    means = CLASS_MEANS[labels]
    ambiguous = rng.random(len(labels)) < AMBIGUOUS_SHARE
    other = (labels + rng.integers(1, len(CLASS_PRIOR), size=len(labels))) % len(CLASS_PRIOR)
    blend = np.where(ambiguous, rng.uniform(0.25, 0.75, size=len(labels)), 0.0)[:, None]
    means = (1 - blend) * means + blend * CLASS_MEANS[other]
    noise = rng.standard_normal(means.shape)
    return means + noise * (np.abs(means) * RELATIVE_SPREAD + ABSOLUTE_SPREAD)


def _render(rng: np.random.Generator, params: np.ndarray, signal_length: int) -> np.ndarray:
    n_rows = len(params)
    (qrs_width, s_depth, s_delay, t_amplitude, t_width, t_delay,
     p_amplitude, next_beat, next_r_amplitude) = (column[:, None].astype(np.float32) for column in params.T)
    heart_rate = np.clip(rng.lognormal(np.log(78), 0.2, n_rows), 40, 150)
    rr = (60.0 / heart_rate)[:, None].astype(np.float32)
    time = (np.arange(signal_length, dtype=np.float32) / SAMPLING_HZ)[None, :]
    qrs_width = np.maximum(qrs_width, 0.006)
    next_r = rr * next_beat

    def wave(amplitude, centre, width):
        return amplitude * np.exp(-0.5 * ((time - centre) / width) ** 2)

    beat = wave(1.0, 0.0, qrs_width)
    beat += wave(-s_depth, s_delay, qrs_width * 1.3)
    beat += wave(t_amplitude, t_delay * np.sqrt(rr / 0.8), np.maximum(t_width, 0.02))
    beat += wave(p_amplitude, next_r - 0.16, 0.025)
    beat += wave(-0.1 * next_r_amplitude, next_r - 0.03, 0.01)
    beat += wave(next_r_amplitude, next_r, qrs_width)
    wander_phase = rng.uniform(0, 2 * np.pi, (n_rows, 1)).astype(np.float32)
    wander_hz = rng.uniform(0.15, 0.5, (n_rows, 1)).astype(np.float32)
    beat += rng.uniform(0, 0.06, (n_rows, 1)).astype(np.float32) * np.sin(2 * np.pi * wander_hz * time + wander_phase)
    beat += rng.normal(0, 0.012, beat.shape).astype(np.float32)

    visible = np.minimum(np.round(1.2 * rr * SAMPLING_HZ).astype(np.int64), signal_length)
    inside = np.arange(signal_length)[None, :] < visible
    low = np.where(inside, beat, np.inf).min(axis=1, keepdims=True)
    high = np.where(inside, beat, -np.inf).max(axis=1, keepdims=True)
    scaled = (beat - low) / (high - low)
    return np.where(inside, scaled, 0.0).astype(np.float32)
