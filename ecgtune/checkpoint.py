"""The checkpoint of a trained network: the one place that writes and reads its files.

A checkpoint folder holds:
    config.json         the description: family, model and training config, imbalance handling, the
                        sampled configuration, the kept epoch (the best, or the last for a network
                        trained without validation rows) and its metrics, training rows and time
    val_probs.npy       the kept epoch's validation probabilities (rows as in RUNS_DIR/NAME/validation.npz;
                        none for a refit on every row)
    model.safetensors   the kept epoch's weights
    trainer_state.pt    the whole training state, to resume an interrupted trial (weights-only file;
                        the trial that wrote it loads it, see `ecgtune.raytune.tune_adapter`)

Reading a checkpoint's record needs numpy only; writing one and loading its network import torch
when called. Where a search keeps its checkpoints is Ray's business (`ecgtune.raytune.tune_layout`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecgtune.errors import EcgtuneError

if TYPE_CHECKING:
    import torch

    from ecgtune.trainer import Trainer

CONFIG_FILE, PROBS_FILE = "config.json", "val_probs.npy"
WEIGHTS_FILE, STATE_FILE = "model.safetensors", "trainer_state.pt"
LEGACY_NAMES = {"best_epoch": "kept_epoch", "best_metrics": "kept_metrics"}  # config.json's before 2026-11-27


@dataclass(frozen=True)
class Checkpoint:
    """What one checkpoint folder says about its network, and the network's validation probabilities."""

    folder: Path
    family: str            # the architecture family, a name of the `ecgtune.models` registry
    model_config: dict     # the family's keyword arguments to `create_model`
    n_classes: int
    signal_length: int     # samples per beat
    train_config: dict     # the `TrainConfig` it was trained with
    imbalance: str         # the class-imbalance handling of its training rows
    sampled: dict          # the configuration the search sampled: what a retraining starts from
    kept_epoch: int        # the epoch these weights and probabilities are from (0: none finished cleanly)
    kept_metrics: dict     # that epoch's report: validation abs_sum, log_loss, accuracy... when it had any
    epochs_trained: int
    training_rows: int
    seconds: float         # training time of the epochs trained
    val_probs: np.ndarray = field(repr=False, compare=False)  # (validation rows, n_classes)

    def description(self) -> dict:
        """The description as config.json holds it: every field but the folder and the probabilities."""
        return {item.name: getattr(self, item.name) for item in fields(self)
                if item.name not in ("folder", "val_probs")}


def write_checkpoint(folder: Path, trainer: Trainer, family: str, model_config: dict, imbalance: str,
                     sampled: dict) -> None:
    """Writes the kept epoch of `trainer` (and its whole state, to resume) as a checkpoint into `folder`.

    Args:
        folder: an existing folder.
        trainer: the training run, after any number of epochs.
        family: the architecture family of the network.
        model_config: the family's keyword arguments to `create_model`.
        imbalance: the class-imbalance handling of the training rows.
        sampled: the configuration the search sampled.
    """
    import torch
    from safetensors.torch import save_file

    result = trainer.result()
    checkpoint = Checkpoint(
        folder=folder, family=family, model_config=model_config, n_classes=trainer.fold.n_classes,
        signal_length=int(trainer.fold.train_signals.shape[1]), train_config=result.config, imbalance=imbalance,
        sampled=sampled, kept_epoch=result.kept_epoch, kept_metrics=result.kept_metrics,
        epochs_trained=trainer.epoch, training_rows=len(trainer.fold.train_labels), seconds=trainer.elapsed,
        val_probs=result.kept_val_probs.astype(np.float32))
    save_file({name: tensor.contiguous() for name, tensor in result.kept_state.items()}, str(folder / WEIGHTS_FILE))
    np.save(folder / PROBS_FILE, checkpoint.val_probs, allow_pickle=False)
    (folder / CONFIG_FILE).write_text(json.dumps(checkpoint.description(), indent=2, default=_json_default))
    torch.save(trainer.state_dict(), folder / STATE_FILE)


def read_checkpoint(folder: Path) -> Checkpoint:
    """The record of the checkpoint in `folder`: its description and validation probabilities.

    Raises:
        EcgtuneError: naming the folder, if a file is missing, cut short or not what the format says
            (a full disk truncates files).
    """
    try:
        described = json.loads((folder / CONFIG_FILE).read_text())
        if not isinstance(described, dict):
            raise TypeError(f"{CONFIG_FILE} holds no description")
        described = {LEGACY_NAMES.get(key, key): value for key, value in described.items()}
        checkpoint = Checkpoint(
            folder=folder,
            family=_field(described, "family", str),
            model_config=_field(described, "model_config", dict),
            n_classes=_field(described, "n_classes", int),
            signal_length=_field(described, "signal_length", int),
            train_config=_field(described, "train_config", dict),
            imbalance=_field(described, "imbalance", str),
            sampled=_field(described, "sampled", dict),
            kept_epoch=_field(described, "kept_epoch", int),
            kept_metrics=_field(described, "kept_metrics", dict),
            epochs_trained=_field(described, "epochs_trained", int),
            training_rows=_field(described, "training_rows", int),
            seconds=float(_field(described, "seconds", (int, float))),
            val_probs=np.load(folder / PROBS_FILE, allow_pickle=False),
        )
    except (OSError, ValueError, TypeError) as error:
        raise _unreadable(folder, error) from None
    probs = checkpoint.val_probs
    if probs.ndim != 2 or probs.shape[1] != checkpoint.n_classes:
        raise _unreadable(folder, f"{PROBS_FILE} of shape {probs.shape} does not hold rows of "
                                  f"{checkpoint.n_classes} class probabilities")
    return checkpoint


def load_network(checkpoint: Checkpoint) -> torch.nn.Module:
    """The checkpoint's network with its kept epoch's weights, in eval mode.

    Raises:
        EcgtuneError: naming the folder, if the weights are missing, cut short or do not fit the network.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ecgtune.models import create_model

    try:
        network = create_model(checkpoint.family, n_classes=checkpoint.n_classes, **checkpoint.model_config)
        network.load_state_dict(load_file(str(checkpoint.folder / WEIGHTS_FILE)))
    except (OSError, ValueError, TypeError, RuntimeError, SafetensorError) as error:
        raise _unreadable(checkpoint.folder, error) from None
    return network.eval()


def _field(described: dict, name: str, kind: type | tuple[type, ...]):
    """One field of a description, checked to be of the JSON type the format gives it."""
    value = described.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):  # JSON's true is no count
        raise TypeError(f"{CONFIG_FILE}: {name} is missing or not a {getattr(kind, '__name__', 'number')}")
    return value


def _unreadable(folder: Path, problem) -> EcgtuneError:
    return EcgtuneError(f"{folder}: unreadable checkpoint ({problem})")


def _json_default(value):
    """numpy scalars (in a sampled configuration or a metric) as the Python numbers JSON writes."""
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
