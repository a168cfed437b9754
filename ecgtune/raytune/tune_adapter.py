"""The Ray Tune trainable: one trial trains one sampled configuration, reports every epoch and
checkpoints what the ensemble stage needs (see `ecgtune.checkpoint`), resuming from its last
checkpoint when Ray restarts it."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from ray import tune

from ecgtune.checkpoint import STATE_FILE, write_checkpoint
from ecgtune.data import HeartbeatData, prepare_fold
from ecgtune.metrics import EPSILON
from ecgtune.models import create_model
from ecgtune.raytune.tune_layout import METRIC, flat_point
from ecgtune.search_spaces import model_kwargs
from ecgtune.trainer import TrainConfig, Trainer

WORST_LOG_LOSS = float(-np.log(EPSILON))


def trial_settings(config: dict, seed: int) -> tuple[str, dict, TrainConfig, str]:
    """Splits a sampled configuration into family, model keyword arguments, training config and
    imbalance handling."""
    family = config["family"]
    model_config = model_kwargs(config.get(family, {}), config["model"])
    augmentation = {key: value for key, value in config.get("augment", {}).items() if key != "enabled"}
    train_config = TrainConfig(**{**config["train"], "augmentation": augmentation, "seed": seed})
    return family, model_config, train_config, config["data"]["imbalance"]


def run_trial(config: dict, data: HeartbeatData, train_rows: np.ndarray, val_rows: np.ndarray, seed: int = 0,
              threads: int = 1, first_epoch_fraction: float = 1.0,
              time_allowances: Sequence[tuple[dict, float]] = ()) -> None:
    """Ray Tune function trainable (the data arrive once through Ray's object store, via
    `tune.with_parameters`). Trains on `threads` CPU threads, the CPUs the trial was given; with
    `first_epoch_fraction` < 1 its first report comes after that share of an epoch. A trial of one of
    `time_allowances`' points re-plans its epochs to end within that point's seconds (long trials).
    Resumes from the trial's checkpoint when Ray restarts it. Without validation rows (a refit) it
    reports only the training loss."""
    torch.set_num_threads(max(1, threads))
    family, model_config, train_config, imbalance = trial_settings(config, seed)
    flat = flat_point(config)  # a point's settings that the space does not search come from the family's defaults
    allowance = next((seconds for point, seconds in time_allowances
                      if all(flat[key] == value for key, value in point.items() if key in flat)), 0.0)
    train_config = replace(train_config, first_epoch_fraction=first_epoch_fraction, time_allowance_s=allowance)
    fold = prepare_fold(data, train_rows, val_rows, imbalance=imbalance, seed=seed)
    torch.manual_seed(seed)
    model = create_model(family, n_classes=fold.n_classes, **model_config)
    trainer = Trainer(model, fold, train_config)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trainer.load_state_dict(torch.load(Path(folder) / STATE_FILE, weights_only=True, map_location="cpu"))
    node = _node_id()

    def report(epoch_report: dict) -> None:
        metrics = {f"val_{key}": epoch_report[key] for key in ("abs_sum", "abs_sum_proba", "log_loss", "accuracy")
                   if key in epoch_report}
        metrics.update(epoch=epoch_report["epoch"], epochs_planned=trainer.config.epochs,
                       train_loss=epoch_report["train_loss"],
                       samples_per_s=epoch_report["samples_per_s"], seconds=epoch_report["seconds"],
                       family=family, node_id=node, diverged=False)
        with tempfile.TemporaryDirectory() as folder:
            write_checkpoint(Path(folder), trainer, family, model_config, imbalance, sampled=config)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    trainer.fit(on_epoch=report)
    if trainer.diverged:
        tune.report({METRIC: 2.0 * len(fold.val_labels), "val_abs_sum_proba": 2.0 * len(fold.val_labels),
                     "val_log_loss": WORST_LOG_LOSS, "val_accuracy": 0.0, "epoch": trainer.epoch,
                     "family": family, "node_id": node, "diverged": True})


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()
