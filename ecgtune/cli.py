"""Command line: `python -m ecgtune {search,make-data,inspect}`; `python search.py` is `search`.

Errors in the user's input are printed as one line (`error: ...`) with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from ecgtune.errors import DataWarning, EcgtuneError

DEFAULT_ROWS = 20_000
SMOKE_ROWS, SMOKE_EPOCHS = 2000, 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="ecgtune", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_search_arguments(commands.add_parser(
        "search", help="train every chosen family and rank them on validation abs-sum",
        description="Train each chosen architecture family with default hyper-parameters, print a "
                    "leaderboard and write runs/NAME/leaderboard.csv."))

    make_data = commands.add_parser(
        "make-data", help="write synthetic beats in the competition format",
        description="Write deterministic synthetic beats as id,heartbeat_signals,label "
                    "(.csv, .csv.gz or .parquet, by the file's suffix).")
    make_data.add_argument("--n", type=_positive_int, default=100_000, help="training rows (default 100000)")
    make_data.add_argument("--out", type=Path, required=True, help="training file to write")
    make_data.add_argument("--test-out", type=Path, help="also write an unlabelled test file here")
    make_data.add_argument("--test-n", type=_positive_int, default=20_000, help="test rows (default 20000)")
    make_data.add_argument("--signal-length", type=_positive_int, default=205, help="samples per beat (default 205)")
    make_data.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    inspect = commands.add_parser(
        "inspect", help="validate a data file and summarise it",
        description="Read a data file with every check the search applies and print its shape and classes.")
    inspect.add_argument("path", type=Path, help="CSV, CSV.gz or Parquet file")
    inspect.add_argument("--train", type=Path, help="training file the inspected (test) file must match")
    inspect.add_argument("--no-cache", action="store_true", help="neither read nor write the parse cache")
    return parser


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `search` (also those of `python search.py`)."""
    from ecgtune.data import IMBALANCE_METHODS
    from ecgtune.trainables.trainer import LOSSES, SCHEDULES, TrainConfig

    defaults = TrainConfig()
    parser.add_argument("--arch", default="all",
                        help="'all' or a comma list of families or aliases (net1..net6); default all")
    parser.add_argument("--data", type=Path,
                        help="labelled training file (CSV, CSV.gz, Parquet); default: embedded synthetic beats")
    parser.add_argument("--rows", type=_positive_int,
                        help=f"rows of the embedded synthetic data when --data is not given (default {DEFAULT_ROWS})")
    parser.add_argument("--val-fraction", type=_fraction, default=0.2, help="stratified validation share (default 0.2)")
    parser.add_argument("--imbalance", choices=IMBALANCE_METHODS, default="none",
                        help="class-imbalance handling of the training fold (default none)")
    parser.add_argument("--epochs", type=_positive_int, default=5, help="epochs per family (default 5)")
    parser.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size,
                        help=f"default {defaults.batch_size}")
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"peak learning rate (default {defaults.lr})")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                        help=f"AdamW weight decay (default {defaults.weight_decay})")
    parser.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule,
                        help=f"learning-rate schedule (default {defaults.schedule})")
    parser.add_argument("--loss", choices=LOSSES, default=defaults.loss, help=f"default {defaults.loss}")
    parser.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing,
                        help=f"epsilon (default {defaults.label_smoothing})")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, initialisation and batches")
    parser.add_argument("--name", help="run name (default: the start time, e.g. 20261124-013000)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where runs are written (default runs)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the parse cache")
    parser.add_argument("--smoke", action="store_true",
                        help=f"a quick check: {SMOKE_ROWS} synthetic rows (unless --data or --rows), {SMOKE_EPOCHS} epoch")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Runs a subcommand; returns the exit code (2 for bad input, 130 when interrupted)."""
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        if args.command == "search":
            return run_search(args)
        if args.command == "make-data":
            return run_make_data(args)
        return run_inspect(args)
    except EcgtuneError as error:
        print(f"error: {error}", file=sys.stderr)
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
    """Trains each chosen family once with default hyper-parameters and writes the leaderboard."""
    from tqdm.auto import tqdm

    from ecgtune.data import holdout_split, load_dataset, make_synthetic, prepare_fold
    from ecgtune.report import LEADERBOARD_COLUMNS, format_table, rank_rows, write_csv
    from ecgtune.trainables import TrainConfig, resolve_device, train_family

    families = parse_families(args.arch)
    config = TrainConfig(
        epochs=SMOKE_EPOCHS if args.smoke else args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, schedule=args.schedule, loss=args.loss,
        label_smoothing=args.label_smoothing, seed=args.seed, device=args.device,
    )
    if args.data is not None:
        data = load_dataset(args.data, require_labels=True, use_cache=not args.no_cache)
    else:
        data = make_synthetic(args.rows or (SMOKE_ROWS if args.smoke else DEFAULT_ROWS), seed=args.seed)
    train_rows, val_rows = holdout_split(data.labels, args.val_fraction, seed=args.seed)
    fold = prepare_fold(data, train_rows, val_rows, imbalance=args.imbalance, seed=args.seed)
    run_dir = args.runs_dir / (args.name or time.strftime("%Y%m%d-%H%M%S"))
    print(f"data: {data.source}: {len(data)} rows x {data.signal_length} samples, {data.n_classes} classes "
          f"(train {len(fold.train_labels)}, validation {len(fold.val_labels)}); device: {resolve_device(args.device)}",
          file=sys.stderr)

    rows = []
    try:
        for family in families:
            with tqdm(total=config.epochs, desc=f"{family:>14}", unit="epoch", file=sys.stderr) as bar:
                def show(report, bar=bar):
                    bar.set_postfix(abs_sum=f"{report['abs_sum']:.0f}", acc=f"{report['accuracy']:.4f}")
                    bar.update(1)

                model, result = train_family(family, fold, config=config, on_epoch=show)
            if result.diverged and not result.history:
                print(f"warning: {family} diverged in its first epoch; left out", file=sys.stderr)
                continue
            best = result.best_metrics
            rows.append({
                "family": family, "val_abs_sum": best["abs_sum"], "val_abs_sum_proba": best["abs_sum_proba"],
                "val_accuracy": best["accuracy"], "val_log_loss": best["log_loss"], "best_epoch": result.best_epoch,
                "parameters": sum(p.numel() for p in model.parameters()), "seconds": result.seconds,
            })
    finally:
        if rows:
            ranked = rank_rows(rows)
            write_csv(ranked, run_dir / "leaderboard.csv", [key for key, _, _ in LEADERBOARD_COLUMNS])
            print(format_table(ranked))
            print(f"leaderboard: {run_dir / 'leaderboard.csv'}")
    return 0


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
    return 0
