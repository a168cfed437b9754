"""Data layer: competition files in and out, a content-keyed cache, synthetic beats, splits, resampling."""

from ecgtune.data.files import HeartbeatData, load_dataset, write_dataset
from ecgtune.data.splits import (
    IMBALANCE_METHODS,
    Fold,
    holdout_split,
    kfold_splits,
    prepare_fold,
    rows_per_epoch,
)
from ecgtune.data.synthetic import CLASS_PRIOR, make_synthetic

__all__ = [
    "CLASS_PRIOR",
    "Fold",
    "HeartbeatData",
    "IMBALANCE_METHODS",
    "holdout_split",
    "kfold_splits",
    "load_dataset",
    "make_synthetic",
    "prepare_fold",
    "rows_per_epoch",
    "write_dataset",
]
