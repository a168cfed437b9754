"""The Python API, for notebooks: the command line's search, its bundles and its data reader.

    import ecgtune

    experiment = ecgtune.search(data="train.csv", time_budget_minutes=30, name="notebook")
    experiment.leaderboard.head()
    bundle = ecgtune.load_bundle(experiment.bundle_path)
    values = bundle.predict(ecgtune.read_heartbeats("testA.csv").signals)

Everything runs the same code as the commands, so a bundle's `predict` gives the values that
`python -m ecgtune predict` writes. Bad input raises `ecgtune.EcgtuneError` (a `DataError` for data)
with the message the command would print.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ecgtune import defaults
from ecgtune.bundle import Bundle, load_bundle
from ecgtune.data import HeartbeatData, load_dataset
from ecgtune.errors import ConfigError, EcgtuneError

ARGUMENTS_OF_THEIR_OWN = {"arch": "families", "data": "data", "time_budget": "time_budget_minutes", "name": "name",
                          "runs_dir": "runs_dir", "smoke": "smoke", "resume": "resume"}  # flag: `search` argument
DATA_FROM_FRAME = "data.parquet"  # a DataFrame given to `search` is kept here, so that --resume can read it


@dataclass(frozen=True)
class Experiment:
    """A finished search, read back from its folder."""

    path: Path                 # RUNS_DIR/NAME
    leaderboard: pd.DataFrame  # one row per ranked trial, best first (leaderboard.csv)
    scores: dict[str, float]   # the ensemble's validation abs-sum at each stage (ensemble.json); {} without one
    bundle_path: Path | None   # the exported ensemble, or None when none was built
    report_path: Path | None   # report.html, or None when none was written

    @classmethod
    def load(cls, path: str | Path) -> Experiment:
        """The experiment in `path` (RUNS_DIR/NAME) as its files describe it."""
        from ecgtune.experiment import LEADERBOARD_FILE, read_summary

        path = Path(path)
        try:
            leaderboard = pd.read_csv(path / LEADERBOARD_FILE)
        except FileNotFoundError:
            raise EcgtuneError(f"{path}: no {LEADERBOARD_FILE}; is it an experiment that has run?") from None
        except (OSError, ValueError) as error:
            raise EcgtuneError(f"{path / LEADERBOARD_FILE}: unreadable ({error})") from None
        summary = read_summary(path)
        scores = {} if summary is None else summary.scores
        bundle = path / "bundle"
        report = path / "report.html"
        return cls(path, leaderboard, scores, bundle if bundle.is_dir() else None,
                   report if report.is_file() else None)


def search(data: str | Path | pd.DataFrame | None = None, *, families: str | Sequence[str] = "all",
           time_budget_minutes: float | None = defaults.TIME_BUDGET_MINUTES, name: str | None = None, runs_dir: str | Path = "runs",
           smoke: bool = False, resume: bool = False, **options) -> Experiment:
    """Runs the pipeline of `python search.py`: search, leaderboard, ensemble, export and report.

    Args:
        data: a labelled file, a DataFrame in the competition format (kept as RUNS_DIR/NAME/data.parquet),
            or None for the embedded synthetic beats.
        families: "all", a comma list, or a list of family names or aliases (net1..net6).
        time_budget_minutes: the whole run's budget; None or 0 for none.
        name: the experiment's name (default: the start time).
        runs_dir, smoke, resume: as `--runs-dir`, `--smoke` and `--resume`.
        **options: any other flag of `python search.py --help`, with underscores: `num_samples=50`,
            `gpus_per_trial=0.25`, `no_refit=True`.

    Returns the finished experiment. Ctrl-C raises `ecgtune.errors.Interrupted`, which names the
    command that continues the run.
    """
    from ecgtune import cli
    from ecgtune.data import write_dataset

    name = name or time.strftime("%Y%m%d-%H%M%S")
    argv = ["--name", name, "--runs-dir", str(runs_dir), "--time-budget", str(time_budget_minutes or 0),
            "--arch", families if isinstance(families, str) else ",".join(families)]
    if isinstance(data, pd.DataFrame):
        frame_file = Path(runs_dir) / name / DATA_FROM_FRAME
        if not resume and frame_file.exists():  # never replace the data of an experiment that ran
            raise EcgtuneError(f"{frame_file.parent} already holds an experiment; continue it with resume=True "
                               "or pick another name")
        if not resume:
            beats = read_heartbeats(data, require_labels=True)
            frame_file.parent.mkdir(parents=True, exist_ok=True)
            write_dataset(beats, frame_file)
        data = frame_file
    if data is not None:
        argv += ["--data", str(data)]
    argv += ["--smoke"] * smoke + ["--resume"] * resume + _flags(options)
    return Experiment.load(cli.search_with(cli.parse_search_arguments(argv)))


def _flags(options: dict) -> list[str]:
    """Keyword options as `search.py` flags: True as the bare flag, False and None left out."""
    from ecgtune import cli

    known = cli.search_option_names() - set(ARGUMENTS_OF_THEIR_OWN)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))} (and "
                          f"{', '.join(ARGUMENTS_OF_THEIR_OWN.values())}, arguments of their own)")
    flags = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is not False and value is not None:
            flags += [flag, str(value)]
    return flags


def read_heartbeats(source: str | Path | pd.DataFrame, *, signal_length: int | None = None,
                    n_classes: int | None = None, require_labels: bool = False) -> HeartbeatData:
    """The validated ids, signals and labels of a competition-format file or DataFrame (columns id,
    heartbeat_signals and, for training data, label), checked as the commands check a file."""
    from ecgtune.data.files import read_frame

    if isinstance(source, pd.DataFrame):
        return read_frame(source, signal_length=signal_length, n_classes=n_classes, require_labels=require_labels)
    return load_dataset(source, signal_length=signal_length, n_classes=n_classes, require_labels=require_labels)


__all__ = ["Bundle", "Experiment", "load_bundle", "read_heartbeats", "search"]
