"""Training: the plain PyTorch loop (`trainer`); the Ray Tune adapter builds on it."""

from ecgtune.trainables.trainer import (
    TrainConfig,
    Trainer,
    TrainResult,
    predict_proba,
    resolve_device,
    train,
    train_family,
)

__all__ = ["TrainConfig", "Trainer", "TrainResult", "predict_proba", "resolve_device", "train", "train_family"]
