import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ecgtune.cli import _search_plan, parse_families, parse_search_arguments
from ecgtune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _search(tmp_path, *args, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "search.py"), "--runs-dir", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_arch_all_and_lists():
    assert len(parse_families("all")) == 6
    assert parse_families("net1, resnet1d,dilated_cnn") == ["dilated_cnn", "resnet1d"]
    with pytest.raises(ConfigError, match="unknown model 'lenet'; valid: cnn_lstm"):
        parse_families("plain_cnn,lenet")


def test_the_smoke_run_skips_the_refit(tmp_path):
    smoke_plan, _ = _search_plan(parse_search_arguments(["--smoke", "--runs-dir", str(tmp_path)]))
    assert smoke_plan.rows == 3000 and smoke_plan.num_samples == 6 and not smoke_plan.refit
    plan, _ = _search_plan(parse_search_arguments(["--runs-dir", str(tmp_path)]))
    assert plan.refit


def test_a_time_budget_alone_limits_the_trials(tmp_path):
    def trials(*flags):
        return _search_plan(parse_search_arguments(["--runs-dir", str(tmp_path), *flags]))[0].num_samples

    assert trials() is None, "with a time budget the clock ends the search, however fast the trials"
    assert trials("--time-budget", "0") == 100, "without one a number of trials must end it"
    assert trials("--num-samples", "7") == 7
    assert trials("--smoke", "--num-samples", "3") == 3


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One search of the smoke run's size over every family, with the refit that `--smoke` skips, tracked
    in MLflow, shared by the tests below: each checks one thing it left, so that an early failure does not
    hide the rest. They run in this file's order; the later ones rebuild its ensemble."""
    runs_dir = tmp_path_factory.mktemp("runs")
    result = _search(runs_dir, "--arch", "all", "--rows", "3000", "--num-samples", "6", "--min-epochs", "4",
                     "--max-epochs", "6", "--name", "smoke", "--predict-budget", "0", "--tracker", "mlflow")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(runs_dir / "smoke" / "leaderboard.csv") as stream:
        rows = list(csv.DictReader(stream))
    summary = json.loads((runs_dir / "smoke" / "ensemble.json").read_text())
    return SimpleNamespace(runs_dir=runs_dir, run_dir=runs_dir / "smoke", result=result, rows=rows, summary=summary)


def test_the_smoke_search_ranks_every_family(smoke):
    rows = smoke.rows
    assert {row["family"] for row in rows} == set(parse_families("all"))
    assert [int(row["rank"]) for row in rows] == list(range(1, len(rows) + 1))
    scores = [float(row["val_abs_sum"]) for row in rows]
    assert scores == sorted(scores)
    assert "Best per family" in smoke.result.stdout and "Best trials overall" in smoke.result.stdout
    assert (smoke.run_dir / "search.json").exists() and (smoke.run_dir / "validation.npz").exists()
    assert "<h2>Ensemble</h2>" in (smoke.run_dir / "report.html").read_text()
    assert f"tensorboard --logdir {smoke.run_dir}" in smoke.result.stdout


def test_the_smoke_ensemble_is_no_worse_than_its_best_trial(smoke):
    summary = smoke.summary
    assert sum(member["weight"] for member in summary["members"]) == pytest.approx(1.0)
    scores = summary["scores"]
    assert scores["ensemble_learned_rule"] <= scores["best_single_learned_rule"] <= scores["best_single_argmax"]
    assert scores["best_single_argmax"] == float(smoke.rows[0]["val_abs_sum"]), "the leaderboard's best trial"
    assert summary["cost_limit"] is None and summary["predict_budget"] is None
    assert summary["cost"] == pytest.approx(sum(member["cost"] for member in summary["members"]))
    assert summary["cost"] > 0


def test_the_ensemble_command_rebuilds_the_same_bundle(smoke):
    rebuilt = _ecgtune("ensemble", "--experiment", smoke.run_dir)
    assert rebuilt.returncode == 0 and "Decision rule" in rebuilt.stdout
    assert "Prediction time of all networks: " in rebuilt.stdout
    assert json.loads((smoke.run_dir / "ensemble.json").read_text()) == smoke.summary, "the refits reused"


def test_a_second_search_of_the_same_name_is_refused(smoke):
    again = _search(smoke.runs_dir, "--smoke", "--name", "smoke")
    assert again.returncode == 2 and "already holds an experiment" in again.stderr


def test_wandb_tracks_every_trial_and_the_ensemble(tmp_path):
    """--tracker wandb, in wandb's offline mode (no account or network): a run per trial with its
    configuration and validation abs-sum, and one for the ensemble with its scores. wandb is an
    optional extra that the README's test command does not install, so this runs only where it is."""
    pytest.importorskip("wandb")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    command = [sys.executable, str(ROOT / "search.py"), "--runs-dir", str(tmp_path), "--smoke", "--arch",
               "plain_cnn,dilated_cnn", "--name", "tracked", "--no-refit", "--tracker", "wandb"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "was not logged" not in result.stderr
    with open(tmp_path / "tracked" / "leaderboard.csv") as stream:
        ranked = list(csv.DictReader(stream))
    # an offline run keeps its records in one binary log (wandb-core's format); the names and the JSON
    # of the values are stored as they are
    runs = [path.read_bytes() for path in (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")]
    assert all(b"tracked" in run for run in runs), "every run is grouped under the experiment's name"
    trials = [run for run in runs if b"val_abs_sum" in run and b"family" in run]
    (ensemble,) = [run for run in runs if b"ensemble/ensemble_learned_rule" in run]
    assert len(trials) >= len(ranked) and len(runs) == len(trials) + 1
    score = json.loads((tmp_path / "tracked" / "ensemble.json").read_text())["scores"]["ensemble_learned_rule"]
    logged = ensemble[ensemble.index(b"ensemble/ensemble_learned_rule"):][:64]
    assert json.dumps(score).encode() in logged, "the ensemble's run holds its score"


def test_the_smoke_study_is_on_disk(smoke):
    """The search's Optuna study is on disk, with a finished trial for every ranked one, and no first
    point left queued beyond the trials the search ran."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = JournalStorage(JournalFileBackend(str(smoke.run_dir / "optuna.journal")))
    study = optuna.load_study(study_name=smoke.run_dir.name, storage=journal)
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(completed) >= len(smoke.rows) and {trial.params["family"] for trial in completed} >= {
        row["family"] for row in smoke.rows}
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,))


def test_the_smoke_trials_and_ensemble_are_tracked_in_mlflow(smoke):
    """--tracker mlflow: a run per trial with its configuration and per-epoch validation abs-sum, and
    one for the ensemble with its scores, in RUNS_DIR/mlflow.db under the experiment's name."""
    from mlflow.tracking import MlflowClient

    rows, summary = smoke.rows, smoke.summary
    client = MlflowClient(tracking_uri=f"sqlite:///{smoke.runs_dir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    trials = [run for run in runs if run.data.tags.get("ecgtune") == "trial"]
    (ensemble,) = [run for run in runs if run.data.tags.get("ecgtune") == "ensemble"]
    assert len(trials) >= len(rows)
    assert {run.data.params["family"] for run in trials} >= {row["family"] for row in rows}
    history = client.get_metric_history(trials[0].info.run_id, "val_abs_sum")
    assert len(history) >= 1 and all(point.value >= 0 for point in history)
    assert ensemble.data.metrics["ensemble/ensemble_learned_rule"] == summary["scores"]["ensemble_learned_rule"]


def test_the_smoke_networks_are_refit_within_the_budget(smoke):
    """The shipped networks were refit on every labelled row, and the minutes the six trials left trained
    further seeds of them; the run stayed within its budget and says how each stage spent it."""
    run_dir, summary = smoke.run_dir, smoke.summary
    networks = [checkpoint for member in summary["members"] for checkpoint in member["checkpoints"]]
    assert summary["refit"]["rows"] == 3000 and summary["refit"]["networks"] == len(networks)
    assert len(summary["members"][0]["checkpoints"]) > 2, "the heaviest member was refit from further seeds"
    for member in summary["members"]:
        described = [json.loads((Path(folder) / "config.json").read_text()) for folder in member["checkpoints"]]
        assert member["refit"] and all(network["training_rows"] == 3000 for network in described)
        assert all(network["train_config"]["ema_horizon"] > 0 and network["train_config"]["keep"] == "last"
                   for network in described)
        assert len({network["train_config"]["seed"] for network in described}) == len(described)
    timings = json.loads((run_dir / "timings.json").read_text())
    assert {"prepare", "search", "ensemble, refit and export", "report"} <= set(timings["stages"])
    assert sum(timings["stages"].values()) <= timings["total_s"] + 1e-6 <= 1.1 * timings["budget_s"]
    assert "<h2>Time</h2>" in (run_dir / "report.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["--arch", "resnet"], "unknown model 'resnet'"),
    (["--data", "missing.csv"], "missing.csv: file not found"),
    (["--resume"], "--resume needs the --name"),
    (["--trust-state"], "--trust-state vouches for an experiment to resume: use it with --resume"),
    (["--resume", "--name", "never-ran"], "no experiment to resume"),
    (["--min-epochs", "5", "--max-epochs", "3"], "--min-epochs 5 exceeds --max-epochs 3"),
    (["--reduction-factor", "1"], "--reduction-factor must be at least 2"),
    (["--rows", "10", "--val-fraction", "0.05"], "cannot split 10 rows"),
    (["--seed", "-1"], "--seed: must be an integer from 0 to 2**32 - 1"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial: must be a positive number"),
])
def test_search_errors_are_one_line_exit_2(tmp_path, args, message):
    result = _search(tmp_path, *args, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1]
    assert len(lines) == 1 or lines[0].startswith("usage:"), "only argparse adds its usage lines"


def test_a_file_of_one_class_is_refused_naming_the_file(tmp_path):
    import numpy as np
    from conftest import competition_csv

    path = competition_csv(tmp_path / "one_class.csv", np.full((20, 205), 0.5), labels=[2] * 20)
    result = _search(tmp_path, "--data", str(path), timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}: the labels hold 1 class; classification needs at least 2" in result.stderr.strip().splitlines()[-1]


def _ecgtune(*args):
    return subprocess.run([sys.executable, "-m", "ecgtune", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_the_smoke_bundle_predicts_and_refuses_bad_input(smoke, tmp_path):
    bundle = smoke.run_dir / "bundle"
    made = _ecgtune("make-data", "--n", 10, "--out", tmp_path / "train.csv", "--test-out", tmp_path / "test.csv",
                    "--test-n", 300, "--seed", 3)
    assert made.returncode == 0
    for output in ("decision", "proba"):
        result = _ecgtune("predict", "--bundle", bundle, "--data", tmp_path / "test.csv", "--out",
                          tmp_path / f"{output}.csv", "--output", output)
        assert result.returncode == 0, result.stderr
        with open(tmp_path / f"{output}.csv") as stream:
            rows = list(csv.reader(stream))
        assert rows[0] == ["id", "label_0", "label_1", "label_2", "label_3"]
        assert [int(row[0]) for row in rows[1:]] == list(range(10, 310))
        values = [[float(v) for v in row[1:]] for row in rows[1:]]
        if output == "proba":
            assert all(abs(sum(row) - 1) < 1e-4 for row in values)
        else:
            assert all(sum(row) <= 1 + 1e-6 for row in values)

    _check_tianchi_submission_format(tmp_path, bundle)

    onnx_file = bundle / "ensemble.onnx"
    original = onnx_file.read_bytes()
    onnx_file.write_bytes(original[:-10])
    truncated = _ecgtune("predict", "--bundle", bundle, "--data", tmp_path / "test.csv", "--out",
                         tmp_path / "never.csv")
    onnx_file.write_bytes(original)
    assert truncated.returncode == 2 and "checksum mismatch" in truncated.stderr
    assert "Traceback" not in truncated.stderr and not (tmp_path / "never.csv").exists()
    short = _ecgtune("make-data", "--n", 10, "--out", tmp_path / "short.csv", "--signal-length", 100)
    assert short.returncode == 0
    wrong_length = _ecgtune("predict", "--bundle", bundle, "--data", tmp_path / "short.csv", "--out",
                            tmp_path / "never.csv")
    assert wrong_length.returncode == 2 and "expected 205" in wrong_length.stderr


def _check_tianchi_submission_format(tmp_path, bundle):
    """On the real testA rows the submission has the official template's header, ids and order."""
    tianchi = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tianchi_sample"
    if not tianchi.is_dir():
        return
    result = _ecgtune("predict", "--bundle", bundle, "--data", tianchi / "testA.csv", "--out", tmp_path / "submit.csv")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "submit.csv") as ours, open(tianchi / "sample_submit.csv") as template:
        ours_rows, template_rows = list(csv.reader(ours)), list(csv.reader(template))
    assert ours_rows[0] == template_rows[0]
    assert [row[0] for row in ours_rows[1:]] == [row[0] for row in template_rows[1:len(ours_rows)]]


@pytest.mark.parametrize("command", [[], ["search"], ["ensemble"], ["report"], ["predict"], ["make-data"], ["inspect"]])
def test_every_help_prints(command, capsys):
    from ecgtune.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    assert shown.startswith("usage: ecgtune")
    if command == ["search"]:
        assert "--max-epochs" in shown and "20% of the search's time" in shown


# These two rebuild the smoke run's ensemble, so they come last.
def test_a_prediction_budget_no_network_meets_leaves_the_fastest_alone(smoke):
    """A budget no network meets leaves the fastest network alone, with a warning; nothing else fails.
    (Without the refit, which this does not check: it would retrain that network in a new Ray experiment.)"""
    run_dir = smoke.run_dir
    result = _ecgtune("ensemble", "--experiment", run_dir, "--predict-budget", "0.0001", "--no-refit")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warning: no network predicts within --predict-budget 0.0001" in result.stderr
    assert "The limit costs" in result.stdout
    summary = json.loads((run_dir / "ensemble.json").read_text())
    assert len(summary["members"]) == 1 and summary["predict_budget"] == 0.0001 < summary["predict_seconds"]
    assert "unlimited_ensemble_learned_rule" in summary["scores"]
    bad = _ecgtune("ensemble", "--experiment", run_dir, "--predict-budget", "-1")
    assert bad.returncode == 2 and "--predict-budget: must be a number, 0 or more, got '-1'" in bad.stderr


def test_cross_fitted_members_replace_the_holdout_ensemble(smoke):
    """--folds 2: the holdout ensemble's configurations retrained on 2 folds of all 3000 rows; the bundle
    averages both fold models of each; a second run reuses the finished folds instead of retraining."""
    run_dir, holdout = smoke.run_dir, smoke.summary
    command = ("ensemble", "--experiment", run_dir, "--folds", 2, "--fold-members", 2, "--predict-budget", 0)
    result = _ecgtune(*command)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "ensemble.json").read_text())
    assert summary["validation_rows"] == 3000 and summary["cross_fitted"]["folds"] == 2
    assert summary["holdout"]["scores"] == holdout["scores"]
    assert "Before cross-fitting" in (run_dir / "report.html").read_text()
    retrained = {member["trial"] for member in holdout["members"][:2]}
    assert {member["trial"] for member in summary["members"]} <= retrained
    checkpoints = [Path(path) for member in summary["members"] for path in member["checkpoints"]]
    assert [path.parent.name.rsplit("_", 1)[1] for path in checkpoints] == ["fold0", "fold1"] * len(summary["members"])
    manifest = json.loads((run_dir / "bundle" / "manifest.json").read_text())
    assert [m["checkpoints"] for m in manifest["members"]] == [m["checkpoints"] for m in summary["members"]]
    fold_trials = sorted(Path(summary["cross_fitted"]["experiment"]).glob("*_fold*"))
    assert len(fold_trials) == 2 * len(retrained)
    weights = Path(summary["cross_fitted"]["experiment"]).rglob("*.safetensors")
    written = {path: path.stat().st_mtime_ns for path in weights}
    again = _ecgtune(*command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {path: path.stat().st_mtime_ns for path in written} == written
    assert json.loads((run_dir / "ensemble.json").read_text()) == summary
