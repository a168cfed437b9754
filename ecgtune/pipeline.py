"""The whole run inside one time budget: data → search → leaderboard → ensemble (selection, decision
rule, refit or cross-fitting) → export → report.

`--time-budget` covers all of it, as AutoGluon's `time_limit` covers a fit: the search is given what
is left after a reserve for the stages that finish the run, and it ends early enough to refit its best
trial on every row when that refit fits in a share of the budget. Every stage's time is recorded in
RUNS_DIR/NAME/timings.json, which the report shows.
"""

from __future__ import annotations

import json
import shlex
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from ecgtune import defaults, experiment, tracking, trust
from ecgtune.atomic import write_text_atomically
from ecgtune.errors import DataWarning, EcgtuneError, Interrupted
from ecgtune.storage import is_remote

TIMINGS_FILE = "timings.json"
REFIT_MAX_SHARE = 0.3                 # of the budget, at most, for retraining the ensemble on every row
FINISH_SHARE, FINISH_MIN_S = 0.02, 15.0  # of the budget (at least 15 s): ensemble, export and report, which took
                                         # 6-9 s on a laptop at 8 and 30 minutes (BENCHMARKS 11a, 11g)
MIN_FREE_BYTES = 256 * 2**20  # a smoke search filled a 50 MB disk; checkpoints and Ray's state need room
MIN_VALIDATION_ROWS_PER_CLASS = 30  # below this a class's threshold moves with a row or two
SEARCH_MIN_EPOCHS = 120  # epochs in all, over every trial: about 40 trials as ASHA cuts them. The laptop main job
                         # buys 129-195 (BENCHMARKS 11a: at 140 a new user's run went long)
MANY_ROWS = 20_000  # training rows of real ECG's size (MIT-BIH: 51,542; the laptop main job's synthetic beats: 8,000)
MANY_ROWS_SEARCH_EPOCHS = 480  # epochs in all that a search on that many rows needs: networks on them kept learning
                               # for 26-44 epochs (BENCHMARKS 11g). 30 CPU minutes bought 255-278 on a fast host,
                               # where long trials beat the search by 21 % (11l); one GPU bought about 1,000 in 4
                               # minutes, and its search won (11k). Rows decide, not an epoch's seconds, which a
                               # faster host crossed while its rows still needed long trials
WARM_START_POINTS = 8  # an earlier search's best configurations retrained first (`--warm-start`)
LONG_TRIAL_SHARE = 0.85  # of the search's time for a long trial's training: its validation passes need the rest
LONG_TRIAL_EPOCHS = 30  # compact networks on real ECG peaked at epochs 35 and 44 of 66 (BENCHMARKS 11g): a shorter
                        # one-cycle schedule anneals by then, and the time left trains more networks
LONG_TRIAL_MARGIN_S = 20.0  # of a long trial's share of the search, outside its own clock: its start (a 30-minute
                            # run's trials started and reported in 3-6 s beyond their training) and Ray's end
REFIT_MIN_EPOCHS = 20  # the fewest a long trial trains to be refit: on held-out real ECG a network refit on every row
                       # for 20 epochs (437.5 per 20,000) matched a search network trained 46 (444.5), and refit
                       # networks beat partners of other families (BENCHMARKS 11n, 11o, 11q)


@dataclass
class Clock:
    """A run's time budget and what each stage spent of it."""

    budget_s: float | None
    started: float = field(default_factory=lambda: time.monotonic())
    stages: dict[str, float] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float | None:
        """Seconds left in the budget (None without a budget)."""
        return None if self.budget_s is None else self.budget_s - self.elapsed()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Times the enclosed stage under `name`."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.monotonic() - began

    def to_dict(self) -> dict:
        return {"budget_s": self.budget_s, "total_s": self.elapsed(), "stages": dict(self.stages)}


@dataclass(frozen=True)
class Resources:
    """Where the trials run: this invocation's choice, not part of the plan (a resumed run may differ)."""

    address: str | None = None
    cpus_per_trial: float = defaults.CPUS_PER_TRIAL
    gpus_per_trial: float | None = None   # None: defaults.GPUS_PER_TRIAL when the cluster has GPUs, else 0
    max_concurrent: int | None = None
    max_failures: int = defaults.MAX_FAILURES


def search_settings(plan: experiment.Plan, resources: Resources, run_dir: Path, time_budget_s: float | None = None):
    """The plan plus the resources as the search layer's settings (on resume, Ray keeps the experiment's
    saved retry and concurrency settings)."""
    from ecgtune.search_spaces import EpochBudget
    from ecgtune.raytune import tune_search

    gpus = resources.gpus_per_trial
    if gpus is None:
        gpus = defaults.GPUS_PER_TRIAL if tune_search.cluster_gpus() > 0 else 0.0
    return tune_search.SearchSettings(
        families=plan.families, name=run_dir.name, storage=plan.storage, num_samples=plan.num_samples,
        time_budget_s=time_budget_s, searcher=plan.searcher, scheduler=plan.scheduler,
        grace_period_s=plan.grace_period_s, reduction_factor=plan.reduction_factor,
        # a new plan's range is settled only once Ray can time the trials (`settle_epochs`)
        budget=EpochBudget(plan.min_epochs, plan.max_epochs) if plan.min_epochs and plan.max_epochs else EpochBudget(),
        cpus_per_trial=resources.cpus_per_trial,
        gpus_per_trial=gpus, max_concurrent=resources.max_concurrent, max_failures=resources.max_failures,
        seed=plan.seed, journal=str(run_dir.resolve() / experiment.OPTUNA_JOURNAL),
        long_trial_points=plan.long_trial_points, long_trial_seconds=plan.long_trial_seconds,
        tracker=plan.tracker, tracking_uri=tracking.mlflow_uri(run_dir.parent) if plan.tracker == "mlflow" else None,
    )


def search_time(clock: Clock) -> float | None:
    """Seconds the search may take at most: what is left of the budget after the finishing stages'
    reserve (the search itself ends earlier to leave its best trial's refit time)."""
    if clock.budget_s is None:
        return None
    reserve = max(FINISH_MIN_S, FINISH_SHARE * clock.budget_s)
    left = clock.left() - reserve
    if left < 1.0:
        raise EcgtuneError(f"--time-budget {clock.budget_s / 60:g} minutes leaves no time to search after "
                           f"{reserve:.0f} s for the ensemble, the export and the report; give more time")
    return left


def settle_epochs(plan: experiment.Plan, settings, clock: Clock, data, training_rows: int) -> experiment.Plan:
    """The plan with its epoch range settled: what the user gave; with a time budget, the rest from the
    trials' measured pace (`EpochBudget.fitting`), so that a search whose budget pays for long trials
    (on a GPU, or on small data) trains them long enough; without one, or when the pace could not be
    measured, the defaults. A budget too short to search (`too_short_to_search`) trains the searcher's
    first points instead, as long as the search's time pays for (`_long_trials`)."""
    from ecgtune.search_spaces import EpochBudget

    if plan.min_epochs and plan.max_epochs:
        return plan
    budget = EpochBudget()
    if clock.budget_s is not None:
        fitted = _fit_to_pace(plan, settings, clock, data, training_rows)
        if isinstance(fitted, experiment.Plan):
            return fitted
        budget = fitted or budget
    if plan.min_epochs:  # the user's shortest, and at least that for the longest
        return replace(plan, max_epochs=max(budget.max_epochs, plan.min_epochs))
    if plan.max_epochs:
        return replace(plan, min_epochs=min(budget.min_epochs, plan.max_epochs))
    return replace(plan, min_epochs=budget.min_epochs, max_epochs=budget.max_epochs)


def _fit_to_pace(plan: experiment.Plan, settings, clock: Clock, data, training_rows: int):
    """Times the networks on the cluster; returns the epoch range that the search's time pays for, or
    the plan of long trials when it pays for too few epochs to search, or None when unmeasured."""
    from ecgtune.raytune import tune_search
    from ecgtune.search_spaces import EpochBudget, default_point, point_workload

    slots = tune_search.trial_slots(settings)
    compact = [point_workload(default_point(family)) for family in settings.families]
    paces = tune_search.measure_pace(settings, data.signal_length, data.n_classes, compact)
    if paces is None:
        print(f"warning: the cluster did not time the networks within {tune_search.PACE_TIMEOUT_S:.0f} s; "
              "trials sample the default epochs", file=sys.stderr)
        return None
    seconds = search_time(clock)  # after the timing, which took some of it
    epoch_seconds = statistics.median(paces) * training_rows
    pace_words = (f"an epoch of {training_rows:,} rows takes about {epoch_seconds:.1f} s per trial with {slots} at "
                  f"once; the search has about {seconds / 60:.1f} min")
    short = too_short_to_search(seconds, epoch_seconds, slots, training_rows)
    if short and not plan.min_epochs and not plan.max_epochs:
        print(f"too few epochs to search: the budget buys about {seconds * slots / epoch_seconds:.0f} in all, "
              f"{epochs_to_search(training_rows)} needed ({pace_words}); the searcher's first points train long "
              "instead. A longer --time-budget, or --min-epochs and --max-epochs, searches", file=sys.stderr)
        return _long_trials(plan, settings, clock, data, training_rows, paces, slots)
    budget = EpochBudget.fitting(seconds, epoch_seconds)
    print(f"epochs: {budget.min_epochs}-{budget.max_epochs} per trial ({pace_words})", file=sys.stderr)
    return budget


def _long_trials(plan: experiment.Plan, settings, clock: Clock, data, training_rows: int,
                 compact_paces: list[float], slots: int) -> experiment.Plan:
    """The plan of long trials: the searcher's first points (the portfolio first), one per parallel
    slot, each for as many epochs as the search's time pays for at its own pace. Where a slot's time
    still gives two networks LONG_TRIAL_EPOCHS each, its network shares the slot with a partner that
    trains after it, for as many epochs: the next of the first points that fits (the portfolio, then
    the families' starts, fastest first). Schedules of that length already anneal, and more networks, of
    more families, make a better ensemble (BENCHMARKS 11g). Each point is timed with its own network,
    batch size and rows per epoch (SMOTE's are several times the rows on real ECG). With the refit on,
    where the first round's networks still get REFIT_MIN_EPOCHS when the search's time also pays for
    refitting them on every row (`_training_seconds_with_refit`), they train that long and are refit;
    otherwise the plan drops the refit, so that the search keeps no time back for it. Each trial's share of
    its slot's time goes with the plan (`long_trial_seconds`): its epochs are re-planned at its own pace
    (`TrainConfig.time_allowance_s`), as timing beforehand missed the trials' pace by a sixth either way."""
    from ecgtune.data import rows_per_epoch
    from ecgtune.raytune import tune_search
    from ecgtune.search_spaces import point_workload
    from ecgtune.trainer import REPLAN_AFTER_EPOCH

    # the family starts that follow the portfolio, fastest first: partners fit more often
    fastest_first = [family for _, family in sorted(zip(compact_paces, settings.families))]
    plan = replace(plan, families=fastest_first)
    # the starts' random variations only to fill the slots: one with the L1 loss trained to 1590 where the
    # portfolio and the starts reached 230-292
    long_settings = replace(settings, families=fastest_first, portfolio_first=True)
    candidates = tune_search.first_points(long_settings, variations=False)
    if len(candidates) < slots:
        candidates = tune_search.first_points(long_settings)[:slots]

    def seconds_per_epoch(points: list[dict]) -> list[float]:
        """Timed with each point's network and batch size; the split is stratified, so its training
        rows resample as all the rows do."""
        paces = tune_search.measure_pace(settings, data.signal_length, data.n_classes,
                                         [point_workload(point) for point in points])
        return [pace * training_rows * rows_per_epoch(data.labels, point["data/imbalance"]) / len(data.labels)
                for pace, point in zip(paces or [max(compact_paces)] * len(points), points)]

    cost = seconds_per_epoch(candidates[:slots])
    quickest_partner_s = min(compact_paces) * training_rows
    partners_could_fit = LONG_TRIAL_SHARE * search_time(clock) / (min(cost) + quickest_partner_s) >= LONG_TRIAL_EPOCHS
    if partners_could_fit and len(candidates) > slots:  # else the partners' timing would be time lost
        cost += seconds_per_epoch(candidates[slots:])
    candidates = candidates[:len(cost)]
    seconds = search_time(clock)  # after the timing
    order, epochs = _share_slots(cost, slots, LONG_TRIAL_SHARE * seconds)
    refit_words = ""
    if plan.refit and plan.folds <= 1:
        refit_order, refit_epochs = _share_slots(cost, slots, _training_seconds_with_refit(seconds, plan.val_fraction))
        shortest = min(refit_epochs[index] for index in refit_order[:slots])
        if shortest >= REFIT_MIN_EPOCHS:
            order, epochs = refit_order, refit_epochs
            refit_words = f", then refit on all {len(data):,} rows"
        else:
            plan = replace(plan, refit=False)
            refit_words = (f", not refit: beside a refit on every row a network would train {shortest} epochs, "
                           f"under {REFIT_MIN_EPOCHS}")
    points = [{**candidates[index], "train/epochs": max(1, epochs[index])} for index in order]
    counts = [point["train/epochs"] for point in points]
    # each trial's share of its slot, which it fills at its own pace (`TrainConfig.time_allowance_s`)
    allowances = [max(0.0, epochs[index] * cost[index] / LONG_TRIAL_SHARE - LONG_TRIAL_MARGIN_S) for index in order]
    print(f"epochs: {', '.join(map(str, counts))} for {len(points)} trial(s), {slots} at a time{refit_words}; "
          f"after {REPLAN_AFTER_EPOCH} epochs each re-plans at its own pace to fill its share: "
          f"{', '.join(f'{seconds:.0f}' for seconds in allowances)} s", file=sys.stderr)
    return replace(plan, min_epochs=min(counts), max_epochs=max(counts), num_samples=len(points), scheduler="fifo",
                   long_trial_points=points, long_trial_seconds=allowances)


def _training_seconds_with_refit(search_seconds: float, val_fraction: float) -> float:
    """A slot's seconds of long-trial training when its networks are then refit on every row within the
    search's time: the refit repeats the same epochs on 1 / (1 - val_fraction) times the rows, planned
    with `refit_margin` after the end of the search's Ray experiment. A network refit on every row
    scored 6 % better on held-out beats than the same network trained on the search's rows (BENCHMARKS 11g)."""
    from ecgtune.raytune.tune_search import EXPERIMENT_END_S

    row_ratio = 1.0 / (1.0 - val_fraction)
    usable = search_seconds - EXPERIMENT_END_S - experiment.REFIT_START_S
    return LONG_TRIAL_SHARE * usable / (1.0 + (1.0 + experiment.REFIT_MARGIN_SHARE) * row_ratio)


def _share_slots(cost: list[float], slots: int, slot_seconds: float) -> tuple[list[int], dict[int, int]]:
    """Which long trials train, in which order, and their epochs, from the candidates' seconds per
    epoch: the first `slots` train first, each alone for `slot_seconds` unless a later candidate fits
    beside it, both getting LONG_TRIAL_EPOCHS or more, in which case they share the slot equally in
    epochs. The quickest choose their partners first; a partner starts when a slot frees, so the
    partners come in the order their first networks end."""
    first_round = list(range(min(slots, len(cost))))
    epochs = {index: int(slot_seconds / cost[index]) for index in first_round}
    free, pairs = list(range(len(first_round), len(cost))), []
    for first in sorted(first_round, key=lambda index: cost[index]):
        partner = next((index for index in free if slot_seconds / (cost[first] + cost[index]) >= LONG_TRIAL_EPOCHS),
                       None)
        if partner is not None:
            free.remove(partner)
            pairs.append((first, partner))
            epochs[first] = epochs[partner] = int(slot_seconds / (cost[first] + cost[partner]))
    second_round = [partner for first, partner in sorted(pairs, key=lambda pair: epochs[pair[0]] * cost[pair[0]])]
    return first_round + second_round, epochs


def epochs_to_search(training_rows: int) -> int:
    """Epochs in all, over every parallel slot, that a search needs: SEARCH_MIN_EPOCHS, or
    MANY_ROWS_SEARCH_EPOCHS on MANY_ROWS training rows or more."""
    return MANY_ROWS_SEARCH_EPOCHS if training_rows >= MANY_ROWS else SEARCH_MIN_EPOCHS


def too_short_to_search(search_seconds: float, epoch_seconds: float, slots: int, training_rows: int) -> bool:
    """Whether the search's time buys fewer epochs over all its parallel slots than `epochs_to_search`.
    Then a search spreads them over trials too short to learn, and good configurations trained long do
    better (BENCHMARKS 11g: 2 CPU cores with 51,542 training rows buy about 33 epochs in 10 minutes)."""
    return search_seconds * slots / epoch_seconds < epochs_to_search(training_rows)


def run_search(plan: experiment.Plan, resources: Resources, run_dir: Path, resume: bool = False,
               use_cache: bool = True, clock: Clock | None = None,
               trust_state: bool = False) -> tuple[dict | None, Path | None]:
    """Runs (or resumes) the experiment end to end and writes its report; returns the ensemble's summary
    and bundle folder (None for both when the trials live in remote storage, where the ensemble is built
    later). Ctrl-C raises `Interrupted`, naming the command that continues the run: trials stop with
    their state kept, and nothing is exported. A resumed experiment's state must carry this user's
    signature (`ecgtune.trust`), unless `trust_state` vouches for it."""
    try:
        return _run_stages(plan, resources, run_dir, resume, use_cache, clock or Clock(plan.time_budget_s),
                           trust_state)
    except (Interrupted, KeyboardInterrupt) as error:
        kept = f"{error}; " if isinstance(error, Interrupted) else "interrupted; "
        raise Interrupted(f"{kept}no bundle was exported by this run. Continue it with: python search.py --resume "
                          f"--name {shlex.quote(run_dir.name)} --runs-dir {shlex.quote(str(run_dir.parent))}") from None


def _run_stages(plan: experiment.Plan, resources: Resources, run_dir: Path, resume: bool, use_cache: bool,
                clock: Clock, trust_state: bool) -> tuple[dict | None, Path | None]:
    from ecgtune.report import format_ensemble, format_table, leaderboard_tables, rank_rows, write_csv

    if resume and (run_dir / TIMINGS_FILE).is_file():  # written last, once the report is out
        print(f"{run_dir} has finished; nothing to resume. Its bundle: {run_dir / 'bundle'}; to rebuild the "
              f"ensemble: python -m ecgtune ensemble --experiment {shlex.quote(str(run_dir))}")
        return None, run_dir / "bundle"
    with clock.stage("prepare"):
        # search.json beside the run's outputs, Ray's state where the trials are stored
        state_folders = list(dict.fromkeys([str(run_dir), f"{plan.storage.rstrip('/')}/{run_dir.name}"]))
        for folder in state_folders if resume else ():
            if trust_state:
                trust.sign_state(folder)
            trust.verify_state(folder)
        check_free_space([run_dir.parent, *([] if is_remote(plan.storage) else [Path(plan.storage)])])
        data = experiment.load_data(plan, use_cache=use_cache)
        train_rows, val_rows = experiment.split(plan, data)
        print(f"data: {data.source}: {len(data)} rows x {data.signal_length} samples, {data.n_classes} classes "
              f"(train {len(train_rows)}, validation {len(val_rows)})", file=sys.stderr)
        warn_of_few_validation_rows(data.labels[val_rows], data.source)
        from ecgtune.raytune.ray_session import start_ray

        start_ray(resources.address)  # before Ray is imported
        from ecgtune.raytune import tune_search
        from ecgtune.raytune.tune_layout import folder_rows

        settings = search_settings(plan, resources, run_dir)
        if not resume and tune_search.experiment_exists(settings):
            raise EcgtuneError(f"{settings.experiment_path} already holds an experiment; "
                               "continue it with --resume or pick another --name")
        if not resume:
            from ecgtune.search_spaces import as_current

            earlier = _earlier_trials(plan) if plan.warm_start else []
            warm_points = [as_current(trial.params) for trial in earlier[:WARM_START_POINTS]]
            plan = settle_epochs(plan, replace(settings, warm_points=warm_points), clock, data, len(train_rows))
            settings = replace(search_settings(plan, resources, run_dir), warm_points=warm_points)
            # a journal without Ray's state is a start that died before its first save: begin the study anew
            Path(settings.journal).unlink(missing_ok=True)
            if earlier:
                _warm_start(plan, settings, earlier, data)
        experiment.save_plan(run_dir, plan, data, val_rows, resume=resume)
        experiment.calibration(run_dir)
        trust.sign_state(run_dir)
    with clock.stage("search"):
        refit_max_s = REFIT_MAX_SHARE * clock.budget_s if clock.budget_s and plan.refit else None
        settings = replace(settings, time_budget_s=search_time(clock), refit_rows=len(data) if plan.refit else None,
                           refit_max_s=refit_max_s)
        try:
            results = tune_search.run(settings, data, train_rows, val_rows, resume=resume)
        finally:
            for folder in state_folders:
                trust.sign_state(folder)
    with clock.stage("leaderboard"):
        # read from the trial folders where they are local: a search rebuilt after its Ray state was
        # damaged returns only its own trials
        reported = tune_search.trial_rows(results)
        rows = rank_rows(reported if is_remote(settings.storage) else folder_rows(Path(settings.experiment_path)))
        silent = len(results) - len(reported)
        if not rows:
            raise EcgtuneError(f"no trial reported a result; see {settings.experiment_path}")
        write_csv(rows, run_dir / experiment.LEADERBOARD_FILE)
    for title, table in leaderboard_tables(rows):
        print(f"\n{title}\n{format_table(table)}")
    if silent:
        print(f"\n{silent} trial(s) stopped or failed before their first epoch ended; not ranked")
    print(f"\nleaderboard: {run_dir / experiment.LEADERBOARD_FILE}; trials and checkpoints: "
          f"{settings.experiment_path}")
    if not is_remote(settings.storage):
        print(f"learning curves: tensorboard --logdir {shlex.quote(settings.experiment_path)}")
    if plan.tracker == "mlflow":
        print(f"tracked in MLflow: mlflow ui --backend-store-uri {settings.tracking_uri} (experiment {run_dir.name})")
    elif plan.tracker == "wandb":
        print(f"tracked in Weights & Biases: project {tracking.WANDB_PROJECT}, group {run_dir.name}")
    summary = bundle = None
    if not is_remote(settings.storage):
        options = experiment.EnsembleOptions.from_plan(plan)
        with clock.stage("ensemble, refit and export"):
            refit_seconds = _refit_seconds(clock)
            summary, bundle = experiment.ensemble_experiment(run_dir, options, settings, refit_seconds=refit_seconds)
        print(f"\n{format_ensemble(summary)}")
        print(f"ensemble: {run_dir / experiment.ENSEMBLE_FILE}; bundle: {bundle}")
        if plan.tracker:
            try:
                tracking.log_ensemble(plan.tracker, run_dir.name, settings.tracking_uri, summary, bundle)
            except Exception as error:  # the tracker is a copy: its failure must not lose the run's own record
                print(f"warning: the ensemble was not logged to {plan.tracker} ({type(error).__name__}: {error})",
                      file=sys.stderr)
    with clock.stage("report"):
        from ecgtune.html_report import write_report

        save_timings(run_dir, clock)
        report = write_report(run_dir)
    save_timings(run_dir, clock)
    print(f"report: {report}")
    if bundle is not None:
        print(f"next: python -m ecgtune predict --bundle {shlex.quote(str(bundle))} --data testA.csv --out submit.csv")
    return summary, bundle


def _earlier_trials(plan: experiment.Plan) -> list:
    """The finished trials of the plan's families in the experiment named by `--warm-start`, best first."""
    from ecgtune.raytune import tune_search

    folder = Path(plan.warm_start)
    journal = folder / experiment.OPTUNA_JOURNAL
    if not (folder / experiment.PLAN_FILE).is_file():
        raise EcgtuneError(f"--warm-start {folder}: no experiment there ({experiment.PLAN_FILE} is missing)")
    if not journal.is_file():
        raise EcgtuneError(f"--warm-start {folder}: no {experiment.OPTUNA_JOURNAL} there (an experiment from before "
                           "ecgtune kept its study on disk); nothing to start from")
    trials = tune_search.earlier_trials(journal, folder.name, plan.families)
    if not trials:
        raise EcgtuneError(f"--warm-start {folder}: no finished trial of {', '.join(plan.families)} there")
    return trials


def _warm_start(plan: experiment.Plan, settings, earlier: list, data) -> None:
    """Seeds the new search: the earlier experiment's best configurations are its first points, and when
    its scores were measured on the same validation rows (the same data, fraction and seed), its
    searcher also starts from every earlier trial's score."""
    from ecgtune.raytune import tune_search

    folder = Path(plan.warm_start)
    old = experiment.load_plan(folder)
    comparable = (experiment.saved_fingerprint(folder) == experiment.fingerprint(data)
                  and (old.val_fraction, old.seed) == (plan.val_fraction, plan.seed))
    said = "; its scores are not passed on: they were measured on other validation rows"
    if comparable:
        said = (f", and the searcher starts from the scores of {tune_search.tell_earlier_results(settings, earlier)} "
                f"of its {len(earlier)} finished trial(s)")
    print(f"warm start from {folder}: its best {len(settings.warm_points)} configuration(s) are tried first{said}",
          file=sys.stderr)


def warn_of_few_validation_rows(labels, source: str) -> None:
    """Warns when a class has so few validation rows that the ensemble's selection and its decision
    threshold for that class rest on a handful of beats."""
    import numpy as np

    counts = np.bincount(labels)
    scarce = [f"class {label}: {count}" for label, count in enumerate(counts) if count < MIN_VALIDATION_ROWS_PER_CLASS]
    if scarce:
        warnings.warn(DataWarning(
            f"{source}: few validation rows ({', '.join(scarce)}; fewer than {MIN_VALIDATION_ROWS_PER_CLASS}): the "
            "ensemble and its per-class thresholds are chosen on them, so their scores are noisy; more labelled rows "
            "or a larger --val-fraction help"), stacklevel=2)


def check_free_space(folders: list[Path], needed: int = MIN_FREE_BYTES) -> None:
    """Refuses to start when a folder the run writes to has less than `needed` bytes free: a disk that
    fills mid-search leaves truncated checkpoints and state behind."""
    for folder in folders:
        existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
        free = shutil.disk_usage(existing).free
        if free < needed:
            raise EcgtuneError(f"{folder}: only {free / 2**20:.0f} MB free on its disk; a search needs at least "
                               f"{needed / 2**20:.0f} MB for checkpoints and Ray's state. Free some space or "
                               "choose another --runs-dir")


def _refit_seconds(clock: Clock) -> float | None:
    """The refit's time: what is left of the budget but the finishing stages' reserve."""
    left = clock.left()
    if left is None:
        return None
    return max(0.0, left - max(FINISH_MIN_S, FINISH_SHARE * clock.budget_s))


def save_timings(run_dir: Path, clock: Clock) -> None:
    """Writes RUNS_DIR/NAME/timings.json: the budget and each stage's seconds."""
    write_text_atomically(run_dir / TIMINGS_FILE, json.dumps(clock.to_dict(), indent=2))
