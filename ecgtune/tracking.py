"""Experiment tracking (`--tracker mlflow|wandb`): where the runs go, and the final ensemble's record.
Every trial's configuration and per-epoch metrics are logged by Ray's logger callbacks in the search
layer (`ecgtune.raytune.registry.TRACKERS`); this module needs neither Ray nor PyTorch."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ecgtune.errors import ConfigError

if TYPE_CHECKING:  # the command line imports this module, and `predict` must start fast
    from ecgtune.ensemble.summary import EnsembleSummary

TRACKERS = {"mlflow": "mlflow", "wandb": "wandb"}  # the name on the command line -> the module it needs
WANDB_PROJECT = "ecgtune"
MLFLOW_DATABASE = "mlflow.db"


def check_tracker(tracker: str | None) -> None:
    """Refuses a tracker whose package is not installed, naming the extra that installs it."""
    if tracker is not None and importlib.util.find_spec(TRACKERS[tracker]) is None:
        raise ConfigError(f"--tracker {tracker} needs the {TRACKERS[tracker]} package: pip install "
                          f"\"ecgtune[{tracker}]\"")


def mlflow_uri(runs_dir: Path) -> str:
    """MLflow's tracking URI: $MLFLOW_TRACKING_URI when set (a server), else one SQLite database beside
    the experiments, RUNS_DIR/mlflow.db, that `mlflow ui --backend-store-uri sqlite:///...` shows."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(runs_dir / MLFLOW_DATABASE).resolve()}"


def log_ensemble(tracker: str, experiment: str, tracking_uri: str | None, summary: EnsembleSummary,
                 bundle: Path) -> None:
    """Records the ensemble beside the experiment's trials: its scores, members and bundle folder."""
    members = ", ".join(f"{member.trial} ({member.weight:.3f})" for member in summary.members)
    scores = {f"ensemble/{name}": value for name, value in summary.scores.items()}
    if tracker == "mlflow":
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name="ensemble", tags={"ecgtune": "ensemble"}):
            mlflow.log_metrics(scores)
            mlflow.log_params({"members": members, "bundle": str(bundle),
                               "validation_rows": summary.validation_rows})
    else:
        import wandb

        run = wandb.init(project=WANDB_PROJECT, group=experiment, name="ensemble", job_type="ensemble")
        run.summary.update({**scores, "members": members, "bundle": str(bundle)})
        run.finish()
