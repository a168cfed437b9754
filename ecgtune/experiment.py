"""An experiment's plan: which families are searched on which data, split and budget.

The plan is saved as RUNS_DIR/NAME/search.json with a fingerprint of the data, so that `--resume`
continues with exactly the same data, split and settings (and refuses data that changed), and the
validation rows are saved as RUNS_DIR/NAME/validation.npz for the ensemble stage.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import xxhash

from ecgtune.atomic import atomic_path, write_text_atomically
from ecgtune.data import HeartbeatData, holdout_split, load_dataset, make_synthetic
from ecgtune.errors import ConfigError, EcgtuneError

PLAN_FILE, VALIDATION_FILE, ENSEMBLE_FILE, BUNDLE_DIR = "search.json", "validation.npz", "ensemble.json", "bundle"
ENSEMBLE_PROBS_FILE, LEADERBOARD_FILE = "ensemble_probs.npz", "leaderboard.csv"
DEFAULT_PREDICT_BUDGET = 1.5  # seconds per 10,000 beats: 20,000 predicted within 5 s on 2 cores (BENCHMARKS.md)
COST_UNIT = "seconds to predict 10,000 beats in ONNX Runtime on the machine that built the ensemble"


@dataclass(frozen=True)
class Plan:
    """What an experiment searches; everything `--resume` must keep the same."""

    families: list[str]
    storage: str              # where Ray keeps the trials: an absolute folder or a URI (s3://...)
    data: str | None          # training file, or None for the embedded synthetic beats
    rows: int                 # synthetic rows (ignored with a file)
    val_fraction: float
    seed: int
    num_samples: int
    time_budget_s: float | None
    searcher: str
    scheduler: str
    grace_period: int
    reduction_factor: int
    min_epochs: int
    max_epochs: int
    folds: int = 0                  # >1: retrain the ensemble's configurations on this many folds of every row
    fold_members: int = 5           # how many of the ensemble's configurations to retrain
    fold_epochs: int | None = None  # epochs of each retraining (default: the configuration's own)
    predict_budget: float | None = DEFAULT_PREDICT_BUDGET  # the ensemble's networks: seconds per 10,000 beats


@dataclass(frozen=True)
class EnsembleOptions:
    """How the ensemble is built (see `python -m ecgtune ensemble --help`)."""

    size: int = 25
    top_k: int = 30
    bagging_rounds: int = 0
    rule_folds: int = 5
    seed: int = 0
    max_members: int | None = None
    folds: int = 0
    fold_members: int = 5
    fold_epochs: int | None = None
    predict_budget: float | None = DEFAULT_PREDICT_BUDGET


def plan_from_arguments(args, families: list[str], run_dir: Path, smoke: bool, default_rows: int,
                        smoke_rows: int, smoke_samples: int) -> Plan:
    """The plan the command line asks for; `--smoke` shrinks data, trials and epochs."""
    if args.min_epochs > args.max_epochs:
        raise EcgtuneError(f"--min-epochs {args.min_epochs} exceeds --max-epochs {args.max_epochs}")
    if not smoke and args.grace_period > args.max_epochs:
        raise EcgtuneError(f"--grace-period {args.grace_period} exceeds --max-epochs {args.max_epochs}")
    if args.reduction_factor < 2:
        raise EcgtuneError(f"--reduction-factor must be at least 2, got {args.reduction_factor}")
    budget_minutes = args.time_budget if args.time_budget and args.time_budget > 0 else None
    storage = args.storage or str(run_dir.parent)
    if "://" not in storage:
        storage = str(Path(storage).resolve())
    return Plan(
        families=families,
        storage=storage,
        data=str(Path(args.data).resolve()) if args.data else None,
        rows=args.rows or (smoke_rows if smoke else default_rows),
        val_fraction=args.val_fraction,
        seed=args.seed,
        num_samples=min(args.num_samples, smoke_samples) if smoke else args.num_samples,
        time_budget_s=budget_minutes * 60 if budget_minutes else None,
        searcher=args.searcher,
        scheduler=args.scheduler,
        grace_period=1 if smoke else args.grace_period,
        reduction_factor=args.reduction_factor,
        min_epochs=1 if smoke else args.min_epochs,
        max_epochs=2 if smoke else args.max_epochs,
        folds=args.folds,
        fold_members=args.fold_members,
        fold_epochs=args.fold_epochs,
        predict_budget=args.predict_budget or None,
    )


def _read_plan_file(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / PLAN_FILE).read_text())
    except FileNotFoundError:
        raise EcgtuneError(f"{run_dir}: no experiment to resume ({PLAN_FILE} is missing)") from None
    except (OSError, ValueError) as error:
        raise EcgtuneError(f"{run_dir / PLAN_FILE}: unreadable ({error})") from None


def load_plan(run_dir: Path) -> Plan:
    """The plan of the experiment in `run_dir` (one saved before prediction budgets existed has none)."""
    try:
        return Plan(**{"predict_budget": None, **_read_plan_file(run_dir)["plan"]})
    except (KeyError, TypeError) as error:
        raise EcgtuneError(f"{run_dir / PLAN_FILE}: unreadable ({error})") from None


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
    return holdout_split(data.labels, plan.val_fraction, seed=plan.seed)


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


def ensemble_experiment(run_dir: Path, options: EnsembleOptions, settings=None) -> tuple[dict, Path]:
    """Builds and exports the ensemble of a finished or interrupted experiment; returns its summary and
    the bundle's folder.

    The ensemble is selected from the search's checkpoints on the validation rows. With
    `options.folds` > 1 its heaviest configurations are then retrained on that many folds of every row
    (a Ray Tune experiment run with `settings`, a `tune_search.SearchSettings`), and the final
    ensemble is selected and thresholded on their out-of-fold probabilities. The bundle is written
    first; RUNS_DIR/NAME/ensemble.json and ensemble_probs.npz then describe it.
    """
    from ecgtune.ensemble import load_library
    from ecgtune.export import export_bundle

    plan = load_plan(run_dir)
    if "://" in plan.storage:
        raise EcgtuneError(f"the trials of {run_dir} are in {plan.storage}; copy them into a local folder and "
                           "point search.json's storage at it")
    if options.folds > 1 and settings is None:
        raise ConfigError("cross-fitting (folds > 1) needs the settings its Ray trials run with")
    try:
        labels = np.load(run_dir / VALIDATION_FILE, allow_pickle=False)["labels"]
    except (OSError, ValueError, KeyError) as error:
        raise EcgtuneError(f"{run_dir / VALIDATION_FILE}: unreadable ({error})") from None
    members = load_library(Path(plan.storage) / run_dir.name, len(labels), options.top_k)
    summary, probs = _build(members, labels, options, copies=max(1, options.folds))
    if options.folds > 1:
        summary, probs, labels = _cross_fit(run_dir, plan, summary, options, settings)
    bundle = export_bundle(summary, run_dir / BUNDLE_DIR, saved_fingerprint(run_dir))
    with atomic_path(run_dir / ENSEMBLE_PROBS_FILE) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, probs=probs.astype(np.float32), labels=labels)
    write_text_atomically(run_dir / ENSEMBLE_FILE, json.dumps(summary, indent=2))
    return summary, bundle


def _build(members: list, labels: np.ndarray, options: EnsembleOptions, copies: int = 1) -> tuple[dict, np.ndarray]:
    """`build_ensemble` with the options, its networks' prediction time measured and within the budget.
    `copies`: how many networks each member will become (the folds, before cross-fitting)."""
    from ecgtune.ensemble import build_ensemble
    from ecgtune.export import prediction_seconds

    summary, probs = build_ensemble(members, labels, options.size, options.bagging_rounds, options.rule_folds,
                                    options.seed, options.max_members, options.predict_budget,
                                    lambda member: copies * prediction_seconds(list(member.checkpoints)))
    if options.predict_budget is not None and summary["cost"] > options.predict_budget:
        counted = f", each counted {copies} times for --folds {copies}" if copies > 1 else ""
        print(f"warning: no network predicts within --predict-budget {options.predict_budget:g} ({COST_UNIT}"
              f"{counted}); the ensemble is the fastest one alone, {summary['cost']:.2f} s. Raise the budget, or "
              "give 0 for no limit.", file=sys.stderr)
    return {**summary, "cost_unit": COST_UNIT}, probs


def _cross_fit(run_dir: Path, plan: Plan, holdout: dict, options: EnsembleOptions, settings):
    from ecgtune.data import kfold_splits
    from ecgtune.ensemble import load_fold_library
    from ecgtune.ensemble.library import CONFIG_FILE
    from ecgtune.trainables.tune_folds import run_cross_fit

    configs = {}
    for member in holdout["members"][:options.fold_members]:
        config_path = Path(member["checkpoints"][0]) / CONFIG_FILE
        try:
            config = json.loads(config_path.read_text())["sampled"]
            train = {**config["train"], "keep": "last"}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise EcgtuneError(f"{config_path}: unreadable checkpoint description ({error})") from None
        if options.fold_epochs:
            train["epochs"] = options.fold_epochs
        configs[member["trial"]] = {**config, "train": train}
    data = load_data(plan)
    check_unchanged(run_dir, plan, data)
    folds = kfold_splits(data.labels, options.folds, seed=plan.seed)
    request = json.dumps({"folds": options.folds, "configs": configs}, sort_keys=True)
    grid_hash = xxhash.xxh3_64_hexdigest(request.encode())[:8]
    settings = replace(settings, name=f"{run_dir.name}-folds{options.folds}-{grid_hash}", storage=plan.storage)
    print(f"cross-fitting: {len(configs)} configuration(s) x {options.folds} folds of {len(data)} rows = "
          f"{len(configs) * options.folds} trainings in {settings.experiment_path}", file=sys.stderr)
    run_cross_fit(settings, data, configs, folds)
    members = load_fold_library(Path(settings.experiment_path), list(configs), [held for _, held in folds], data.labels)
    summary, probs = _build(members, data.labels, options)
    summary["cross_fitted"] = {"folds": options.folds, "epochs": options.fold_epochs,
                               "experiment": settings.experiment_path}
    summary["holdout"] = {key: holdout[key] for key in ("members", "scores", "validation_rows")}
    return summary, probs, data.labels
