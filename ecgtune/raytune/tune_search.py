"""The distributed search: Ray Tune with Optuna's sampler (or random search) and ASHA (or FIFO).

Searchers and schedulers are chosen by name; the data go to the trials once through Ray's object
store; every trial checkpoints its best epoch; an interrupted experiment resumes with
`Tuner.restore`, which also restores the Optuna searcher's state.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from ray import tune

from ecgtune import defaults, trust
from ecgtune.data import HeartbeatData
from ecgtune.errors import ConfigError, Interrupted
from ecgtune.experiment import refit_estimate_s, refit_margin
from ecgtune.storage import is_remote
from ecgtune.search_spaces import (EpochBudget, as_current, default_point, define_search_space, family_points,
                                   portfolio_points, training_configuration, within_budget)
from ecgtune.raytune.registry import (SCHEDULERS, SEARCHERS, make_scheduler, make_searcher, make_tracker,
                                      study_storage)
from ecgtune.raytune.tune_adapter import run_trial
from ecgtune.raytune.tune_layout import (FIRST_EPOCH_FRACTION, METRIC, MODE, RESULT_FILE, damaged_state_file,
                                         leaderboard_row, ray_state_files, trial_points)

MIN_GRACE_S, MAX_GRACE_S, GRACE_SHARE = 3.0, 300.0, 1 / 120  # the first rung: this share of the search's time
# (with an 80th the laptop main job ranked 31-39 trials, spending most of its time on trials promoted past the
# second rung; with a 120th, 59: BENCHMARKS 11a)
EXPLORED_PER_FAMILY = 2  # variations of each family's starting point tried before TPE takes over
EXPERIMENT_END_S = 10.0  # from the search's stop and its running trials' last reports to its end: Ray's state and
                         # the trials' workers (0.7 and 10.3 s on a laptop, BENCHMARKS 11a)
PACE_TIMEOUT_S = 120.0  # to time the networks before the search; an autoscaling cluster may wait longer
PROGRESS_EVERY_S = 30.0  # a progress line every half minute: often enough to follow, rare enough to read
SLOW_EPOCH_S = 5.0  # epochs longer than this get their progress shown within the epoch
MAX_PENDING_VARIABLE = "TUNE_MAX_PENDING_TRIALS_PG"  # Tune's limit on trials waiting for their resources
PROGRESS_TRIALS_SHOWN = 4  # running trials named on the progress line; the rest are counted


@dataclass(frozen=True)
class SearchSettings:
    """What to search and with which resources (see `python search.py --help` for each)."""

    families: Sequence[str]
    name: str
    storage: str                          # absolute local path or a URI such as s3://bucket/path
    num_samples: int | None = defaults.NUM_SAMPLES  # trials in total, all families (None: until the time budget)
    time_budget_s: float | None = None    # stop the whole search after this many seconds
    searcher: str = defaults.SEARCHER
    scheduler: str = defaults.SCHEDULER
    grace_period_s: float | None = None   # ASHA: seconds of training every trial gets before it can be stopped
                                          # (None: a 120th of the budget, 3 s to 5 minutes)
    reduction_factor: int = defaults.REDUCTION_FACTOR  # ASHA: keep the best 1/reduction_factor at each rung
    budget: EpochBudget = field(default_factory=EpochBudget)
    cpus_per_trial: float = defaults.CPUS_PER_TRIAL
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    max_failures: int = defaults.MAX_FAILURES  # retries of a failed trial, each from its last checkpoint
    seed: int = defaults.SEED
    refit_rows: int | None = None         # with a time budget: end the search early enough to refit the best
    refit_max_s: float | None = None      # trial on this many rows, unless that would take longer than this
    journal: str | None = None            # a local file for the Optuna study (optuna-dashboard reads it live)
    portfolio_first: bool = False         # try the portfolio before the families' starting points
    long_trial_points: list[dict] = field(default_factory=list)  # when set, the only first points (long trials)
    long_trial_seconds: list[float] = field(default_factory=list)  # their time allowances (`TrainConfig`), in order
    warm_points: list[dict] = field(default_factory=list)  # an earlier search's best points, tried first of all
    tracker: str | None = None            # "mlflow" or "wandb": every trial's configuration and metrics logged there
    tracking_uri: str | None = None       # MLflow's (see `ecgtune.tracking.mlflow_uri`)
    ran_points: list[dict] = field(default_factory=list)  # first points already trained here (a rebuilt search)

    def __post_init__(self):
        if self.searcher not in SEARCHERS:
            raise ConfigError(f"unknown searcher {self.searcher!r}; valid: {', '.join(SEARCHERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"unknown scheduler {self.scheduler!r}; valid: {', '.join(SCHEDULERS)}")

    @property
    def experiment_path(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def threads_per_trial(self) -> int:
        """CPU threads a trial trains on: the CPUs it was given."""
        return max(1, int(self.cpus_per_trial))

    @property
    def grace_seconds(self) -> float:
        """ASHA's first rung: the given seconds, or a share of the search's time."""
        if self.grace_period_s is not None:
            return self.grace_period_s
        return min(MAX_GRACE_S, max(MIN_GRACE_S, GRACE_SHARE * (self.time_budget_s or MAX_GRACE_S / GRACE_SHARE)))


def first_points(settings: SearchSettings, variations: bool = True) -> list[dict]:
    """The points the TPE searcher tries first, in order and each once: an earlier search's best
    (`--warm-start`); every family's compact starting point (so that even a short search tries every
    family) and the shipped portfolio, the portfolio first where `portfolio_first`; then, with
    `variations`, EXPLORED_PER_FAMILY variations of each family's start. Long trials try their chosen
    points instead (`long_trial_points`). A configuration comes once, at its first place, whatever its
    epochs; points in `ran_points` are left out."""
    if settings.long_trial_points:
        candidates = [within_budget(point, settings.budget) for point in settings.long_trial_points]
    else:
        warm = [within_budget(point, settings.budget) for point in settings.warm_points]
        starts = [default_point(family, settings.budget) for family in settings.families]
        portfolio = portfolio_points(settings.families, settings.budget)
        first = portfolio + starts if settings.portfolio_first else starts + portfolio
        explored = family_points(settings.families, EXPLORED_PER_FAMILY, settings.budget, settings.seed)
        candidates = warm + first + (explored if variations else [])
    points, configurations = [], []
    for point in candidates:
        ran = any(all(done[key] == value for key, value in point.items() if key in done)
                  for done in settings.ran_points)
        # once per configuration whatever its epochs: the portfolio's first is a family's start trained
        # longer (one of four long trials was a repeat, BENCHMARKS 11g)
        configuration = training_configuration(point)
        if configuration not in configurations and not ran:
            points.append(point)
            configurations.append(configuration)
    return points


def earlier_trials(journal: Path, study_name: str, families: Sequence[str]):
    """The finished trials of these families in an earlier experiment's Optuna study, best first."""
    from ecgtune.analysis import finished_trials

    finished = [trial for trial in finished_trials(journal, study_name) if trial.params.get("family") in families]
    # ranked by the best epoch each reported (Ray tells the study a trial's last one)
    return sorted(finished, key=lambda trial: (min([trial.value, *trial.intermediate_values.values()]), trial.number))


def tell_earlier_results(settings: SearchSettings, trials) -> int:
    """Records an earlier search's finished trials, with their scores, in this search's study before it
    starts, so that TPE begins from what that search learnt (the data must be the same). Each is read
    through this search's space, its epochs brought within this range; one that no longer fits the
    space (another version's choices) is left out. Returns how many were recorded."""
    import optuna

    study = optuna.create_study(direction="minimize", **study_storage(settings), load_if_exists=True)
    recorded = 0
    for trial in trials:
        point = optuna.trial.FixedTrial(within_budget(as_current(trial.params), settings.budget))
        try:
            define_search_space(point, settings.families, settings.budget)
            study.add_trial(optuna.trial.create_trial(params=point.params, distributions=point.distributions,
                                                      value=trial.value))
        except ValueError:  # a parameter missing, or a value outside this space
            continue
        recorded += 1
    return recorded


def make_trainable(settings: SearchSettings, data: HeartbeatData, train_rows: np.ndarray, val_rows: np.ndarray,
                   trainable: Callable = run_trial):
    """The trial function with its resources and the data placed once in the object store."""
    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    with_data = tune.with_parameters(trainable, data=data, train_rows=train_rows, val_rows=val_rows, seed=settings.seed,
                                     threads=settings.threads_per_trial, first_epoch_fraction=FIRST_EPOCH_FRACTION,
                                     time_allowances=list(zip(settings.long_trial_points, settings.long_trial_seconds)))
    return tune.with_resources(with_data, resources)


class RefitReserve(tune.Stopper):
    """Ends the search when what is left of its time is what the best trial so far would need to be
    refit on every row (`refit_estimate_s`, with `refit_margin`), plus the wait for the running trials
    to stop (a trial only stops at its next report, expected one epoch after its last: on a laptop
    with real data an epoch took up to 21 s) and the end of Ray's experiment (EXPERIMENT_END_S).
    Without that room the refit does not run. A refit that would take longer than `max_seconds` is not
    reserved for: the search then uses all of its time."""

    def __init__(self, time_budget_s: float, training_rows: int, refit_rows: int, max_seconds: float):
        self.deadline = time.monotonic() + time_budget_s
        self.training_rows, self.refit_rows, self.max_seconds = training_rows, refit_rows, max_seconds
        self.best: tuple[float, float] | None = None  # (validation abs-sum, refit seconds)
        self.next_reports: dict[str, float] = {}  # trial id -> when its next report is expected

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.next_reports[trial_id] = time.monotonic() + result.get("time_this_iter_s", 0.0)
        if METRIC in result and "seconds" in result:
            refit_seconds = refit_estimate_s(result["seconds"], result["epoch"], result["epoch"],
                                             self.refit_rows / self.training_rows)
            if self.best is None or result[METRIC] < self.best[0]:
                self.best = (result[METRIC], refit_seconds)
        return False

    def reserve(self) -> float:
        """Seconds kept back for the refit, with its margin and the running trials' stop."""
        if self.best is None or refit_margin(self.best[1]) > self.max_seconds:
            return 0.0
        stopping = max([0.0, *self.next_reports.values()]) - time.monotonic()
        return refit_margin(self.best[1]) + max(0.0, stopping) + EXPERIMENT_END_S

    def stop_all(self) -> bool:
        return time.monotonic() >= self.deadline - self.reserve()


class SignState(tune.Callback):
    """Keeps the experiment's signature (`ecgtune.trust`) current while it runs, so that a run killed
    mid-way can usually be resumed without the user vouching for it."""

    def __init__(self, folder: str, every_s: float = 1.0):
        self.folder, self.every_s, self.signed_at = folder, every_s, 0.0

    def on_step_end(self, iteration: int, trials: list, **info):
        if time.monotonic() - self.signed_at >= self.every_s:
            trust.sign_state(self.folder)
            self.signed_at = time.monotonic()


class ProgressLine(tune.Callback):
    """About every `every_s` seconds, and when the experiment ends, one line a person can follow in
    place of Ray's trial table: trials finished, running and failed, the best validation abs-sum so
    far with its family, and the time left of `time_budget_s`. When epochs take longer than
    SLOW_EPOCH_S, it also says how far the running trials are: epoch, and how much of it is done
    (estimated from the trial's last epoch, as the trials report only at epoch ends)."""

    def __init__(self, time_budget_s: float | None = None, every_s: float = PROGRESS_EVERY_S):
        self.started, self.time_budget_s, self.every_s = time.monotonic(), time_budget_s, every_s
        self.printed_at, self.best = time.monotonic(), None
        # trial id -> (reported at, epoch seconds, epoch, epochs planned: a long trial's re-planned count)
        self.epochs: dict[str, tuple[float, float, int, int | str]] = {}

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info):
        if METRIC in result and (self.best is None or result[METRIC] < self.best[0]):
            self.best = (result[METRIC], trial.config.get("family", "?"))
        if result.get("epoch", 1) > 1 and "time_this_iter_s" in result:  # the first report covers part of one
            planned = result.get("epochs_planned", trial.config.get("train", {}).get("epochs", "?"))
            self.epochs[trial.trial_id] = (time.monotonic(), result["time_this_iter_s"], result["epoch"], planned)

    def _within_epochs(self, trials: list) -> str:
        now, parts = time.monotonic(), []
        for trial in trials:
            if trial.status != "RUNNING" or trial.trial_id not in self.epochs:
                continue
            reported = self.epochs[trial.trial_id]
            if reported[1] < SLOW_EPOCH_S:
                continue
            reported_at, epoch_seconds, epoch, planned = reported
            done = min(0.99, (now - reported_at) / epoch_seconds)
            parts.append(f"{trial.config.get('family', '?')} epoch {epoch + 1}/{planned} {done:.0%}")
        shown = parts[:PROGRESS_TRIALS_SHOWN]
        more = f" and {len(parts) - len(shown)} more" if len(parts) > len(shown) else ""
        return f"; now: {', '.join(shown)}{more}" if shown else ""

    def on_step_end(self, iteration: int, trials: list, **info):
        if time.monotonic() - self.printed_at >= self.every_s:
            self.show(trials)

    def on_experiment_end(self, trials: list, **info):
        self.show(trials)

    def show(self, trials: list) -> None:
        self.printed_at = time.monotonic()
        statuses = [trial.status for trial in trials]
        parts = [f"{statuses.count('TERMINATED')} finished", f"{statuses.count('RUNNING')} running"]
        if statuses.count("ERROR"):
            parts.append(f"{statuses.count('ERROR')} failed")
        if self.best:
            parts.append(f"best validation abs-sum {self.best[0]:g} ({self.best[1]})")
        elapsed = time.monotonic() - self.started
        if self.time_budget_s:
            parts.append(f"{max(0.0, self.time_budget_s - elapsed) / 60:.1f} min left")
        print(f"[{elapsed / 60:5.1f} min] trials: {', '.join(parts)}{self._within_epochs(trials)}", flush=True)


def run_config(settings: SearchSettings, callbacks: Sequence | None = None,
               stop: tune.Stopper | None = None) -> tune.RunConfig:
    """Storage, retries and checkpoint retention (the latest checkpoint holds the best epoch)."""
    return tune.RunConfig(
        stop=stop,
        verbose=0,  # ProgressLine reports instead of Ray's trial table
        name=settings.name,
        storage_path=settings.storage,
        failure_config=tune.FailureConfig(max_failures=settings.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=list(callbacks or []),
    )


def build_tuner(settings: SearchSettings, data: HeartbeatData, train_rows: np.ndarray, val_rows: np.ndarray,
                callbacks: Sequence | None = None, trainable: Callable = run_trial) -> tune.Tuner:
    """A new experiment."""
    if settings.num_samples is None and settings.time_budget_s is None:
        raise ConfigError("a search without a time budget needs a number of trials (--num-samples)")
    tune_config = tune.TuneConfig(
        metric=METRIC, mode=MODE, search_alg=make_searcher(settings), scheduler=make_scheduler(settings),
        num_samples=-1 if settings.num_samples is None else settings.num_samples,  # -1: until time_budget_s
        max_concurrent_trials=settings.max_concurrent,
        time_budget_s=settings.time_budget_s, trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
        # On one machine a trial's worker process outlives it, sparing each new trial a process start and
        # its imports (a quarter of a laptop search's time went to them); on a cluster a fresh process
        # lets Ray place every trial on any node.
        reuse_actors=cluster_nodes() == 1,
    )
    stop = None
    if settings.refit_rows and settings.time_budget_s:
        stop = RefitReserve(settings.time_budget_s, len(train_rows), settings.refit_rows,
                            settings.refit_max_s or settings.time_budget_s)
    callbacks = [*(callbacks or []), SignState(settings.experiment_path), ProgressLine(settings.time_budget_s)]
    if settings.tracker:
        callbacks.append(make_tracker(settings))
    return tune.Tuner(make_trainable(settings, data, train_rows, val_rows, trainable),
                      tune_config=tune_config, run_config=run_config(settings, callbacks, stop))


def _trial_name(trial) -> str:
    return f"{trial.config.get('family', 'trial')}_{trial.trial_id}"


def restore_tuner(settings: SearchSettings, data: HeartbeatData, train_rows: np.ndarray, val_rows: np.ndarray,
                  trainable: Callable = run_trial) -> tune.Tuner:
    """The interrupted experiment at `settings.experiment_path`: finished trials kept, unfinished ones
    resumed from their checkpoints, the searcher (and its Optuna study) restored from its saved state."""
    local = not is_remote(settings.storage)
    if not tune.Tuner.can_restore(settings.experiment_path):
        if local and any(Path(settings.experiment_path).glob(f"*/{RESULT_FILE}")):
            raise RayStateDamaged("tuner.pkl is missing, but trial folders are there")
        raise ConfigError(f"no experiment to resume at {settings.experiment_path}")
    damage = damaged_state_file(Path(settings.experiment_path)) if local else None
    if damage is not None:
        raise RayStateDamaged(damage)
    return tune.Tuner.restore(settings.experiment_path, make_trainable(settings, data, train_rows, val_rows, trainable),
                              resume_unfinished=True)


def experiment_exists(settings: SearchSettings) -> bool:
    """Whether Ray already keeps an experiment at the settings' path, or its trial folders are there
    (whose Ray state was lost): a new search would mix its trials with them."""
    if tune.Tuner.can_restore(settings.experiment_path):
        return True
    return not is_remote(settings.storage) and any(Path(settings.experiment_path).glob(f"*/{RESULT_FILE}"))


def trial_slots(settings: SearchSettings) -> int:
    """How many trials run at once with these settings on the Ray cluster."""
    import ray

    cluster = ray.cluster_resources()  # the epsilon: 1.0 / 0.1 GPU is 9.999... in floating point
    fits = math.floor(cluster.get("CPU", 1.0) / settings.cpus_per_trial + 1e-9)
    if settings.gpus_per_trial > 0:
        fits = min(fits, math.floor(cluster.get("GPU", 0.0) / settings.gpus_per_trial + 1e-9))
    return max(1, min(fits, settings.max_concurrent or fits))


def measure_pace(settings: SearchSettings, signal_length: int, n_classes: int,
                 networks: Sequence[tuple[str, dict, int]]) -> list[float] | None:
    """Seconds per training row of one trial of each (family, model keyword arguments, batch size)
    network, while the search's parallel trials train side by side: one Ray task per parallel slot,
    each with a trial's resources, all at once (trials that share a GPU or a machine slow each other
    down), each timing every network. None when the cluster has not run them within PACE_TIMEOUT_S (an
    autoscaling cluster still waiting for its nodes)."""
    import ray

    task = ray.remote(_time_networks).options(num_cpus=settings.cpus_per_trial, num_gpus=settings.gpus_per_trial)
    pending = [task.remote(list(networks), signal_length, n_classes, settings.threads_per_trial)
               for _ in range(trial_slots(settings))]
    try:
        paces = np.array(ray.get(pending, timeout=PACE_TIMEOUT_S))
    except ray.exceptions.GetTimeoutError:
        for reference in pending:
            ray.cancel(reference, force=True)
        return None
    return paces.mean(axis=0).tolist()


def _time_networks(networks: list[tuple[str, dict, int]], signal_length: int, n_classes: int,
                   threads: int) -> list[float]:
    import torch

    from ecgtune.trainer import training_pace

    torch.set_num_threads(threads)
    return [training_pace(family, model_config, signal_length, n_classes, batch_size)
            for family, model_config, batch_size in networks]


def cluster_nodes() -> int:
    """Live nodes in the Ray cluster."""
    import ray

    return sum(1 for node in ray.nodes() if node["Alive"])


def cluster_gpus() -> float:
    """GPUs in the Ray cluster."""
    import ray

    return float(ray.cluster_resources().get("GPU", 0.0))


def run(settings: SearchSettings, data: HeartbeatData, train_rows: np.ndarray, val_rows: np.ndarray,
        resume: bool = False, callbacks: Sequence | None = None, trainable: Callable = run_trial):
    """Runs a new experiment, or resumes the one at `settings.experiment_path`; returns Ray's ResultGrid
    (of this run's trials only, after a rebuild). Ctrl-C stops it with its state saved and raises
    `Interrupted` (see `fit_or_interrupt`). A resumed experiment whose Ray state cannot be read (a disk
    that filled while Ray wrote it) is rebuilt from its trial folders (`_rebuilt_tuner`)."""
    if resume:
        try:
            tuner = restore_tuner(settings, data, train_rows, val_rows, trainable)
        except RayStateDamaged as error:
            tuner = _rebuilt_tuner(settings, data, train_rows, val_rows, callbacks, trainable, error)
            if tuner is None:
                return []
    else:
        tuner = build_tuner(settings, data, train_rows, val_rows, callbacks, trainable)
    with _pending_trials(trial_slots(settings)):
        results = fit_or_interrupt(tuner, settings.experiment_path)
    _close_orphaned_trials(settings)
    return results


@contextmanager
def _pending_trials(slots: int) -> Iterator[None]:
    """Lets Tune start a trial in every free slot at once. With a searcher such as Optuna's, Tune keeps
    one trial pending at a time unless told otherwise, so slots fill one after another: on one GPU with
    eight slots and trials of a few seconds, about two trials ran at once (BENCHMARKS 11j). A value the
    user set is kept."""
    if MAX_PENDING_VARIABLE in os.environ:
        yield
        return
    os.environ[MAX_PENDING_VARIABLE] = str(slots)
    try:
        yield
    finally:
        del os.environ[MAX_PENDING_VARIABLE]


class RayStateDamaged(Exception):
    """Ray's state of a local experiment is missing or unreadable while its trial folders are there."""




def _rebuilt_tuner(settings: SearchSettings, data: HeartbeatData, train_rows: np.ndarray, val_rows: np.ndarray,
                   callbacks: Sequence | None, trainable: Callable, error: BaseException) -> tune.Tuner | None:
    """A new Ray experiment in the same folder, for an experiment whose Ray state is unreadable: Ray's
    damaged files are moved aside (kept, not deleted), every trial folder stays (the leaderboard and
    the ensemble read them: `tune_layout.folder_rows`), the Optuna study goes on in its journal with
    the scores of its finished trials, and the search runs as many new trials as the plan has left,
    counting every trial folder that reported, and none of the points those folders trained (None
    when none are left)."""
    experiment = Path(settings.experiment_path)
    trials = [path for path in experiment.iterdir() if path.is_dir() and (path / RESULT_FILE).exists()]
    if not trials:
        raise ConfigError(f"{experiment}: Ray's state is unreadable ({error!r}) and no trial folder holds a result; "
                          "start the experiment afresh under another --name") from None
    aside = experiment / time.strftime("damaged-ray-state-%Y%m%d-%H%M%S")
    aside.mkdir()
    for path in ray_state_files(experiment):
        path.rename(aside / path.name)
    print(f"warning: Ray's state in {experiment} is unreadable ({error}); rebuilt from its "
          f"{len(trials)} trial folder(s), which are all kept. Ray's damaged files are in {aside}", file=sys.stderr)
    _close_orphaned_trials(settings)
    if settings.num_samples is not None and len(trials) >= settings.num_samples:
        return None
    left_samples = None if settings.num_samples is None else settings.num_samples - len(trials)
    left = replace(settings, num_samples=left_samples, ran_points=trial_points(experiment))
    return build_tuner(left, data, train_rows, val_rows, callbacks, trainable)


def _close_orphaned_trials(settings: SearchSettings) -> None:
    """Marks failed the study's trials still running once the search is over: those a killed run had
    started after the searcher's last saved state, which the resumed searcher does not know of."""
    if settings.journal is None or not Path(settings.journal).is_file():
        return
    import optuna

    study = optuna.load_study(study_name=settings.name, storage=study_storage(settings)["storage"])
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


def fit_or_interrupt(tuner: tune.Tuner, experiment_path: str):
    """`tuner.fit()`; on a first Ctrl-C, Tune stops the trials and saves the experiment's state, and
    `Interrupted` is raised instead of returning partial results; a second Ctrl-C aborts at once."""
    with _graceful_interrupt() as interrupted:
        results = tuner.fit()
    if interrupted():
        raise Interrupted(f"interrupted: the trials were stopped and the experiment's state kept in {experiment_path}")
    return results


@contextmanager
def _graceful_interrupt() -> Iterator[Callable[[], bool]]:
    """Turns Ctrl-C into Tune's graceful stop and remembers that it came. Tune's own SIGINT handler
    stops just as gracefully, but fit() then returns as if the search had ended, so Tune's handler is
    turned off and ours forwards the stop through SIGUSR1, which Tune handles the same way while its
    loop runs. Outside that loop (SIGUSR1 still ignored) Ctrl-C interrupts at once, as usual."""
    requested = threading.Event()

    def on_interrupt(signum, frame):
        if requested.is_set() or signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN:
            raise KeyboardInterrupt
        requested.set()
        signal.raise_signal(signal.SIGUSR1)

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        yield requested.is_set  # Tune's own handling (no SIGUSR1 on Windows)
        return
    previous = signal.signal(signal.SIGINT, on_interrupt), signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    previous_setting = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGUSR1, previous[1])
        if previous_setting is None:
            del os.environ["TUNE_DISABLE_SIGINT_HANDLER"]
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous_setting


def trial_rows(results) -> list[dict]:
    """One row per trial that reported: its best epoch's figures, its family and where it stands."""
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or frame.empty or METRIC not in frame:
            continue
        frame = frame.sort_values([METRIC, "val_log_loss"], kind="stable")
        rows.append(leaderboard_row(
            frame.iloc[0], epochs_run=int(frame["training_iteration"].max()),
            seconds=float(frame["time_total_s"].max()), status=_status(frame, result),
            checkpoint=result.checkpoint.path if result.checkpoint else ""))
    return rows


def _status(frame, result) -> str:
    if result.error is not None:
        return "error"
    return "diverged" if frame["diverged"].any() else "ok"
