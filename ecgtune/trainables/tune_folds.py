"""Cross-fitted members: chosen configurations retrained on K stratified folds of every labelled row.

Each (configuration, fold) pair is one Ray Tune trial of a grid, trained on the other K-1 folds and
validated on its own fold, so every row gets an out-of-fold prediction from every configuration.
The trials form their own experiment beside the search's; their checkpoints are those of the search
(see `tune_adapter`), in folders named `<member>_fold<k>`. Run the same grid again after an
interruption and Ray restores it: finished folds are kept, unfinished ones resume from their
checkpoints.
"""

from __future__ import annotations

import numpy as np
from ray import tune

from ecgtune.data import HeartbeatData
from ecgtune.ensemble.library import fold_trial_name
from ecgtune.errors import EcgtuneError
from ecgtune.trainables.tune_adapter import run_trial
from ecgtune.trainables.tune_search import SearchSettings, run_config


def run_fold_trial(config: dict, data: HeartbeatData, configs: dict[str, dict],
                   folds: list[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> None:
    """Ray Tune trainable: trains configuration `config["member"]` on every fold but `config["fold"]`."""
    train_rows, held_out_rows = folds[config["fold"]]
    run_trial(configs[config["member"]], data, train_rows, held_out_rows, seed=seed)


def run_cross_fit(settings: SearchSettings, data: HeartbeatData, configs: dict[str, dict],
                  folds: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Trains every configuration on every fold as the experiment `settings.experiment_path`, or finishes
    the interrupted experiment there (its name must identify the grid)."""
    with_data = tune.with_parameters(run_fold_trial, data=data, configs=configs, folds=folds, seed=settings.seed)
    trainable = tune.with_resources(with_data, {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial})
    if tune.Tuner.can_restore(settings.experiment_path):
        tuner = tune.Tuner.restore(settings.experiment_path, trainable, resume_unfinished=True, resume_errored=True)
    else:
        grid = {"member": tune.grid_search(sorted(configs)), "fold": tune.grid_search(list(range(len(folds))))}
        tuner = tune.Tuner(
            trainable,
            param_space=grid,
            tune_config=tune.TuneConfig(max_concurrent_trials=settings.max_concurrent,
                                        trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
            run_config=run_config(settings),
        )
    results = tuner.fit()
    failed = [result.path for result in results if result.error is not None or result.metrics.get("diverged")]
    if failed:
        raise EcgtuneError(f"{len(failed)} fold training(s) failed or diverged: {', '.join(failed)}. A failure: see "
                           "error.txt there and run the same command again to retry it; a divergence: retrain "
                           "fewer configurations (--fold-members)")


def _trial_name(trial) -> str:
    return fold_trial_name(trial.config["member"], trial.config["fold"])
