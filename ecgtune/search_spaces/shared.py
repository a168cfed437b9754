"""The part of the search space every family shares: optimisation, regularisation, loss, imbalance and
data augmentation."""

from __future__ import annotations

from dataclasses import dataclass

from ecgtune.data import IMBALANCE_METHODS
from ecgtune.trainables.trainer import LOSSES, SCHEDULES

LEARNING_RATE = (3e-4, 1e-2)
WEIGHT_DECAY = (1e-5, 1e-1)
BATCH_SIZES = [128, 256, 512]
DROPOUT = (0.0, 0.5)
LABEL_SMOOTHING = (0.0, 0.2)


@dataclass(frozen=True)
class EpochBudget:
    """Epochs a trial may be given; ASHA stops weak trials before their budget runs out."""

    min_epochs: int = 4
    max_epochs: int = 12


def shared(trial, budget: EpochBudget) -> None:
    """Suggests the settings every family shares (names under `train/`, `model/` and `data/`)."""
    trial.suggest_float("train/lr", *LEARNING_RATE, log=True)
    trial.suggest_float("train/weight_decay", *WEIGHT_DECAY, log=True)
    trial.suggest_categorical("train/batch_size", BATCH_SIZES)
    trial.suggest_int("train/epochs", budget.min_epochs, budget.max_epochs)
    trial.suggest_float("train/label_smoothing", *LABEL_SMOOTHING)
    trial.suggest_categorical("train/loss", list(LOSSES))
    trial.suggest_categorical("train/schedule", list(SCHEDULES))
    trial.suggest_float("model/dropout", *DROPOUT)
    trial.suggest_categorical("data/imbalance", list(IMBALANCE_METHODS))
    augmentation(trial)


def augmentation(trial) -> None:
    """Off, or each transform's strength (names under `augment/`; 0 turns a transform off). The
    ranges keep a beat recognisable: a few samples of shift at 125 Hz, a tenth of stretch."""
    if not trial.suggest_categorical("augment/enabled", [False, True]):
        return
    trial.suggest_float("augment/amplitude", 0.0, 0.2)
    trial.suggest_float("augment/baseline", 0.0, 0.05)
    trial.suggest_float("augment/noise", 0.0, 0.03)
    trial.suggest_int("augment/shift", 0, 5)
    trial.suggest_float("augment/stretch", 0.0, 0.1)
    trial.suggest_categorical("augment/mixup", [0.0, 0.2, 0.4])
