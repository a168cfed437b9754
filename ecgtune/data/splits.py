"""Stratified splits, and class-imbalance handling applied to the training fold only.

The write-up oversampled with SMOTE before splitting, so synthetic neighbours of validation rows were
trained on and the validation score was optimistic. Here a fold is split first; only its training rows
are ever resampled or used to weight classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgtune.data.files import HeartbeatData
from ecgtune.errors import DataError

IMBALANCE_METHODS = ("none", "smote", "class_weights")


@dataclass(frozen=True)
class Fold:
    """Training and validation arrays of one split, ready for the trainer.

    `class_weights` is set (mean weight 1 over the training rows) only for `imbalance="class_weights"`.
    """

    train_signals: np.ndarray
    train_labels: np.ndarray
    val_signals: np.ndarray
    val_labels: np.ndarray
    n_classes: int
    class_weights: np.ndarray | None = None


def _require_stratifiable(labels: np.ndarray, n_splits: int) -> None:
    counts = np.bincount(labels)
    if (counts > 0).sum() < 2:
        raise DataError(f"the labels hold {(counts > 0).sum()} class; classification needs at least 2")
    present = counts[counts > 0]
    if present.min() < n_splits:
        rare = int(np.flatnonzero((counts > 0) & (counts < n_splits))[0])
        raise DataError(f"class {rare} has {counts[rare]} row(s); a stratified split needs at least {n_splits}")


def holdout_split(labels: np.ndarray, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of a stratified training / validation split."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    from sklearn.model_selection import StratifiedShuffleSplit

    _require_stratifiable(labels, 2)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    try:
        train_rows, val_rows = next(splitter.split(np.zeros(len(labels)), labels))
    except ValueError as error:
        raise DataError(f"cannot split {len(labels)} rows into training and validation: {error}") from None
    return np.sort(train_rows), np.sort(val_rows)


def kfold_splits(labels: np.ndarray, n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row positions of stratified k-fold splits; every row is in exactly one validation fold."""
    _require_stratifiable(labels, n_folds)
    folds = stratified_folds(labels, n_folds, seed)
    return [(np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)) for fold in range(n_folds)]


def stratified_folds(labels: np.ndarray, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..n_folds-1) of every row, each class spread evenly over the folds (numpy only: the
    ensemble's decision rule is cross-fitted with it too)."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        folds[rows] = (np.arange(len(rows)) + rng.integers(n_folds)) % n_folds
    return folds


def prepare_fold(
    data: HeartbeatData,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    imbalance: str = "none",
    seed: int = 0,
) -> Fold:
    """Splits `data` and applies the imbalance handling to the training rows alone.

    Args:
        data: labelled beats.
        train_rows, val_rows: disjoint row positions (from `holdout_split` or `kfold_splits`).
        imbalance: "none", "smote" (synthetic minority rows interpolated between training rows only)
            or "class_weights" (inverse class frequency of the training rows).
        seed: random seed for SMOTE.
    """
    if imbalance not in IMBALANCE_METHODS:
        raise ValueError(f"unknown imbalance handling {imbalance!r}; valid: {', '.join(IMBALANCE_METHODS)}")
    if np.intersect1d(train_rows, val_rows).size:
        raise ValueError("training and validation rows overlap")
    n_classes = data.n_classes
    train_signals, train_labels = data.signals[train_rows], data.labels[train_rows]
    class_weights = None
    if imbalance == "smote":
        train_signals, train_labels = _smote(train_signals, train_labels, seed)
    elif imbalance == "class_weights":
        counts = np.bincount(train_labels, minlength=n_classes).astype(np.float64)
        weights = np.where(counts > 0, len(train_labels) / (n_classes * np.maximum(counts, 1)), 0.0)
        class_weights = (weights / (weights[train_labels].mean())).astype(np.float32)
    return Fold(
        train_signals=train_signals,
        train_labels=train_labels,
        val_signals=data.signals[val_rows],
        val_labels=data.labels[val_rows],
        n_classes=n_classes,
        class_weights=class_weights,
    )


def rows_per_epoch(labels: np.ndarray, imbalance: str) -> int:
    """How many rows an epoch trains on after `prepare_fold`'s imbalance handling of these training
    labels: SMOTE grows every class present to the largest one (a multiple on real ECG)."""
    if imbalance == "smote" and _smote_applies(labels):
        counts = np.bincount(labels)
        return int(np.count_nonzero(counts) * counts.max())
    return len(labels)


def _smote_applies(labels: np.ndarray) -> bool:
    """SMOTE interpolates between a row and a neighbour of its class: every class needs two rows."""
    counts = np.bincount(labels)
    return counts[counts > 0].min() >= 2


def _smote(signals: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from imblearn.over_sampling import SMOTE

    if not _smote_applies(labels):
        return signals, labels
    counts = np.bincount(labels)
    smallest = counts[counts > 0].min()
    sampler = SMOTE(random_state=seed, k_neighbors=min(5, smallest - 1))
    resampled_signals, resampled_labels = sampler.fit_resample(signals, labels)
    return resampled_signals.astype(np.float32), resampled_labels.astype(np.int64)
