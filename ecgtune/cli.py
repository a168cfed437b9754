"""Command line: `python -m ecgtune {search,ensemble,report,predict,make-data,inspect}`; `python search.py` is `search`.

Errors in the user's input are printed as one line (`error: ...`) with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from ecgtune import defaults
from ecgtune.tracking import TRACKERS
from ecgtune.errors import ConfigError, DataWarning, EcgtuneError, Interrupted
from ecgtune.storage import is_remote


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every subcommand. Given the `command` about to run, the flags of the
    others that need PyTorch and Ray for their defaults are left out, so that `predict` starts fast."""
    parser = argparse.ArgumentParser(prog="ecgtune", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    search = commands.add_parser(
        "search", help="search hyper-parameters of the chosen families with Ray Tune",
        description="Search the chosen architecture families with Ray Tune (Optuna's TPE and ASHA by default), "
                    "print a leaderboard and write runs/NAME/leaderboard.csv.")
    if command in (None, "search"):
        add_search_arguments(search)
    search.set_defaults(handler=run_search)

    make_data = commands.add_parser(
        "make-data", help="write synthetic beats in the competition format",
        description="Write deterministic synthetic beats as id,heartbeat_signals,label "
                    "(.csv, .csv.gz or .parquet, by the file's suffix).")
    make_data.add_argument("--n", type=_positive_int, default=100_000, help="training rows (default 100000)")
    make_data.add_argument("--out", type=Path, required=True, help="training file to write")
    make_data.add_argument("--test-out", type=Path, help="also write an unlabelled test file here")
    make_data.add_argument("--test-n", type=_positive_int, default=20_000, help="test rows (default 20000)")
    make_data.add_argument("--signal-length", type=_positive_int, default=205, help="samples per beat (default 205)")
    make_data.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    make_data.set_defaults(handler=run_make_data)

    ensemble = commands.add_parser(
        "ensemble", help="build the best ensemble of an experiment's checkpoints",
        description="Greedy ensemble selection over the best checkpoints of a finished or interrupted "
                    "experiment (optionally retrained as cross-fitted members, --folds), then the learned decision "
                    "rule; writes RUNS_DIR/NAME/bundle, ensemble.json and report.html.")
    ensemble.add_argument("--experiment", type=Path, required=True, help="the experiment folder, e.g. runs/NAME")
    add_ensemble_arguments(ensemble.add_argument_group("the ensemble"))
    if command in (None, "ensemble"):
        add_resource_arguments(ensemble.add_argument_group("where the refit or the fold retraining runs"))
    ensemble.add_argument("--seed", type=_seed, default=0, help="random seed of the selection (default 0)")
    ensemble.set_defaults(handler=run_ensemble)

    report = commands.add_parser(
        "report", help="write an experiment's report.html",
        description="Write RUNS_DIR/NAME/report.html: leaderboard, search progress, parameter importances, "
                    "the ensemble and its decision rule (search and ensemble write it too).")
    report.add_argument("--experiment", type=Path, required=True, help="the experiment folder, e.g. runs/NAME")
    report.set_defaults(handler=run_report)

    predict = commands.add_parser(
        "predict", help="write a submission file with an exported bundle",
        description="Predict every row of a file with a bundle and write id,label_0,...,label_K-1 "
                    "(same ids, same order).")
    predict.add_argument("--bundle", type=Path, required=True, help="bundle folder, e.g. runs/NAME/bundle")
    predict.add_argument("--data", type=Path, required=True, help="file to predict (CSV, CSV.gz or Parquet)")
    predict.add_argument("--out", type=Path, required=True, help="submission CSV to write")
    predict.add_argument("--output", choices=("decision", "proba"), default="decision",
                         help="decision: the learned decision rule's values (default); proba: probabilities")
    predict.add_argument("--no-cache", action="store_true", help="neither read nor write the parse cache")
    predict.set_defaults(handler=run_predict)

    inspect = commands.add_parser(
        "inspect", help="validate a data file and summarise it",
        description="Read a data file with every check the search applies and print its shape and classes.")
    inspect.add_argument("path", type=Path, help="CSV, CSV.gz or Parquet file")
    inspect.add_argument("--train", type=Path, help="training file the inspected (test) file must match")
    inspect.add_argument("--no-cache", action="store_true", help="neither read nor write the parse cache")
    inspect.set_defaults(handler=run_inspect)
    return parser


def add_ensemble_arguments(group) -> None:
    """Flags of `ensemble`; `search` shares the cross-fitting ones."""
    from ecgtune.experiment import EnsembleOptions

    defaults = EnsembleOptions()
    group.add_argument("--size", type=_positive_int, default=defaults.size,
                       help=f"selection steps (default {defaults.size})")
    group.add_argument("--top-k", type=_positive_int, default=defaults.top_k,
                       help=f"library: the K best checkpoints plus the best of each family (default {defaults.top_k})")
    group.add_argument("--bagging", type=_count, default=defaults.bagging_rounds,
                       help=f"bagging rounds over the library (default {defaults.bagging_rounds})")
    group.add_argument("--max-members", type=_positive_int,
                       help="at most this many distinct networks (with --folds: configurations), to bound the "
                            "bundle's prediction time (default: no limit)")
    group.add_argument("--rule-folds", type=_positive_int, default=defaults.rule_folds,
                       help=f"folds for the cross-fitted estimate of the decision rule (default {defaults.rule_folds})")
    add_search_ensemble_arguments(group, defaults_from_search=True)


def add_search_ensemble_arguments(group, defaults_from_search: bool = False) -> None:
    """--predict-budget, --folds, --fold-members and --fold-epochs (for `ensemble`, by default those its
    search was given)."""
    from ecgtune.experiment import COST_UNIT

    folds, members = defaults.FOLDS, defaults.FOLD_MEMBERS
    said = "the search's; " if defaults_from_search else ""
    group.add_argument("--predict-budget", type=_non_negative_float, default=None if defaults_from_search else 0.0,
                       metavar="SECONDS",
                       help=f"the ensemble's networks together may take at most this many {COST_UNIT} (with --folds, "
                            f"every fold's network counts); the console and the report say what the limit costs in "
                            f"validation abs-sum; 0: no limit (default: {said}0)")
    group.add_argument("--no-refit", action="store_true",
                       help="ship the networks as the search trained them, without retraining them on every "
                            "labelled row (default: refit, unless --folds or --smoke)")
    group.add_argument("--folds", type=_fold_count, default=None if defaults_from_search else folds,
                       help="K > 1: retrain the ensemble's best configurations on K folds of every labelled row, "
                            "then select and threshold on their out-of-fold predictions; the bundle averages "
                            f"the folds (default: {said}{folds}, off)")
    group.add_argument("--fold-members", type=_positive_int, default=None if defaults_from_search else members,
                       help=f"how many of the ensemble's configurations to retrain with --folds (default: {said}"
                            f"{members})")
    group.add_argument("--fold-epochs", type=_positive_int,
                       help=f"epochs of each fold's training (default: {said}each configuration's own)")


def add_resource_arguments(group) -> None:
    """The Ray cluster and the resources of each trial."""
    group.add_argument("--address", help="Ray cluster to join: auto, or ray://HOST:10001 (default: start Ray here)")
    group.add_argument("--cpus-per-trial", type=_positive_float, default=defaults.CPUS_PER_TRIAL,
                       help=f"default {defaults.CPUS_PER_TRIAL:g}")
    group.add_argument("--gpus-per-trial", type=_gpu_share,
                       help=f"fraction of a GPU per trial (default {defaults.GPUS_PER_TRIAL:g} with GPUs, else 0)")
    group.add_argument("--max-concurrent", type=_positive_int,
                       help="at most this many trials at once (default: as resources allow)")
    group.add_argument("--max-failures", type=_count, default=defaults.MAX_FAILURES,
                       help=f"retries of a failed trial, from its last checkpoint (default {defaults.MAX_FAILURES})")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `search` (also those of `python search.py`)."""
    from ecgtune.search_spaces import EpochBudget
    from ecgtune.search_spaces.shared import LONGEST_TRIAL_SHARE, MAX_EPOCHS_FROM_TIME
    from ecgtune.raytune.registry import SCHEDULERS, SEARCHERS

    budget = EpochBudget()
    what = parser.add_argument_group("what to search")
    what.add_argument("--arch", default="all",
                      help="'all' or a comma list of families or aliases (net1..net6); default all")
    what.add_argument("--data", type=Path,
                      help="labelled training file (CSV, CSV.gz, Parquet); default: embedded synthetic beats")
    what.add_argument("--rows", type=_positive_int,
                      help=f"rows of the embedded synthetic data when --data is not given (default {defaults.SYNTHETIC_ROWS})")
    what.add_argument("--val-fraction", type=_fraction, default=defaults.VAL_FRACTION,
                      help=f"stratified validation share (default {defaults.VAL_FRACTION:g})")
    what.add_argument("--seed", type=_seed, default=defaults.SEED,
                      help=f"seed of the split, the sampler and the trials (default {defaults.SEED})")

    how = parser.add_argument_group("how to search")
    how.add_argument("--num-samples", type=_positive_int,
                     help=f"trials in total, all families together (default: as many as the time budget allows; "
                          f"{defaults.NUM_SAMPLES} without one)")
    how.add_argument("--time-budget", type=_non_negative_float, metavar="MINUTES", default=defaults.TIME_BUDGET_MINUTES,
                     help=f"the whole run's minutes: search, refit, ensemble, export and report (default "
                          f"{defaults.TIME_BUDGET_MINUTES:g}; 0: no limit)")
    how.add_argument("--searcher", choices=SEARCHERS, default=defaults.SEARCHER,
                     help="optuna: multivariate TPE, every family's defaults first; random: random sampling")
    how.add_argument("--scheduler", choices=SCHEDULERS, default=defaults.SCHEDULER,
                     help="asha: stop weak trials early; fifo: every trial runs its epochs (default asha)")
    how.add_argument("--grace-period", type=_positive_float, metavar="SECONDS",
                     help="ASHA: seconds of training before a trial can be stopped; trials are compared at equal "
                          "training time (default: a 120th of the search's time, 3 to 300 s)")
    how.add_argument("--reduction-factor", type=_positive_int, default=defaults.REDUCTION_FACTOR,
                     help=f"ASHA: keep 1/N of the trials at each rung (default {defaults.REDUCTION_FACTOR})")
    how.add_argument("--tracker", choices=TRACKERS,
                     help="also log every trial's configuration and per-epoch metrics, and the final ensemble's "
                          "scores, to MLflow ($MLFLOW_TRACKING_URI, else RUNS_DIR/mlflow.db) or Weights & Biases "
                          "(project ecgtune); needs pip install \"ecgtune[mlflow]\" or \"ecgtune[wandb]\"")
    how.add_argument("--warm-start", type=Path, metavar="RUNS_DIR/NAME",
                     help="start from an earlier experiment: its best configurations are tried first and, on the "
                          "same data, the searcher begins from all its trials' scores")
    how.add_argument("--min-epochs", type=_positive_int,
                     help="smallest epoch budget a trial may sample (default: a third of --max-epochs)")
    how.add_argument("--max-epochs", type=_positive_int,
                     help=f"largest epoch budget a trial may sample (default: what {LONGEST_TRIAL_SHARE * 100:.0f}%% of the "
                          f"search's time pays for at the trials' pace, measured before it starts, up to "
                          f"{MAX_EPOCHS_FROM_TIME}; {budget.max_epochs} without a time budget)")

    where = parser.add_argument_group("where it runs")
    add_resource_arguments(where)
    where.add_argument("--name", help="experiment name (default: the start time, e.g. 20261124-013000)")
    where.add_argument("--runs-dir", type=Path, default=Path("runs"),
                       help="local outputs: RUNS_DIR/NAME/leaderboard.csv and search.json (default runs)")
    where.add_argument("--storage", help="Ray storage for trials and checkpoints: a folder, NFS or s3://... "
                                         "(default: RUNS_DIR, so everything lands in RUNS_DIR/NAME)")
    where.add_argument("--resume", action="store_true",
                       help="continue the interrupted experiment --name with its saved settings")
    where.add_argument("--trust-state", action="store_true",
                       help="with --resume: accept an experiment this user's key did not sign (your own, copied "
                            "from another machine or killed before it could sign); its pickles will be loaded")
    where.add_argument("--no-cache", action="store_true", help="neither read nor write the parse cache")
    where.add_argument("--smoke", action="store_true",
                       help=f"a quick check: {defaults.SMOKE_ROWS} synthetic rows, {defaults.SMOKE_SAMPLES} trials of "
                            f"{defaults.SMOKE_EPOCHS[0]}-{defaults.SMOKE_EPOCHS[1]} epochs, no refit")
    add_search_ensemble_arguments(parser.add_argument_group("the ensemble built after the search"))


def _number(text: str, kind: type, accept, requirement: str):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not accept(value):
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def _count(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "zero or a positive integer")


def _fold_count(text: str) -> int:
    return _number(text, int, lambda v: v == 0 or v >= 2, "0 (off) or at least 2")


def _seed(text: str) -> int:
    return _number(text, int, lambda v: 0 <= v < 2**32, "an integer from 0 to 2**32 - 1")


def _zero_is_no_limit(value: float | None) -> float | None:
    """A limit flag's value, where 0 means no limit (None)."""
    return value or None


def _positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "a positive number")


def _non_negative_float(text: str) -> float:
    return _number(text, float, lambda v: v >= 0, "a number, 0 or more")


def _gpu_share(text: str) -> float:
    return _number(text, float, lambda v: 0 <= v <= 1 or v == int(v), "a fraction of one GPU or a whole number")


def _fraction(text: str) -> float:
    return _number(text, float, lambda v: 0.0 < v < 1.0, "strictly between 0 and 1")


def main(argv: list[str] | None = None) -> int:
    """Runs a subcommand; returns the exit code (2 for bad input, 130 when interrupted)."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(next((word for word in argv if not word.startswith("-")), None)).parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return args.handler(args)
    except Interrupted as error:
        print(error, file=sys.stderr)
        return 130
    except EcgtuneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None):
    prefix = "warning" if issubclass(category, DataWarning) else f"warning ({category.__name__})"
    print(f"{prefix}: {message}", file=sys.stderr)


def parse_families(arch: str) -> list[str]:
    """Canonical family names for 'all' or a comma list (aliases allowed, duplicates dropped)."""
    from ecgtune.models import list_models, resolve_model_name

    if arch.strip() == "all":
        return list_models()
    names = [resolve_model_name(name.strip()) for name in arch.split(",") if name.strip()]
    if not names:
        raise EcgtuneError(f"--arch names no family; valid: all, {', '.join(list_models())}")
    return list(dict.fromkeys(names))


def run_search(args: argparse.Namespace) -> int:
    """Runs (or resumes) the whole pipeline: search, leaderboard, ensemble, export and report."""
    search_with(args)
    return 0


def search_with(args: argparse.Namespace) -> Path:
    """The pipeline `search`'s flags ask for (the Python API's too); returns the experiment's folder."""
    from ecgtune import pipeline

    plan, run_dir = _search_plan(args)
    pipeline.run_search(plan, _resources(args), run_dir, resume=args.resume, use_cache=not args.no_cache,
                        clock=pipeline.Clock(plan.time_budget_s), trust_state=args.trust_state)
    return run_dir


def _search_plan(args: argparse.Namespace):
    """The experiment's plan (the saved one for --resume) and its folder, from `search`'s flags."""
    from ecgtune import experiment

    run_dir = args.runs_dir / (args.name or time.strftime("%Y%m%d-%H%M%S"))
    if args.trust_state and not args.resume:
        raise EcgtuneError("--trust-state vouches for an experiment to resume: use it with --resume --name NAME")
    if args.resume:
        if not args.name:
            raise EcgtuneError("--resume needs the --name of the experiment to continue")
        return experiment.load_plan(run_dir), run_dir
    if args.min_epochs and args.max_epochs and args.min_epochs > args.max_epochs:
        raise EcgtuneError(f"--min-epochs {args.min_epochs} exceeds --max-epochs {args.max_epochs}")
    from ecgtune.tracking import check_tracker

    check_tracker(args.tracker)
    if args.reduction_factor < 2:
        raise EcgtuneError(f"--reduction-factor must be at least 2, got {args.reduction_factor}")
    storage, smoke = args.storage or str(run_dir.parent), args.smoke
    time_budget_s = None if _zero_is_no_limit(args.time_budget) is None else args.time_budget * 60
    plan = experiment.Plan(
        families=parse_families(args.arch),
        storage=storage if is_remote(storage) else str(Path(storage).resolve()),
        data=str(Path(args.data).resolve()) if args.data else None,
        rows=args.rows or (defaults.SMOKE_ROWS if smoke else defaults.SYNTHETIC_ROWS),
        val_fraction=args.val_fraction,
        seed=args.seed,
        num_samples=_trial_limit(args.num_samples, time_budget_s, smoke),
        time_budget_s=time_budget_s,
        searcher=args.searcher,
        scheduler=args.scheduler,
        grace_period_s=args.grace_period,
        reduction_factor=args.reduction_factor,
        min_epochs=defaults.SMOKE_EPOCHS[0] if smoke else args.min_epochs,
        max_epochs=defaults.SMOKE_EPOCHS[1] if smoke else args.max_epochs,
        folds=args.folds,
        fold_members=args.fold_members,
        fold_epochs=args.fold_epochs,
        predict_budget=_zero_is_no_limit(args.predict_budget),
        # the refit's own Ray experiment costs a smoke run a fifth of its minute and shows nothing on its rows
        refit=not (args.no_refit or smoke),
        warm_start=str(args.warm_start.resolve()) if args.warm_start else None,
        tracker=args.tracker,
    )
    return plan, run_dir


def _trial_limit(num_samples: int | None, time_budget_s: float | None, smoke: bool) -> int | None:
    """The search's number of trials: the one given, else none with a time budget (the clock ends the
    search) and the default without; a smoke run's few at most."""
    if smoke:
        return min(num_samples or defaults.SMOKE_SAMPLES, defaults.SMOKE_SAMPLES)
    if num_samples is not None:
        return num_samples
    return None if time_budget_s is not None else defaults.NUM_SAMPLES


def _resources(args: argparse.Namespace):
    """Where the trials run, from the resource flags."""
    from ecgtune.pipeline import Resources

    return Resources(address=args.address, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                     max_concurrent=args.max_concurrent, max_failures=args.max_failures)


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


def parse_search_arguments(argv: list[str]) -> argparse.Namespace:
    """`search`'s flags for the Python API: a bad one raises ConfigError instead of exiting."""
    parser = _RaisingParser(prog="ecgtune.search")
    add_search_arguments(parser)
    return parser.parse_args(argv)


def search_option_names() -> set[str]:
    """The names of `search`'s options, as keywords (`--num-samples` is `num_samples`)."""
    return set(vars(parse_search_arguments([])))


def run_ensemble(args: argparse.Namespace) -> int:
    """Builds, saves and prints the ensemble of an experiment."""
    from ecgtune import experiment, pipeline
    from ecgtune.report import format_ensemble

    plan = experiment.load_plan(args.experiment)
    given = {"folds": args.folds, "fold_members": args.fold_members, "fold_epochs": args.fold_epochs}
    changes = {key: value for key, value in given.items() if value is not None}  # else the search's
    if args.predict_budget is not None:
        changes["predict_budget"] = _zero_is_no_limit(args.predict_budget)
    options = experiment.EnsembleOptions.from_plan(
        plan, size=args.size, top_k=args.top_k, bagging_rounds=args.bagging, rule_folds=args.rule_folds,
        seed=args.seed, max_members=args.max_members, refit=plan.refit and not args.no_refit, **changes)
    settings = None
    if options.folds > 1 or options.refit:
        from ecgtune.raytune.ray_session import start_ray

        start_ray(args.address)
        settings = pipeline.search_settings(plan, _resources(args), args.experiment)
    summary, bundle = experiment.ensemble_experiment(args.experiment, options, settings)
    print(format_ensemble(summary))
    print(f"ensemble: {args.experiment / experiment.ENSEMBLE_FILE}; bundle: {bundle}")
    return run_report(args)


def run_report(args: argparse.Namespace) -> int:
    """Writes the experiment's report.html."""
    from ecgtune.html_report import write_report

    print(f"report: {write_report(args.experiment)}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """Writes the submission: one row per input row, same ids and order."""
    from ecgtune.bundle import load_bundle
    from ecgtune.data import load_dataset
    from ecgtune.data.files import write_submission

    _check_output_path(args.out, args.data, args.bundle)
    bundle = load_bundle(args.bundle)
    data = load_dataset(args.data, signal_length=bundle.manifest["signal_length"], use_cache=not args.no_cache)
    probs = bundle.predict_proba(data.signals)
    values = bundle.decide(probs) if args.output == "decision" else probs
    try:
        write_submission(args.out, data.ids, values)
    except OSError as error:  # its file name would be the temporary file the submission is written to
        raise EcgtuneError(f"{args.out}: cannot write the submission ({error.strerror or error})") from None
    print(f"wrote {args.out}: {len(data)} rows ({args.output})")
    return 0


def _check_output_path(out: Path, data: Path, bundle: Path) -> None:
    """Refuses, before anything is read or written, an --out that would replace the --data file (by
    any path or link) or a file of the bundle, or that cannot be a file."""
    written = out.parent.resolve() / out.name  # the submission replaces this path, not a link's target
    bundle_folder = bundle.resolve()
    if written == bundle_folder or bundle_folder in written.parents:
        raise EcgtuneError(f"{out}: is the bundle folder {bundle} or inside it; write the submission elsewhere")
    if out.exists() and data.exists() and out.samefile(data):
        raise EcgtuneError(f"{out}: is the --data file; writing the submission there would destroy the input")
    if out.exists() and not out.is_file():
        raise EcgtuneError(f"{out}: exists and is not a regular file; --out names the submission file to write")
    blocking = next((parent for parent in out.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise EcgtuneError(f"{out}: {blocking} is a file, not a folder")


def run_make_data(args: argparse.Namespace) -> int:
    """Writes synthetic training (and optionally test) files."""
    from ecgtune.data import make_synthetic, write_dataset

    train = make_synthetic(args.n, seed=args.seed, signal_length=args.signal_length)
    write_dataset(train, args.out)
    print(f"wrote {args.out}: {args.n} labelled rows")
    if args.test_out is not None:
        test = make_synthetic(args.test_n, seed=args.seed + 1, signal_length=args.signal_length,
                              first_id=args.n, with_labels=False)
        write_dataset(test, args.test_out)
        print(f"wrote {args.test_out}: {args.test_n} unlabelled rows (ids {args.n}..{args.n + args.test_n - 1})")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """Validates a file (against a training file if given) and prints a summary."""
    from ecgtune.data import load_dataset

    use_cache = not args.no_cache
    train = load_dataset(args.train, require_labels=True, use_cache=use_cache) if args.train else None
    data = load_dataset(
        args.path, use_cache=use_cache,
        signal_length=train.signal_length if train else None, n_classes=train.n_classes if train else None,
    )
    print(f"{data.source}: {len(data)} rows, {data.signal_length} samples per beat, "
          f"values {data.signals.min():.4g}..{data.signals.max():.4g}")
    if data.labels is None:
        print("no labels (a test file)")
    else:
        counts = data.class_counts()
        shares = ", ".join(f"{label}: {count} ({count / len(data):.1%})" for label, count in enumerate(counts))
        print(f"{data.n_classes} classes: {shares}")
    if train is not None:
        labels = f", labels within its {train.n_classes} classes" if data.labels is not None else ""
        print(f"matches the training file {train.source}: {train.signal_length} samples per beat{labels}")
    return 0
