"""An experiment's plan: which families are searched on which data, split and budget.

The plan is saved as RUNS_DIR/NAME/search.json with a fingerprint of the data, so that `--resume`
continues with exactly the same data, split and settings (and refuses data that changed), and the
validation rows are saved as RUNS_DIR/NAME/validation.npz for the ensemble stage.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import xxhash

from ecgtune import defaults
from ecgtune.atomic import atomic_path, write_text_atomically
from ecgtune.checkpoint import read_checkpoint
from ecgtune.data import HeartbeatData, holdout_split, load_dataset, make_synthetic
from ecgtune.ensemble.summary import CrossFitting, EnsembleSummary, Holdout, Refit
from ecgtune.errors import ConfigError, DataError, EcgtuneError
from ecgtune.raytune.tune_layout import FIRST_EPOCH_FRACTION
from ecgtune.storage import is_remote

PLAN_FILE, VALIDATION_FILE, ENSEMBLE_FILE, BUNDLE_DIR = "search.json", "validation.npz", "ensemble.json", "bundle"
ENSEMBLE_PROBS_FILE, LEADERBOARD_FILE = "ensemble_probs.npz", "leaderboard.csv"
OPTUNA_JOURNAL = "optuna.journal"  # the search's Optuna study: `optuna-dashboard runs/NAME/optuna.journal`
COST_ROWS = 10_000  # a prediction budget is in seconds per this many beats
COST_UNIT = ("seconds to predict 10,000 beats in ONNX Runtime, from the networks' multiply-accumulates and the "
             "experiment's calibration of this machine")


@dataclass(frozen=True)
class Plan:
    """What an experiment searches; everything `--resume` must keep the same."""

    families: list[str]
    storage: str              # where Ray keeps the trials: an absolute folder or a URI (s3://...)
    data: str | None = None   # training file, or None for the embedded synthetic beats
    rows: int = defaults.SYNTHETIC_ROWS  # synthetic rows (ignored with a file)
    val_fraction: float = defaults.VAL_FRACTION
    seed: int = defaults.SEED
    num_samples: int | None = None  # None: as many trials as the time budget allows
    time_budget_s: float | None = defaults.TIME_BUDGET_MINUTES * 60  # None: no limit
    searcher: str = defaults.SEARCHER
    scheduler: str = defaults.SCHEDULER
    grace_period_s: float | None = None  # ASHA's first rung in seconds (None: from the budget)
    reduction_factor: int = defaults.REDUCTION_FACTOR
    min_epochs: int | None = None   # None: from the time budget and the trials' pace (see pipeline.settle_epochs)
    max_epochs: int | None = None
    folds: int = defaults.FOLDS     # >1: retrain the ensemble's configurations on this many folds of every row
    fold_members: int = defaults.FOLD_MEMBERS  # how many of the ensemble's configurations to retrain
    fold_epochs: int | None = None  # epochs of each retraining (default: the configuration's own)
    predict_budget: float | None = None  # the ensemble's networks: seconds per 10,000 beats (None: no limit)
    refit: bool = defaults.REFIT    # retrain the ensemble's networks on every labelled row before export
    long_trial_points: list[dict] = field(default_factory=list)  # the budget was too short to search: these
                                    # first points train long instead, in this order (`pipeline._long_trials`)
    long_trial_seconds: list[float] = field(default_factory=list)  # each long trial's time allowance, in order
    warm_start: str | None = None   # an earlier experiment's folder: its best configurations are tried first
    tracker: str | None = None      # "mlflow" or "wandb" (see `ecgtune.tracking`)

    @property
    def long_trials(self) -> bool:
        return bool(self.long_trial_points)


@dataclass(frozen=True)
class EnsembleOptions:
    """How the ensemble is built (see `python -m ecgtune ensemble --help`)."""

    size: int = 25
    top_k: int = 30
    bagging_rounds: int = 0
    rule_folds: int = 5
    seed: int = defaults.SEED
    max_members: int | None = None
    folds: int = defaults.FOLDS
    fold_members: int = defaults.FOLD_MEMBERS
    fold_epochs: int | None = None
    predict_budget: float | None = None
    refit: bool = defaults.REFIT

    @classmethod
    def from_plan(cls, plan: Plan, **changes) -> EnsembleOptions:
        """The options the experiment's plan sets (its seed, retraining and prediction budget), with `changes`."""
        return cls(**{"seed": plan.seed, "folds": plan.folds, "fold_members": plan.fold_members,
                      "fold_epochs": plan.fold_epochs, "predict_budget": plan.predict_budget, "refit": plan.refit,
                      **changes})


def _read_plan_file(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / PLAN_FILE).read_text())
    except FileNotFoundError:
        raise EcgtuneError(f"{run_dir}: no experiment to resume ({PLAN_FILE} is missing)") from None
    except (OSError, ValueError) as error:
        raise EcgtuneError(f"{run_dir / PLAN_FILE}: unreadable ({error})") from None


def load_plan(run_dir: Path) -> Plan:
    """The plan of the experiment in `run_dir` (settings that an earlier version saved and this one no
    longer has are ignored; one it lacks takes its default)."""
    known = {item.name for item in fields(Plan)}
    try:
        saved = _read_plan_file(run_dir)["plan"]
        return Plan(**{key: value for key, value in saved.items() if key in known})
    except (KeyError, TypeError) as error:
        raise EcgtuneError(f"{run_dir / PLAN_FILE}: unreadable ({error})") from None


def calibration(run_dir: Path) -> dict:
    """Seconds per multiply-accumulate on the machine that built the experiment (see
    `ecgtune.export.seconds_per_mac`), measured once and kept in search.json, so that rebuilding the
    ensemble converts costs the same way on an idle machine and on a busy one."""
    saved = _read_plan_file(run_dir)
    if "calibration" not in saved:
        from ecgtune.export import seconds_per_mac

        saved["calibration"] = {"seconds_per_mac": seconds_per_mac(),
                                "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_text_atomically(run_dir / PLAN_FILE, json.dumps(saved, indent=2))
    return saved["calibration"]


def saved_fingerprint(run_dir: Path) -> dict:
    """The fingerprint of the data the experiment in `run_dir` started with (see `fingerprint`)."""
    return _read_plan_file(run_dir).get("data_fingerprint", {})


def load_data(plan: Plan, use_cache: bool = True) -> HeartbeatData:
    """The plan's training data."""
    if plan.data is None:
        return make_synthetic(plan.rows, seed=plan.seed)
    return load_dataset(plan.data, require_labels=True, use_cache=use_cache)


def split(plan: Plan, data: HeartbeatData) -> tuple[np.ndarray, np.ndarray]:
    """The plan's stratified training / validation rows."""
    with _naming_the_file(data):
        return holdout_split(data.labels, plan.val_fraction, seed=plan.seed)


@contextmanager
def _naming_the_file(data: HeartbeatData) -> Iterator[None]:
    """A split knows the labels, not the file they came from: its errors get the file's name."""
    try:
        yield
    except DataError as error:
        raise DataError(f"{data.source}: {error}") from None


def fingerprint(data: HeartbeatData) -> dict:
    """Shape, class counts and a content hash of the data."""
    digest = xxhash.xxh3_128()
    for array in (data.signals, data.labels, np.asarray(data.ids).astype(str)):
        digest.update(np.ascontiguousarray(array).tobytes())
    return {"rows": len(data), "signal_length": data.signal_length,
            "class_counts": data.class_counts().tolist(), "hash": digest.hexdigest()}


def check_unchanged(run_dir: Path, plan: Plan, data: HeartbeatData) -> None:
    """Refuses data that differ from those the experiment in `run_dir` started with."""
    saved, current = saved_fingerprint(run_dir), fingerprint(data)
    if saved != current:
        raise EcgtuneError(f"{plan.data or 'the synthetic data'} changed since experiment {run_dir} started "
                           f"(saved: {saved}; now: {current})")


def save_plan(run_dir: Path, plan: Plan, data: HeartbeatData, val_rows: np.ndarray, resume: bool) -> None:
    """Writes search.json and validation.npz; on resume, only checks that the data are the saved ones."""
    if resume:
        check_unchanged(run_dir, plan, data)
        return
    current = fingerprint(data)
    plan_path = run_dir / PLAN_FILE
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / VALIDATION_FILE) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, rows=val_rows, ids=data.ids[val_rows], labels=data.labels[val_rows])
    write_text_atomically(plan_path, json.dumps({"plan": asdict(plan), "data_fingerprint": current}, indent=2))


def ensemble_experiment(run_dir: Path, options: EnsembleOptions, settings=None,
                        refit_seconds: float | None = None) -> tuple[EnsembleSummary, Path]:
    """Builds and exports the ensemble of a finished or interrupted experiment; returns its summary and
    the bundle's folder.

    The ensemble is selected from the search's checkpoints on the validation rows, and so is its
    decision rule. Then, with `options.folds` > 1, its heaviest configurations are retrained on that
    many folds of every row and the final ensemble is selected and thresholded on their out-of-fold
    probabilities; otherwise, with `options.refit`, its networks are retrained on every labelled row
    (training and validation) and the refit networks are what ships (AutoGluon's refit_full). Both
    retrainings are Ray Tune experiments run with `settings` (a `tune_search.SearchSettings`);
    `refit_seconds` bounds the refit (None: the bound of the experiment's last refit, so that a rebuild
    plans the same networks and reuses them). The bundle is written first; RUNS_DIR/NAME/ensemble.json and
    ensemble_probs.npz then describe it.
    """
    from ecgtune.ensemble import load_library
    from ecgtune.export import export_bundle

    plan = load_plan(run_dir)
    if is_remote(plan.storage):
        raise EcgtuneError(f"the trials of {run_dir} are in {plan.storage}; copy them into a local folder and "
                           "point search.json's storage at it")
    if (options.folds > 1 or options.refit) and settings is None:
        raise ConfigError("retraining (folds > 1 or refit) needs the settings its Ray trials run with")
    try:
        labels = np.load(run_dir / VALIDATION_FILE, allow_pickle=False)["labels"]
    except (OSError, ValueError, KeyError) as error:
        raise EcgtuneError(f"{run_dir / VALIDATION_FILE}: unreadable ({error})") from None
    members = load_library(Path(plan.storage) / run_dir.name, labels, options.top_k)
    seconds_per_mac = calibration(run_dir)["seconds_per_mac"]
    summary, probs = _build(members, labels, options, seconds_per_mac, copies=max(1, options.folds))
    if options.folds > 1:
        summary, probs, labels = _cross_fit(run_dir, plan, summary, options, settings, seconds_per_mac)
    elif options.refit:
        if refit_seconds is None:
            refit_seconds = _earlier_refit_seconds(run_dir)
        summary = _refit(run_dir, plan, summary, members, settings, refit_seconds)
    bundle = export_bundle(summary, run_dir / BUNDLE_DIR, saved_fingerprint(run_dir))
    with atomic_path(run_dir / ENSEMBLE_PROBS_FILE) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, probs=probs.astype(np.float32), labels=labels)
    write_text_atomically(run_dir / ENSEMBLE_FILE, json.dumps(summary.to_dict(), indent=2))
    return summary, bundle


def read_summary(run_dir: Path) -> EnsembleSummary | None:
    """RUNS_DIR/NAME/ensemble.json, or None before the ensemble is built."""
    path = run_dir / ENSEMBLE_FILE
    if not path.is_file():
        return None
    try:
        return EnsembleSummary.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EcgtuneError(f"{path}: not an ensemble summary this version can read ({error!r}); rebuild it with "
                           "`python -m ecgtune ensemble`") from None


def _earlier_refit_seconds(run_dir: Path) -> float | None:
    """The time the experiment's last refit was given, which decided how many seeds it trained; None
    without one, or when its summary is unreadable (the rebuild replaces it)."""
    try:
        earlier = read_summary(run_dir)
    except EcgtuneError:
        return None
    return earlier.refit.seconds if earlier is not None and earlier.refit is not None else None


def _build(members: list, labels: np.ndarray, options: EnsembleOptions, seconds_per_mac: float,
           copies: int = 1) -> tuple[EnsembleSummary, np.ndarray]:
    """`build_ensemble` with the options. A member's cost is its networks' multiply-accumulates per beat
    (`copies`: how many networks each member will become, the folds before cross-fitting), so the same
    experiment gives the same ensemble on any machine load; the prediction budget is converted to
    them with the experiment's calibration."""
    from ecgtune.ensemble import build_ensemble
    from ecgtune.models.cost import network_macs

    def macs(member) -> float:
        described = member.description
        return copies * network_macs(described["family"], described["model_config"], described["n_classes"],
                                     described["signal_length"])

    budget = options.predict_budget
    limit = None if budget is None else budget / (seconds_per_mac * COST_ROWS)
    summary, probs = build_ensemble(members, labels, size=options.size, bagging_rounds=options.bagging_rounds,
                                    rule_folds=options.rule_folds, seed=options.seed,
                                    max_members=options.max_members, cost_limit=limit, member_cost=macs)
    summary.cost_unit, summary.seconds_per_mac, summary.predict_budget = COST_UNIT, seconds_per_mac, budget
    summary.predict_seconds = summary.cost * seconds_per_mac * COST_ROWS
    for member in summary.members:
        member.predict_seconds = member.cost * seconds_per_mac * COST_ROWS
    if budget is not None and summary.predict_seconds > budget:
        counted = f", each counted {copies} times for --folds {copies}" if copies > 1 else ""
        print(f"warning: no network predicts within --predict-budget {budget:g} ({COST_UNIT}{counted}); the "
              f"ensemble is the cheapest one alone, {summary.predict_seconds:.2f} s. Raise the budget, or give 0 "
              "for no limit.", file=sys.stderr)
    return summary, probs


def _retraining_settings(settings, plan: Plan, run_dir: Path, kind: str, request: dict):
    """Settings of a retraining experiment named after the run and a hash of what it trains, so that
    the same request resumes the same experiment and another one starts afresh."""
    digest = xxhash.xxh3_64_hexdigest(json.dumps(request, sort_keys=True).encode())[:8]
    return replace(settings, name=f"{run_dir.name}-{kind}-{digest}", storage=plan.storage)


def _cross_fit(run_dir: Path, plan: Plan, holdout: EnsembleSummary, options: EnsembleOptions, settings,
               seconds_per_mac: float):
    from ecgtune.data import kfold_splits
    from ecgtune.ensemble import load_fold_library
    from ecgtune.raytune.tune_folds import retrain

    configs = {}
    for member in holdout.members[:options.fold_members]:
        checkpoint = read_checkpoint(Path(member.checkpoints[0]))
        config = checkpoint.sampled
        try:  # a long trial's epochs as re-planned, not as sampled
            train = {**config["train"], "epochs": checkpoint.train_config["epochs"], "keep": "last"}
        except (KeyError, TypeError) as error:
            raise EcgtuneError(f"{member.checkpoints[0]}: unreadable checkpoint (its sampled configuration has "
                               f"no training settings: {error!r})") from None
        if options.fold_epochs:
            train["epochs"] = options.fold_epochs
        configs[member.trial] = {**config, "train": train}
    data = load_data(plan)
    check_unchanged(run_dir, plan, data)
    with _naming_the_file(data):
        folds = kfold_splits(data.labels, options.folds, seed=plan.seed)
    # "assignment" names how rows are dealt to folds: an experiment of an older assignment starts afresh
    settings = _retraining_settings(settings, plan, run_dir, f"folds{options.folds}",
                                    {"folds": options.folds, "assignment": 2, "configs": configs})
    print(f"cross-fitting: {len(configs)} configuration(s) x {options.folds} folds of {len(data)} rows = "
          f"{len(configs) * options.folds} trainings in {settings.experiment_path}", file=sys.stderr)
    failed = retrain(settings, data, configs, folds)
    if failed:
        raise EcgtuneError(f"{len(failed)} fold training(s) failed or diverged: {', '.join(failed)}. A failure: see "
                           "error.txt there and run the same command again to retry it; a divergence: retrain "
                           "fewer configurations (--fold-members)")
    members = load_fold_library(Path(settings.experiment_path), list(configs), [held for _, held in folds], data.labels)
    summary, probs = _build(members, data.labels, options, seconds_per_mac)
    summary.cross_fitted = CrossFitting(options.folds, options.fold_epochs, settings.experiment_path)
    summary.holdout = Holdout(holdout.members, holdout.scores, holdout.validation_rows)
    return summary, probs, data.labels


REFIT_EMA_HORIZON = 0.1  # the refit networks keep a moving average of their weights over the last tenth
REFIT_SEEDS = 6  # at most this many refit networks of one member, each from another seed, averaged in the bundle:
                 # on held-out MIT-BIH beats, with a per-class rule, 2 seeds scored 6 % better than 1, and 5 or 6
                 # scored 6 % better than 2, after which it levelled off (BENCHMARKS 11m)


def _refit(run_dir: Path, plan: Plan, summary: EnsembleSummary, members: list, settings,
           seconds: float | None) -> EnsembleSummary:
    """Retrains each network of the ensemble on every labelled row, for `refit_epochs` (the same passes
    over more rows, so its steps grow with the rows), keeping averaged weights; the refit networks
    replace the search's in the bundle. Selection and the decision rule stay those fitted on the
    search's validation predictions. Within `seconds`, networks are refit heaviest first while their
    estimated time (from their trial's pace) fits; a network whose refit did not finish ships as the
    search trained it. The time they leave trains further seeds of the refit networks (`plan_refit`),
    unless a prediction budget bounds the networks: a member then ships as the average of its seeds.
    What is left after the seeds lengthens every refit network's schedule (`refit_stretch`)."""
    from ecgtune.ensemble.library import fold_trial_name
    from ecgtune.raytune.tune_folds import retrain
    from ecgtune.raytune.tune_layout import latest_checkpoints
    from ecgtune.raytune.tune_search import trial_slots

    data = load_data(plan)
    check_unchanged(run_dir, plan, data)
    described = {member.trial: member.description for member in members}
    row_ratio = len(data) / (len(data) - summary.validation_rows)  # every row, over the search's training rows
    configs, estimates = {}, {}
    for member in summary.members:
        description = described[member.trial]
        for epochs in refit_epochs(description):  # the longest that fits, or the shortest for `plan_refit` to drop
            estimates[member.trial] = refit_estimate_s(description["seconds"], description["epochs_trained"], epochs,
                                                       row_ratio)
            if seconds is None or refit_margin(estimates[member.trial]) <= seconds:
                break
        sampled = description["sampled"]
        train = {**sampled["train"], "epochs": epochs, "keep": "last", "ema_horizon": REFIT_EMA_HORIZON}
        configs[member.trial] = {**sampled, "train": train}
    planned, planned_seconds = plan_refit(estimates, trial_slots(settings), seconds,
                                          REFIT_SEEDS if summary.predict_budget is None else 1)
    stretch = refit_stretch(planned_seconds, seconds)
    for trial in planned:
        train = configs[trial]["train"]
        train["epochs"] = int(train["epochs"] * stretch)
    planned_seconds *= stretch
    networks = {trial: [trial if seed == 0 else f"{trial}-seed{seed}" for seed in of] for trial, of in planned.items()}
    seeds = {name: seed for trial, of in planned.items() for name, seed in zip(networks[trial], of)}
    member_of = {name: trial for trial, names in networks.items() for name in names}
    # Tune starts them in this order, as planned: each member's first network, heaviest first, then the seeds
    configs = {name: configs[member_of[name]] for name in sorted(seeds, key=seeds.get)}
    summary.refit = Refit(rows=len(data), planned_seconds=planned_seconds, networks=0, seconds=seconds)
    if not configs:
        print("refit: no time left to retrain any network on every row; the search's networks ship", file=sys.stderr)
        return summary
    settings = _retraining_settings(settings, plan, run_dir, "refit", {"configs": configs, "seeds": seeds})
    further = len(configs) - len(networks)
    seeded = f" (and {further} from further seeds, averaged with them)" if further else ""
    longer = f", {stretch:.2f} times their epochs, as the time left pays for" if stretch > 1.0 else ""
    print(f"refit: retraining {len(networks)} of {len(summary.members)} network(s) on all {len(data)} labelled "
          f"rows{seeded}{longer} in {settings.experiment_path}", file=sys.stderr)
    every_row = [(np.arange(len(data)), np.empty(0, dtype=np.int64))]
    retrain(settings, data, configs, every_row, time_budget_s=seconds, seeds=seeds)
    newest = latest_checkpoints(Path(settings.experiment_path))

    def finished(name: str) -> bool:
        folder = newest.get(fold_trial_name(name, 0))
        return folder is not None and read_checkpoint(folder).epochs_trained == configs[name]["train"]["epochs"]

    for member in summary.members:
        refit = [str(newest[fold_trial_name(name, 0)]) for name in networks.get(member.trial, []) if finished(name)]
        member.refit = bool(refit)
        if refit:
            share = len(refit) / len(member.checkpoints)  # its prediction cost grows with its networks
            member.search_checkpoints, member.checkpoints = member.checkpoints, refit
            member.cost, member.predict_seconds = member.cost * share, member.predict_seconds * share
            summary.refit.networks += len(refit)
    summary.cost = sum(member.cost for member in summary.members)
    summary.predict_seconds = sum(member.predict_seconds for member in summary.members)
    summary.refit.experiment = settings.experiment_path
    unfinished = sum(not member.refit for member in summary.members if member.trial in networks)
    if unfinished:
        print(f"warning: {unfinished} refit(s) did not finish in time; those networks ship as the search trained them",
              file=sys.stderr)
    return summary


def refit_epochs(description: dict) -> list[int]:
    """The epochs a member's refit may train (its checkpoint's config.json as `description`), longest
    first: the trial's whole schedule where the trial ran it to the end, as the long trials of a short
    budget do (the schedule that was validated, and the time the plan reserved:
    `pipeline._training_seconds_with_refit`), then the epoch the trial kept; only the kept epoch where
    ASHA or the deadline stopped the trial mid-schedule."""
    kept = max(1, int(description["kept_epoch"]))
    scheduled = int(description["train_config"]["epochs"])  # a long trial's as re-planned, not as sampled
    return [scheduled, kept] if int(description["epochs_trained"]) >= scheduled > kept else [kept]


def refit_estimate_s(seconds: float, epochs_trained: int, refit_epochs: int, row_ratio: float) -> float:
    """Seconds to retrain a search trial's network for `refit_epochs` epochs on `row_ratio` times the
    rows it trained on, at its pace: `seconds` of training and validation over `epochs_trained` epochs,
    the first of them FIRST_EPOCH_FRACTION of an epoch, as the search trains them. A ratio of rows, not a
    count, because the imbalance handling resamples the rows a network trains on (oversampling doubled
    them on a laptop)."""
    passes = max(FIRST_EPOCH_FRACTION, epochs_trained - 1 + FIRST_EPOCH_FRACTION)
    return seconds / passes * row_ratio * refit_epochs


REFIT_MARGIN_SHARE, REFIT_START_S = 0.1, 10.0  # a laptop refit took 0.88 of its estimate, and its Ray experiment
                                               # started in 5-10 s (BENCHMARKS 11a)


def refit_margin(estimate_s: float) -> float:
    """Seconds to plan for a refit estimated at `estimate_s` (`refit_estimate_s`): a tenth more, plus
    the start of its Ray experiment, so that a refit planned to fit does finish."""
    return (1.0 + REFIT_MARGIN_SHARE) * estimate_s + REFIT_START_S


REFIT_MAX_STRETCH = 2.0  # the refit trains up to twice its members' epochs where the time left pays for it: on
                         # held-out MIT-BIH beats 40 epochs scored 4 % better than 20, one seed or two (BENCHMARKS 11m)


def refit_stretch(planned_seconds: float, seconds: float | None) -> float:
    """How many times its epochs each planned refit network trains: as many as `seconds` still pays
    for with `refit_margin` after the networks and seeds `plan_refit` chose (`planned_seconds`), up to
    REFIT_MAX_STRETCH, so that the refit does not leave the budget idle when selection kept fewer or
    quicker networks than the plan kept time for; 1 without a time budget."""
    if seconds is None or planned_seconds <= 0.0:
        return 1.0
    paid_for = (seconds - REFIT_START_S) / (1.0 + REFIT_MARGIN_SHARE) / planned_seconds
    return min(REFIT_MAX_STRETCH, max(1.0, paid_for))


def plan_refit(estimates: dict[str, float], slots: int, seconds: float | None,
               seeds: int = 1) -> tuple[dict[str, list[int]], float]:
    """Which members are refit, from which seeds, on `slots` parallel slots. Members, heaviest first (the
    order of `estimates`, their refit seconds), while their refit with `refit_margin` ends within
    `seconds`; then further seeds, a round at a time over the members, up to `seeds` a member, each on
    the slot that frees first while it still ends within `seconds`: the time a search left is spent on
    averaging (BENCHMARKS 11m). Without `seconds`, further seeds only take slots no network needs, where
    they cost no wall time. A seed queued after another network adds REFIT_START_S for its worker's
    start, which on small data is most of a refit. Returns the seeds by member and the planned seconds."""
    ends, planned = [0.0] * slots, {}  # when each slot is free, as planned
    for trial, estimate in estimates.items():
        free = ends.index(min(ends))
        if seconds is None or refit_margin(ends[free] + estimate) <= seconds:
            ends[free] += estimate
            planned[trial] = [0]
    for seed in range(1, seeds):
        for trial in planned:
            free = ends.index(min(ends))
            queued = ends[free] > 0.0
            ends_at = ends[free] + estimates[trial] + (REFIT_START_S if queued else 0.0)
            fits = not queued if seconds is None else refit_margin(ends_at) <= seconds
            if fits:
                ends[free] = ends_at
                planned[trial].append(seed)
    return planned, max(ends)
