"""The part of the search space every family shares: optimisation, regularisation, loss, imbalance and
data augmentation."""

from __future__ import annotations

from dataclasses import dataclass

from ecgtune.data import IMBALANCE_METHODS
from ecgtune.trainer import LOSSES, SCHEDULES

LEARNING_RATE = (3e-4, 1e-2)
WEIGHT_DECAY = (1e-5, 1e-1)
BATCH_SIZES = [128, 256, 512]
DROPOUT = (0.0, 0.5)
MODEL_SETTINGS = ("dropout", "position_channel")  # fields of every family's config, sampled as `model/<field>`
LABEL_SMOOTHING = (0.0, 0.2)
LONGEST_TRIAL_SHARE = 0.2  # of one parallel slot's search time: room for five full-length trials per slot
MAX_EPOCHS_FROM_TIME = 200  # Net1 scored the same on held-out beats after 154 and 194 epochs (BENCHMARKS 11f)


@dataclass(frozen=True)
class EpochBudget:
    """Epochs a trial may be given; ASHA stops weak trials before their budget runs out."""

    min_epochs: int = 4
    max_epochs: int = 12

    @classmethod
    def fitting(cls, search_seconds: float, epoch_seconds: float) -> EpochBudget:
        """The range for a search of `search_seconds` whose trials take `epoch_seconds` per epoch: the
        longest trial may take LONGEST_TRIAL_SHARE of the search, the shortest a third of that, but the
        range never shrinks below the default. On an accelerator the default leaves networks
        undertrained (BENCHMARKS 11f: 16 % more held-out abs-sum on one GPU); on a CPU with real data
        a range fitted to the budget (1-3 epochs at 10 minutes) trains networks too short to learn."""
        default = cls()
        longest = int(LONGEST_TRIAL_SHARE * search_seconds / epoch_seconds)
        longest = min(MAX_EPOCHS_FROM_TIME, max(default.max_epochs, longest))
        return cls(max(default.min_epochs, round(longest / 3)), longest)

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
    trial.suggest_categorical("model/position_channel", [False, True])
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
