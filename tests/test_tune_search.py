"""The search with real Ray Tune on this machine: checkpoints, divergence, retries, resume."""

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import nest_params

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from ecgtune import trust  # noqa: E402
from ecgtune.errors import ConfigError  # noqa: E402
from ecgtune.checkpoint import CONFIG_FILE, PROBS_FILE, STATE_FILE, WEIGHTS_FILE  # noqa: E402
from ecgtune.data import holdout_split, make_synthetic  # noqa: E402
from ecgtune.models import create_model  # noqa: E402
from ecgtune.search_spaces import EpochBudget, default_point  # noqa: E402
from ecgtune.raytune import tune_adapter, tune_search  # noqa: E402
from ecgtune.trainer import predict_proba  # noqa: E402
from ecgtune.raytune.ray_session import session_processes  # noqa: E402
from ecgtune.raytune.tune_search import (  # noqa: E402
    SearchSettings,
    make_trainable,
    run,
    run_config,
    trial_rows,
)

ROOT = Path(__file__).resolve().parents[1]
# Trials run in Ray's worker processes, which cannot import this test module: ship its code by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def beats():
    data = make_synthetic(900, seed=0)
    train_rows, val_rows = holdout_split(data.labels, 0.25, seed=0)
    return data, train_rows, val_rows


def _settings(tmp_path, **overrides):
    values = dict(families=["plain_cnn", "dilated_cnn"], name="exp", storage=str(tmp_path), num_samples=3,
                  budget=EpochBudget(1, 2), grace_period_s=1.0)
    values.update(overrides)
    return SearchSettings(**values)


def test_every_family_starts_before_the_portfolio_unless_trials_are_long_and_each_comes_once(tmp_path):
    from ecgtune.raytune.tune_search import first_points
    from ecgtune.search_spaces import portfolio_points, training_configuration

    families = ["cnn_lstm", "dilated_cnn", "plain_cnn"]
    portfolio = portfolio_points(families, EpochBudget(1, 2))
    searching = first_points(_settings(tmp_path, families=families))
    assert [point["family"] for point in searching[:3]] == families, "a short search still tries every family"
    starts = [training_configuration(point) for point in searching[:3]]
    beyond_starts = [point for point in portfolio if training_configuration(point) not in starts]
    assert len(beyond_starts) < len(portfolio), "the portfolio holds family starts trained longer"
    assert searching[3:3 + len(beyond_starts)] == beyond_starts, "where the starts stand for them"
    long_trials = first_points(_settings(tmp_path, families=families, portfolio_first=True))
    assert long_trials[:len(portfolio)] == portfolio
    assert long_trials[len(portfolio)]["family"] == "cnn_lstm", "the one start the portfolio lacks follows it"
    for points in (searching, long_trials):
        configurations = [training_configuration(point) for point in points]
        assert all(configurations.count(configuration) == 1 for configuration in configurations)


def test_search_checkpoints_what_the_ensemble_needs(tmp_path, beats):
    data, train_rows, val_rows = beats
    settings = _settings(tmp_path)
    rows = trial_rows(run(settings, data, train_rows, val_rows))
    assert len(rows) == 3 and {row["family"] for row in rows} == {"plain_cnn", "dilated_cnn"}
    from ecgtune.raytune.tune_layout import folder_rows

    by_id = {row["trial_id"]: row for row in folder_rows(Path(settings.experiment_path))}
    assert {row["trial_id"]: row for row in rows} == by_id, "the trial folders give the same leaderboard as Ray"
    for row in rows:
        folder = Path(row["checkpoint"])
        described = json.loads((folder / CONFIG_FILE).read_text())
        from safetensors.torch import load_file

        model = create_model(described["family"], **described["model_config"])
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        probs = np.load(folder / PROBS_FILE)
        assert probs.shape == (len(val_rows), 4)
        np.testing.assert_allclose(predict_proba(model, torch.as_tensor(data.signals[val_rows])), probs, atol=1e-4)
        state = torch.load(folder / STATE_FILE, weights_only=True)
        assert state["kept_epoch"] == row["best_epoch"] == described["kept_epoch"]


def test_a_diverging_trial_stops_with_the_worst_score_and_the_search_goes_on(tmp_path, beats):
    data, train_rows, val_rows = beats
    config = nest_params(default_point("plain_cnn", EpochBudget(1, 3)))
    config["train"]["epochs"] = 3
    config["train"]["lr"] = tune.grid_search([3e-3, 1e12])
    config["train"]["schedule"] = "cosine"
    settings = _settings(tmp_path, families=["plain_cnn"])
    tuner = tune.Tuner(make_trainable(settings, data, train_rows, val_rows), param_space=config,
                       tune_config=tune.TuneConfig(metric="val_abs_sum", mode="min"), run_config=run_config(settings))
    results = list(tuner.fit())
    by_lr = {result.config["train"]["lr"]: result for result in results}
    assert all(result.error is None for result in results)
    diverged = by_lr[1e12].metrics
    assert diverged["diverged"] and diverged["val_abs_sum"] == 2.0 * len(val_rows)
    assert by_lr[3e-3].metrics["training_iteration"] == 3 and not by_lr[3e-3].metrics["diverged"]


def trial_that_raises_once(config, **kwargs):
    """The real trial, except that its first attempt raises right after its first checkpoint."""
    marker = Path(config["marker"])
    if not marker.exists():
        real_report = tune_adapter.tune.report

        def report_then_raise(metrics, checkpoint=None):
            real_report(metrics, checkpoint=checkpoint)
            marker.touch()
            raise RuntimeError("injected failure after the first checkpoint")

        tune_adapter.tune.report = report_then_raise
    tune_adapter.run_trial(config, **kwargs)


def test_a_trial_that_raises_is_retried_from_its_checkpoint(tmp_path, beats):
    data, train_rows, val_rows = beats
    config = nest_params(default_point("plain_cnn", EpochBudget(1, 3)))
    config["train"]["epochs"] = 3
    config["marker"] = tune.grid_search([str(tmp_path / "fails-once"), str(tmp_path / "never")])
    (tmp_path / "never").touch()
    settings = _settings(tmp_path, families=["plain_cnn"], max_failures=2)
    tuner = tune.Tuner(make_trainable(settings, data, train_rows, val_rows, trial_that_raises_once),
                       param_space=config, tune_config=tune.TuneConfig(metric="val_abs_sum", mode="min"),
                       run_config=run_config(settings))
    results = {Path(result.config["marker"]).name: result for result in tuner.fit()}
    for result in results.values():
        assert result.error is None and result.metrics["training_iteration"] == 3
    retried = results["fails-once"].metrics_dataframe
    assert list(retried["epoch"]) == [1, 2, 3], "resumed from the epoch-1 checkpoint, not from scratch"


KILLED_EPOCHS = 6  # enough for the trials to learn more than the class prior, which the ensemble requires (at 4,
# a run with the position channel in the space had none that did)
KILLED_TRIALS = 4  # two finish before the kill, the others after the resume


def _search_command(tmp_path, *extra):
    return [sys.executable, str(ROOT / "search.py"), "--arch", "plain_cnn", "--rows", "1500",
            "--num-samples", str(KILLED_TRIALS), "--min-epochs", str(KILLED_EPOCHS), "--max-epochs", str(KILLED_EPOCHS),
            "--scheduler", "fifo",
            "--time-budget", "0", "--no-refit",
            "--max-concurrent", "1", "--name", "killed", "--runs-dir", str(tmp_path), *extra]


def _finished_trials(experiment: Path) -> set[str]:
    finished = set()
    for result_file in experiment.glob("*/result.json"):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if any(line.get("training_iteration") == KILLED_EPOCHS for line in lines):
            finished.add(result_file.parent.name)
    return finished


def _listening_addresses(pids: list[int]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses that these processes' TCP sockets listen on, read from /proc."""
    inodes = set()
    for pid in pids:
        for link in Path(f"/proc/{pid}/fd").glob("*"):
            with contextlib.suppress(OSError):
                target = os.readlink(link)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN; addresses are 32-bit words in host order
                raw = bytes.fromhex(local.split(":")[0])
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                addresses.append(ipaddress.ip_address(words))
    return addresses


def _loopback(address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def test_a_search_killed_with_sigkill_resumes_and_keeps_what_finished(tmp_path):
    """A local run's Ray listens on the loopback interface alone; its processes that a killed driver left
    are ended on resume, which keeps the finished trials."""
    env = {**os.environ, "RAY_ADDRESS": ""}
    driver = subprocess.Popen(_search_command(tmp_path), start_new_session=True, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    experiment = tmp_path / "killed"
    deadline = time.monotonic() + 240
    while len(_finished_trials(experiment)) < 2 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.5)
    assert driver.poll() is None, "the search ended before it could be interrupted"
    [record] = (Path(os.environ["ECGTUNE_CACHE_DIR"]) / "ray-sessions").glob(f"{driver.pid}.json")
    killed_session = json.loads(record.read_text())["session"]
    listening = _listening_addresses([driver.pid, *session_processes(killed_session)])
    assert listening and all(_loopback(address) for address in listening), listening
    os.kill(driver.pid, signal.SIGKILL)  # the driver alone: Ray's processes outlive it
    driver.wait()
    finished_before = _finished_trials(experiment)
    assert len(finished_before) >= 2

    # A killed run may not have signed its latest state: the user vouches for their own experiment.
    resumed = subprocess.run(_search_command(tmp_path, "--resume", "--trust-state"), env=env, capture_output=True,
                             text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not session_processes(killed_session), "the killed run's Ray processes were ended"
    with open(experiment / "leaderboard.csv") as stream:
        import csv

        rows = list(csv.DictReader(stream))
    assert len(rows) == KILLED_TRIALS
    trial_dirs = {path.parent.name for path in experiment.glob("*/result.json")}
    assert finished_before <= trial_dirs and len(trial_dirs) == KILLED_TRIALS
    assert all(row["epochs_run"] == str(KILLED_EPOCHS) for row in rows)
    assert list(experiment.glob("*/events.out.tfevents.*")), "TensorBoard logs per trial"

    # The searcher that finished the experiment is still Optuna's TPE, and its study saw every trial.
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch()
    searcher.restore_from_dir(str(experiment))
    assert isinstance(searcher._ot_study.sampler, optuna.samplers.TPESampler)
    # That study lives in the experiment's journal, where optuna-dashboard can read it: every trial
    # finished, and one the killed run started after its searcher's last saved state marked failed.
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = JournalStorage(JournalFileBackend(str(experiment / "optuna.journal")))
    study = optuna.load_study(study_name="killed", storage=journal)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == KILLED_TRIALS
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert len(searcher._ot_study.trials) == len(study.trials)


def test_ctrl_c_keeps_the_state_exports_nothing_and_names_the_resume_command(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": ""}
    driver = subprocess.Popen(_search_command(tmp_path), start_new_session=True, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    experiment = tmp_path / "killed"
    deadline = time.monotonic() + 240
    while not _finished_trials(experiment) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.5)
    assert driver.poll() is None, "the search ended before it could be interrupted"
    driver.send_signal(signal.SIGINT)
    _, stderr = driver.communicate(timeout=180)
    assert driver.returncode == 130, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].endswith(
        f"Continue it with: python search.py --resume --name killed --runs-dir {tmp_path}")
    assert not (experiment / "bundle").exists() and not list(experiment.glob(".bundle.*"))
    trust.verify_state(experiment)  # signed on the way out, so resuming needs no vouching

    # Someone swaps Ray's pickled state: the resume refuses to load it.
    genuine = (experiment / "tuner.pkl").read_bytes()
    (experiment / "tuner.pkl").write_bytes(genuine + b"payload")
    refused = subprocess.run(_search_command(tmp_path, "--resume"), env=env, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2
    assert "tuner.pkl: changed since ecgtune signed it" in refused.stderr and "--trust-state" in refused.stderr
    assert "Traceback" not in refused.stderr
    (experiment / "tuner.pkl").write_bytes(genuine)
    assert tune.Tuner.can_restore(str(experiment)) and trust.is_signed(experiment), "resumable as the kill test's"


def test_a_search_whose_ray_state_is_damaged_resumes_from_its_trial_folders(tmp_path, beats, capsys):
    """A disk that filled while Ray saved its state leaves its files cut short; --resume keeps every
    finished trial (the leaderboard reads the trial folders), moves Ray's damaged files aside and
    runs the trials that were left, with the Optuna study going on in its journal."""
    from dataclasses import replace

    from ecgtune.raytune.tune_layout import damaged_state_file, folder_rows, ray_state_files

    data, train_rows, val_rows = beats
    settings = _settings(tmp_path, num_samples=2, journal=str(tmp_path / "exp.journal"))
    run(settings, data, train_rows, val_rows)
    experiment = Path(settings.experiment_path)
    before = {row["trial_id"]: row for row in folder_rows(experiment)}
    assert len(before) == 2
    damaged = ray_state_files(experiment)
    assert damaged_state_file(experiment) is None
    for path in damaged:
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 3])
    assert damaged_state_file(experiment) is not None, "found without unpickling anything"
    run(replace(settings, num_samples=3), data, train_rows, val_rows, resume=True)
    assert "rebuilt from its 2 trial folder(s), which are all kept" in capsys.readouterr().err
    after = {row["trial_id"]: row for row in folder_rows(experiment)}
    assert set(before) < set(after) and len(after) == 3, "every finished trial kept, and the one left was run"
    assert all(after[trial] == row for trial, row in before.items())
    (aside,) = experiment.glob("damaged-ray-state-*")
    assert sorted(path.name for path in aside.iterdir()) == sorted(path.name for path in damaged)
    import optuna

    study = optuna.load_study(study_name="exp", storage=tune_search.study_storage(settings)["storage"])
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(completed) == 3, "the study went on"
    assert len({json.dumps(trial.params, sort_keys=True) for trial in completed}) == 3, "no finished point rerun"


def test_the_progress_line_says_what_a_person_wants_to_know(capsys):
    from types import SimpleNamespace

    from ecgtune.raytune.tune_search import ProgressLine

    trials = [SimpleNamespace(trial_id=family, status=status, config={"family": family}) for status, family in
              [("TERMINATED", "plain_cnn"), ("TERMINATED", "resnet1d"), ("RUNNING", "vgg_cnn"), ("ERROR", "cnn_lstm")]]
    progress = ProgressLine(time_budget_s=600.0, every_s=3600.0)
    progress.on_trial_result(1, trials, trials[0], {"val_abs_sum": 80.0})
    progress.on_trial_result(1, trials, trials[1], {"val_abs_sum": 60.0})
    progress.on_trial_result(2, trials, trials[0], {"val_abs_sum": 70.0})
    progress.on_step_end(2, trials)
    assert capsys.readouterr().out == "", "not before its interval"
    progress.on_experiment_end(trials)
    line = capsys.readouterr().out.strip()
    assert line.endswith("trials: 2 finished, 1 running, 1 failed, best validation abs-sum 60 (resnet1d), "
                         "10.0 min left")


def test_the_progress_line_says_how_far_slow_epochs_are(capsys, monkeypatch):
    from types import SimpleNamespace

    from ecgtune.raytune import tune_search

    now = [100.0]
    monkeypatch.setattr(tune_search.time, "monotonic", lambda: now[0])
    slow, fast = (SimpleNamespace(trial_id=name, status="RUNNING", config={"family": family, "train": {"epochs": 25}})
                  for name, family in (("a", "dilated_cnn"), ("b", "plain_cnn")))
    progress = tune_search.ProgressLine(time_budget_s=600.0)
    progress.on_trial_result(3, [slow, fast], slow, {"val_abs_sum": 300.0, "epoch": 3, "time_this_iter_s": 20.0})
    progress.on_trial_result(3, [slow, fast], fast, {"val_abs_sum": 400.0, "epoch": 3, "time_this_iter_s": 2.0})
    now[0] += 5.0
    progress.show([slow, fast])
    line = capsys.readouterr().out.strip()
    assert line.endswith("; now: dilated_cnn epoch 4/25 25%"), "a 2 s epoch needs no progress of its own"
    progress.on_trial_result(4, [slow, fast], slow, {"epoch": 4, "epochs_planned": 31, "time_this_iter_s": 20.0})
    progress.show([slow, fast])
    assert capsys.readouterr().out.strip().endswith("epoch 5/31 0%"), "a long trial's epochs as re-planned"


TRIAL_PAUSE_S = 4.0  # longer than a worker process's start, so that trials started together overlap


def trial_that_waits(config, **kwargs):
    """Reports a made-up score after a pause, and when it ran."""
    started = time.time()
    time.sleep(TRIAL_PAUSE_S)
    tune.report({"val_abs_sum": 1.0, "started": started, "ended": time.time()})


def test_the_searcher_fills_every_slot_at_once(tmp_path, beats):
    # Tune keeps one trial of a searcher pending at a time unless told otherwise: slots then fill one by
    # one, and on a GPU with eight slots about two trials ran at once (BENCHMARKS 11j)
    slots = 4
    settings = _settings(tmp_path, num_samples=slots, cpus_per_trial=2 / slots, scheduler="fifo")
    assert tune_search.trial_slots(settings) == slots
    results = run(settings, *beats, trainable=trial_that_waits)
    spans = [(result.metrics["started"], result.metrics["ended"]) for result in results]
    most_at_once = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert most_at_once == slots
    assert tune_search.MAX_PENDING_VARIABLE not in os.environ, "the process's environment is left as it was"


def trial_that_reports_at_once(config, **kwargs):
    tune.report({"val_abs_sum": 1.0})


def test_without_a_number_of_trials_the_clock_ends_the_search(tmp_path, beats):
    from ecgtune.raytune.tune_search import first_points

    settings = _settings(tmp_path, num_samples=None, time_budget_s=15.0, scheduler="fifo")
    started = time.monotonic()
    results = run(settings, *beats, trainable=trial_that_reports_at_once)
    assert time.monotonic() - started >= settings.time_budget_s
    assert len(results) > len(first_points(settings)), "the searcher went on past its first points"
    with pytest.raises(ConfigError, match="needs a number of trials"):
        run(_settings(tmp_path, num_samples=None, name="endless"), *beats, trainable=trial_that_reports_at_once)


def test_a_long_trial_fills_its_time_allowance_at_its_own_pace(tmp_path, beats):
    """The plan's allowance reaches the trial that trains its point, which re-plans its epochs: here an
    allowance far beyond its 4 planned epochs doubles them, the most a re-plan gives."""
    from ecgtune.checkpoint import read_checkpoint
    from ecgtune.raytune.tune_layout import latest_checkpoints
    from ecgtune.search_spaces import default_point

    point = {**default_point("plain_cnn"), "train/epochs": 4}
    other = {**default_point("dilated_cnn"), "train/epochs": 4}
    settings = _settings(tmp_path, num_samples=2, scheduler="fifo", budget=EpochBudget(4, 4),
                         long_trial_points=[point, other], long_trial_seconds=[3600.0, 0.0])
    run(settings, *beats)
    trained = {trial.split("_")[0]: read_checkpoint(folder)
               for trial, folder in latest_checkpoints(Path(settings.experiment_path)).items()}
    assert trained["plain"].epochs_trained == trained["plain"].train_config["epochs"] == 8
    assert trained["plain"].train_config["time_allowance_s"] == 3600.0
    assert trained["dilated"].epochs_trained == 4, "an allowance of 0 keeps the plan"


def test_the_pace_is_measured_as_the_trials_would_train(tmp_path):
    from ecgtune.raytune.tune_search import measure_pace, trial_slots

    settings = _settings(tmp_path, families=["plain_cnn", "dilated_cnn"])
    assert trial_slots(settings) == 2, "the module's Ray has 2 CPUs, one per trial"
    small, large = [("plain_cnn", {"widths": widths, "kernel_sizes": (5, 5)}, 256) for widths in ((8, 8), (64, 128))]
    paces = measure_pace(settings, signal_length=205, n_classes=4, networks=[small, large])
    assert paces is not None and all(1e-6 < pace < 1.0 for pace in paces), "seconds per training row of one trial"
    assert paces[0] < paces[1], "the wider network trains slower"


def test_a_budgeted_plan_gets_its_epoch_range_from_the_pace(tmp_path, beats, capsys):
    from ecgtune import experiment, pipeline

    data, train_rows, _ = beats
    plan = experiment.Plan(families=["plain_cnn"], storage=str(tmp_path), rows=900, val_fraction=0.25,
                           time_budget_s=600.0)
    assert plan.num_samples is None, "the clock, not a number of trials, ends a budgeted search"
    settings = pipeline.search_settings(plan, pipeline.Resources(), tmp_path / "exp")
    settled = pipeline.settle_epochs(plan, settings, pipeline.Clock(600.0), data, len(train_rows))
    assert 4 <= settled.min_epochs <= settled.max_epochs <= 200
    assert settled.max_epochs > 12, "675 rows an epoch pay for far more than the default range in 10 minutes"
    assert f"epochs: {settled.min_epochs}-{settled.max_epochs} per trial" in capsys.readouterr().err


def test_a_budget_too_short_to_search_trains_one_long_trial_per_slot(tmp_path, beats, capsys):
    from ecgtune import experiment, pipeline
    from ecgtune.raytune.tune_search import trial_slots

    data, _, _ = beats
    plan = experiment.Plan(families=["plain_cnn"], storage=str(tmp_path), rows=900, val_fraction=0.25,
                           num_samples=100, time_budget_s=120.0)
    settings = pipeline.search_settings(plan, pipeline.Resources(), tmp_path / "exp")
    # as if every epoch were of 3 million rows: 100 s of search buy a few epochs over the two slots
    settled = pipeline.settle_epochs(plan, settings, pipeline.Clock(120.0), data, 3_000_000)
    assert settled.num_samples == trial_slots(settings) == 2 and settled.scheduler == "fifo" and settled.long_trials
    assert len(settled.long_trial_points) == 2 and settled.min_epochs >= 1, "each trial trains for the whole search"
    assert "too few epochs to search" in capsys.readouterr().err
    long_settings = pipeline.search_settings(settled, pipeline.Resources(), tmp_path / "exp")
    assert tune_search.first_points(long_settings) == settled.long_trial_points, "the searcher tries exactly these"


@pytest.mark.parametrize("long_pace, trials, epoch_s", [(1e-3, 2, 20.0), (2.5e-4, 4, 10.0)])
def test_long_trials_past_their_useful_epochs_train_twice_as_many_networks(tmp_path, beats, monkeypatch,
                                                                           long_pace, trials, epoch_s):
    """With the timer faked: 980 s of search at 20 s an epoch buy 98 epochs over two slots, too few to
    search. Networks timed at 20 s an epoch then get 41 epochs each (85 % of the search), alone on their
    slot (two would get 20, under LONG_TRIAL_EPOCHS); at 5 s, two networks share each slot at 83 epochs
    each: four networks instead of two of 166."""
    from ecgtune import experiment, pipeline

    data, _, _ = beats
    plan = experiment.Plan(families=["plain_cnn", "dilated_cnn", "resnet1d"], storage=str(tmp_path), rows=900,
                           val_fraction=0.25, num_samples=100, time_budget_s=1000.0, refit=False)
    settings = pipeline.search_settings(plan, pipeline.Resources(), tmp_path / "exp")
    timings = []  # the first times the compact starts: too few epochs to search

    def measure_pace(settings, length, classes, networks):
        timings.append(networks)
        return [1e-3 if len(timings) == 1 else long_pace] * len(networks)

    monkeypatch.setattr(tune_search, "measure_pace", measure_pace)
    settled = pipeline.settle_epochs(plan, settings, pipeline.Clock(1000.0), data, 20_000)
    assert settled.num_samples == trials and settled.long_trials and settled.scheduler == "fifo"
    slot_s = _long_trial_slot_seconds(1000.0)
    assert settled.long_trial_points[0]["train/epochs"] == int(slot_s / epoch_s), "the portfolio's first, as it is"
    assert len(timings) == (3 if trials == 4 else 2), "partners are timed only where one could fit"


def _long_trial_slot_seconds(budget_s: float) -> float:
    """A long-trial slot's training seconds in a run of `budget_s` with the clock standing still."""
    from ecgtune import pipeline

    return pipeline.LONG_TRIAL_SHARE * (budget_s - max(pipeline.FINISH_MIN_S, pipeline.FINISH_SHARE * budget_s))


@pytest.mark.parametrize("epoch_s, refit", [(20.0, False), (14.0, True), (8.0, True)])
def test_long_trials_leave_time_to_refit_their_networks_where_they_still_train_long(tmp_path, beats, monkeypatch,
                                                                                  capsys, epoch_s, refit):
    """With the timer faked: 980 s of search at 20 s an epoch of 20,000 rows are too few to search. Long
    trials at 20 s an epoch would get 16 epochs if they were also to be refit on every row, under
    REFIT_MIN_EPOCHS, so each trains alone for the whole search and the plan drops the refit, which the
    search then keeps no time for; at 14 s they get 23 and at 8 s 41, and their refit on 4/3 the rows
    fits in the search's time with the refit's margin and the Ray experiments' ends."""
    from ecgtune import experiment, pipeline
    from ecgtune.experiment import refit_margin
    from ecgtune.raytune.tune_search import EXPERIMENT_END_S

    data, _, _ = beats
    plan = experiment.Plan(families=["plain_cnn", "dilated_cnn", "resnet1d"], storage=str(tmp_path), rows=900,
                           val_fraction=0.25, num_samples=100, time_budget_s=1000.0)
    settings = pipeline.search_settings(plan, pipeline.Resources(), tmp_path / "exp")
    timings = []

    def measure_pace(settings, length, classes, networks):
        timings.append(networks)
        return [1e-3 if len(timings) == 1 else epoch_s / 20_000] * len(networks)

    monkeypatch.setattr(tune_search, "measure_pace", measure_pace)
    clock = pipeline.Clock(1000.0)
    settled = pipeline.settle_epochs(plan, settings, clock, data, 20_000)
    search_s = pipeline.search_time(clock)
    epochs = [point["train/epochs"] for point in settled.long_trial_points]
    assert len(epochs) == 2 and settled.long_trials
    said = capsys.readouterr().err
    assert settled.refit == refit
    if refit:
        assert "then refit on all 900 rows" in said
        assert min(epochs) >= pipeline.REFIT_MIN_EPOCHS
        trial_s = max(settled.long_trial_seconds)  # each re-plans its epochs to fill this, validation and all
        assert trial_s + EXPERIMENT_END_S + refit_margin(trial_s * 4 / 3) <= search_s, "the refit fits"
        assert max(epochs) < pipeline.LONG_TRIAL_SHARE * search_s / epoch_s / 2, "it trains less than half the time"
    else:
        assert "not refit: beside a refit on every row a network would train 16 epochs" in said
        assert min(epochs) == int(pipeline.LONG_TRIAL_SHARE * search_s / epoch_s), "alone, for the whole search"
        assert search_s - 2 * pipeline.LONG_TRIAL_MARGIN_S < min(settled.long_trial_seconds) < search_s


def test_a_slot_shares_its_time_only_with_a_partner_that_fits(tmp_path, beats, monkeypatch):
    """A first-round network takes as partner the next first point with which both still get
    LONG_TRIAL_EPOCHS in the slot's time, timed with its own network and rows per epoch: plain_cnn (at
    eight times the others' pace) fits with none, and an earlier search's point that oversamples with
    SMOTE trains on more rows an epoch, so it and its partner get fewer epochs."""
    from dataclasses import replace

    from ecgtune import experiment, pipeline
    from ecgtune.data import rows_per_epoch

    data, _, _ = beats
    plan = experiment.Plan(families=["plain_cnn", "dilated_cnn", "resnet1d"], storage=str(tmp_path), rows=900,
                           val_fraction=0.25, num_samples=100, time_budget_s=1000.0, refit=False)
    oversampling = {**default_point("dilated_cnn"), "data/imbalance": "smote", "train/lr": 1e-3}
    settings = replace(pipeline.search_settings(plan, pipeline.Resources(), tmp_path / "exp"),
                       warm_points=[oversampling])
    timings = []

    def measure_pace(settings, length, classes, networks):
        timings.append(networks)
        if len(timings) == 1:  # the compact starts: too few epochs to search
            return [1e-3] * len(networks)
        return [2e-3 if family == "plain_cnn" else 2.5e-4 for family, _, _ in networks]

    monkeypatch.setattr(tune_search, "measure_pace", measure_pace)
    settled = pipeline.settle_epochs(plan, settings, pipeline.Clock(1000.0), data, 20_000)
    points = settled.long_trial_points
    # 833 s a slot; 5 s an epoch of 20,000 rows, more with SMOTE: the warm point and the portfolio's
    # first train first; the portfolio's second shares the quicker one's slot, resnet1d's start the other
    slot_s = _long_trial_slot_seconds(1000.0)
    smote_epoch_s = 5.0 * rows_per_epoch(data.labels, "smote") / len(data.labels)
    assert smote_epoch_s > 7.5, "the synthetic beats are imbalanced"
    assert [point["family"] for point in points] == ["dilated_cnn", "dilated_cnn", "dilated_cnn", "resnet1d"]
    assert points[0]["data/imbalance"] == "smote"
    shared, paired = int(slot_s / (smote_epoch_s + 5.0)), int(slot_s / 10.0)
    assert [point["train/epochs"] for point in points] == [shared, paired, paired, shared]
    assert shared >= pipeline.LONG_TRIAL_EPOCHS
    allowances = settled.long_trial_seconds  # a network and its partner share their slot's time
    slot_with_validation_s = slot_s / pipeline.LONG_TRIAL_SHARE
    for first, partner in [(0, 3), (1, 2)]:
        assert 0.9 * slot_with_validation_s < allowances[first] + allowances[partner] < slot_with_validation_s
