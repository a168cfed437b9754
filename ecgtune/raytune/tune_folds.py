"""Retraining chosen configurations: on K stratified folds of every labelled row (cross-fitted members),
or on every row at once (the refit, a single "fold" that holds no rows out).

Each (configuration, fold) pair is one Ray Tune trial of a grid, trained on the other K-1 folds and
validated on its own fold, so every row gets an out-of-fold prediction from every configuration.
The trials form their own experiment beside the search's; their checkpoints are those of the search
(see `tune_adapter`), in folders named `<member>_fold<k>`. Run the same grid again after an
interruption and Ray restores it: finished folds are kept, unfinished ones resume from their
checkpoints.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
from ray import tune

from ecgtune import trust
from ecgtune.data import HeartbeatData
from ecgtune.ensemble.library import fold_trial_name
from ecgtune.raytune.tune_adapter import run_trial
from ecgtune.raytune.tune_search import SearchSettings, fit_or_interrupt, run_config


def run_fold_trial(config: dict, data: HeartbeatData, configs: dict[str, dict],
                   folds: list[tuple[np.ndarray, np.ndarray]], seed: int = 0, threads: int = 1,
                   seeds: dict[str, int] | None = None) -> None:
    """Ray Tune trainable: trains configuration `config["member"]` on every fold but `config["fold"]`,
    from `seed` plus the member's entry in `seeds`."""
    train_rows, held_out_rows = folds[config["fold"]]
    member_seed = seed + (seeds or {}).get(config["member"], 0)
    run_trial(configs[config["member"]], data, train_rows, held_out_rows, seed=member_seed, threads=threads)


def retrain(settings: SearchSettings, data: HeartbeatData, configs: dict[str, dict],
            folds: list[tuple[np.ndarray, np.ndarray]], time_budget_s: float | None = None,
            seeds: dict[str, int] | None = None) -> list[str]:
    """Trains every configuration on every fold as the experiment `settings.experiment_path`, or finishes
    the interrupted experiment there (its name must identify the grid), within `time_budget_s`, each
    from the search's seed plus its entry in `seeds`; returns the folders of the trainings that failed
    or diverged."""
    with_data = tune.with_parameters(run_fold_trial, data=data, configs=configs, folds=folds, seed=settings.seed,
                                     threads=settings.threads_per_trial, seeds=seeds)
    trainable = tune.with_resources(with_data, {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial})
    if tune.Tuner.can_restore(settings.experiment_path) and not trust.is_signed(settings.experiment_path):
        # Derived state that only costs time to redo: start it afresh rather than load unsigned pickles.
        warnings.warn(f"{settings.experiment_path}: retraining state not signed by this user; retraining afresh")
        shutil.rmtree(settings.experiment_path)
    if tune.Tuner.can_restore(settings.experiment_path):
        tuner = tune.Tuner.restore(settings.experiment_path, trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=retraining_grid(configs, len(folds)),
            tune_config=tune.TuneConfig(max_concurrent_trials=settings.max_concurrent, time_budget_s=time_budget_s,
                                        trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
            run_config=run_config(settings),
        )
    try:
        results = fit_or_interrupt(tuner, settings.experiment_path)
    finally:
        trust.sign_state(settings.experiment_path)
    return [result.path for result in results if result.error is not None or result.metrics.get("diverged")]


def retraining_grid(configs: dict[str, dict], folds: int) -> dict:
    """Every (configuration, fold) pair, configurations in the order given: Tune starts the trials in
    the grid's order, and the refit plans its networks heaviest first, so that one whose refit would
    not finish in time is a light one (`experiment.plan_refit`)."""
    return {"member": tune.grid_search(list(configs)), "fold": tune.grid_search(list(range(folds)))}


def _trial_name(trial) -> str:
    return fold_trial_name(trial.config["member"], trial.config["fold"])
