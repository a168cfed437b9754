"""Searchers, schedulers and trackers by name, as Ray Tune looks them up: one name -> factory dict each.

Ray is imported inside the factories, not here, so that the command line can list the names before a
local Ray is started: `ray_session.start_ray` keeps Ray on the loopback interface only when it runs
before Ray is imported.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ecgtune.raytune.tune_layout import METRIC, MODE
from ecgtune.search_spaces import search_space

if TYPE_CHECKING:
    from ecgtune.raytune.tune_search import SearchSettings


def make_searcher(settings: SearchSettings):
    """The searcher named by `settings.searcher` (see SEARCHERS)."""
    return SEARCHERS[settings.searcher](settings)


def make_scheduler(settings: SearchSettings):
    """The scheduler named by `settings.scheduler` (see SCHEDULERS)."""
    return SCHEDULERS[settings.scheduler](settings)


def make_tracker(settings: SearchSettings):
    """The logger callback of the tracker named by `settings.tracker` (see TRACKERS)."""
    return TRACKERS[settings.tracker](settings)


def _optuna_tpe(settings: SearchSettings):
    """Ray's OptunaSearch over the define-by-run space: multivariate TPE with constant liar for
    parallel trials, trying first the points of `first_points`."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "a new study created in memory"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=settings.seed)
    from ecgtune.raytune.tune_search import first_points

    # a first point past the trials to run would wait in the journal for good, queued in optuna-dashboard
    return OptunaSearch(search_space(settings.families, settings.budget), metric=METRIC, mode=MODE, sampler=sampler,
                        points_to_evaluate=first_points(settings)[:settings.num_samples], **study_storage(settings))


def _optuna_random(settings: SearchSettings):
    """Optuna's random sampler over the same space: the family too is drawn uniformly."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(search_space(settings.families, settings.budget), metric=METRIC, mode=MODE,
                        sampler=optuna.samplers.RandomSampler(seed=settings.seed), **study_storage(settings))


def study_storage(settings: SearchSettings) -> dict:
    """OptunaSearch's study in the settings' journal file, named after the experiment (in memory without
    one). The journal is lines of JSON: a resumed search appends to it, and nothing in it runs code."""
    if settings.journal is None:
        return {}
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    # a warm start records the earlier trials before anything else has made the run's folder
    Path(settings.journal).parent.mkdir(parents=True, exist_ok=True)
    return {"study_name": settings.name, "storage": JournalStorage(JournalFileBackend(settings.journal))}


def _asha(settings: SearchSettings):
    """ASHA early stopping. It compares trials at equal training time, not at equal epochs: an epoch
    of a large network costs several of a small one, and time is what the budget is spent in. So a
    slow family is judged by what it reaches in the time a fast one needs, and the first rung (a few
    seconds) is cheap."""
    from ray.tune.schedulers import ASHAScheduler

    longest = max(settings.time_budget_s or 0.0, settings.grace_seconds * settings.reduction_factor ** 4)
    return ASHAScheduler(time_attr="time_total_s", max_t=longest, grace_period=settings.grace_seconds,
                         reduction_factor=settings.reduction_factor)


def _fifo(settings: SearchSettings):
    """No early stopping: every trial runs its whole epoch budget."""
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _mlflow_logger(settings: SearchSettings):
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    # MLflow announces, at INFO, that it creates and updates its new database's tables
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)

    return MLflowLoggerCallback(tracking_uri=settings.tracking_uri, experiment_name=settings.name,
                                tags={"ecgtune": "trial"})


def _wandb_logger(settings: SearchSettings):
    from ray.air.integrations.wandb import WandbLoggerCallback

    from ecgtune.tracking import WANDB_PROJECT

    return WandbLoggerCallback(project=WANDB_PROJECT, group=settings.name)


SEARCHERS: dict[str, Callable[[SearchSettings], object]] = {"optuna": _optuna_tpe, "random": _optuna_random}
TRACKERS: dict[str, Callable[[SearchSettings], object]] = {"mlflow": _mlflow_logger, "wandb": _wandb_logger}
SCHEDULERS: dict[str, Callable[[SearchSettings], object]] = {"asha": _asha, "fifo": _fifo}
