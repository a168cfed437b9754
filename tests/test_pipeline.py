"""The time budget covers the whole pipeline: how it is shared between the stages, and recorded."""

import json
import time
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from ecgtune import pipeline
from ecgtune.errors import EcgtuneError


class FakeClock:
    """time.monotonic under the test's control."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def fake_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time, "monotonic", clock)
    return clock


def test_the_search_gets_what_the_finishing_stages_leave(fake_time):
    clock = pipeline.Clock(480.0)
    fake_time.now += 30.0  # data, Ray and the plan took 30 s
    finishing = max(pipeline.FINISH_MIN_S, pipeline.FINISH_SHARE * 480.0)
    assert pipeline.search_time(clock) == pytest.approx(480 - 30 - finishing)
    assert pipeline.search_time(pipeline.Clock(None)) is None


def test_the_search_ends_early_enough_to_refit_its_best_trial(fake_time):
    from ecgtune.experiment import refit_margin
    from ecgtune.raytune.tune_layout import FIRST_EPOCH_FRACTION, METRIC
    from ecgtune.raytune.tune_search import EXPERIMENT_END_S, RefitReserve

    stopper = RefitReserve(time_budget_s=300.0, training_rows=8000, refit_rows=10000, max_seconds=150.0)
    assert not stopper.stop_all()
    # 4 epochs (the first a quarter) of 8,000 rows trained in 65 s: 10,000 rows x 4 epochs take 100 s;
    # Ray's time_total_s, which counts the trial's start too, is not the pace
    rows_seen = (3 + FIRST_EPOCH_FRACTION) * 8000
    stopper("a", {METRIC: 50.0, "epoch": 4, "seconds": 100.0 * rows_seen / 40_000, "time_total_s": 90.0,
                  "time_this_iter_s": 6.0})
    stopper("b", {METRIC: 80.0, "epoch": 1, "seconds": 1.0, "time_this_iter_s": 1.0})  # worse: not reserved
    # "a" is expected to report again in 6 s: the search stops that much earlier, as running trials stop at a report
    kept = refit_margin(100.0) + EXPERIMENT_END_S
    assert stopper.reserve() == pytest.approx(kept + 6.0), "the estimate with its margins"
    fake_time.now += 5.0
    assert stopper.reserve() == pytest.approx(kept + 1.0), "the wait shrinks as the report nears"
    fake_time.now += 20.0
    assert stopper.reserve() == pytest.approx(kept), "no report due: no wait"
    fake_time.now += 300.0 - 25.0 - kept - 1.0
    assert not stopper.stop_all()
    fake_time.now += 2.0
    assert stopper.stop_all()
    stopper("c", {METRIC: 10.0, "epoch": 12, "seconds": 400.0})  # the new best needs more than 150 s
    assert stopper.reserve() == 0.0 and not stopper.stop_all()


def test_the_refit_gets_what_the_search_left_but_the_finishing_reserve(fake_time):
    clock = pipeline.Clock(480.0)
    fake_time.now += 400.0
    finishing = max(pipeline.FINISH_MIN_S, pipeline.FINISH_SHARE * 480.0)
    assert pipeline._refit_seconds(clock) == pytest.approx(80.0 - finishing)
    fake_time.now += 100.0  # the search overran: nothing left for the refit, never a negative time
    assert pipeline._refit_seconds(clock) == 0.0


def test_further_refit_seeds_fill_the_time_the_search_left():
    from ecgtune.experiment import REFIT_START_S, plan_refit

    # without a budget: further seeds only on slots no network needs
    assert plan_refit({"a": 100.0}, 2, None, seeds=2) == ({"a": [0, 1]}, 100.0), "the second slot was idle"
    assert plan_refit({"a": 100.0}, 2, None, seeds=1) == ({"a": [0]}, 100.0)
    assert plan_refit({"a": 100.0, "b": 30.0}, 2, None, seeds=2) == ({"a": [0], "b": [0]}, 100.0), "no slot idle"
    assert plan_refit({"a": 100.0, "b": 30.0}, 3, None, seeds=3) == ({"a": [0, 1], "b": [0]}, 100.0), "heaviest first"
    assert plan_refit({"a": 100.0, "b": 30.0}, 5, None, seeds=2) == ({"a": [0, 1], "b": [0, 1]}, 100.0), "2 at most"
    # within a budget: a member whose refit would not end in time is left as the search trained it
    assert plan_refit({"a": 100.0, "b": 30.0}, 2, 60.0, seeds=2) == ({"b": [0, 1]}, 30.0)
    assert plan_refit({"a": 100.0}, 2, 20.0, seeds=2) == ({}, 0.0)
    # the time left trains further seeds after the others, each paying for its worker's start
    queued = 100.0 + REFIT_START_S + 100.0
    assert plan_refit({"a": 100.0}, 2, 1000.0, seeds=6) == ({"a": [0, 1, 2, 3, 4, 5]}, 2 * queued - 100.0)
    assert plan_refit({"a": 100.0}, 2, 250.0, seeds=6) == ({"a": [0, 1, 2, 3]}, queued), "what ends in time"
    # a round at a time over the members, each seed on the slot that frees first
    assert plan_refit({"a": 100.0, "b": 30.0}, 2, 400.0, seeds=3) == ({"a": [0, 1, 2], "b": [0, 1, 2]}, 250.0)


def test_the_time_the_seeds_leave_lengthens_the_refit_within_the_budget():
    """A 30-minute run on real ECG planned its refit for the longer of two networks, selection kept the
    shorter, and the refit ended with a fifth of the budget unused: the time left now buys epochs."""
    from ecgtune.experiment import REFIT_MAX_STRETCH, plan_refit, refit_margin, refit_stretch

    planned, planned_seconds = plan_refit({"a": 731.0}, 2, 1122.0, seeds=6)
    assert planned == {"a": [0, 1]}, "a third seed would not end in time"
    stretch = refit_stretch(planned_seconds, 1122.0)
    assert 1.3 < stretch < REFIT_MAX_STRETCH
    assert refit_margin(stretch * planned_seconds) == pytest.approx(1122.0), "it ends within the time, with its margin"
    assert refit_stretch(planned_seconds, 10_000.0) == REFIT_MAX_STRETCH, "at most twice the epochs"
    assert refit_stretch(planned_seconds, None) == 1.0, "without a budget the schedules are the trials'"
    assert refit_stretch(0.0, 1122.0) == 1.0, "nothing planned"
    assert refit_stretch(planned_seconds, refit_margin(planned_seconds)) == pytest.approx(1.0)


def test_a_trial_that_ran_its_whole_schedule_is_refit_for_all_of_it_where_that_fits():
    """The long trials of a short budget run their one-cycle schedules to the end, and the plan reserves
    their refit for all of it; where that does not fit (the trials trained slower than timed), the kept
    epoch does. A trial stopped mid-schedule is refit for the epoch it kept."""
    from ecgtune.experiment import refit_epochs

    def described(trained: int, kept: int) -> dict:
        return {"train_config": {"epochs": 31}, "epochs_trained": trained, "kept_epoch": kept}

    assert refit_epochs(described(31, 27)) == [31, 27]
    assert refit_epochs(described(31, 31)) == [31]
    assert refit_epochs(described(12, 9)) == [9], "ASHA stopped it"
    assert refit_epochs(described(1, 0)) == [1], "nothing kept yet: one epoch at least"


def test_the_refit_trains_its_networks_in_the_planned_order():
    """Tune starts a grid's trials in the grid's order, so the refit's heaviest network starts first,
    not the one whose name sorts first (a laptop run refit four light networks and ran out of time for
    the heaviest)."""
    from ray.tune.search.variant_generator import generate_variants

    from ecgtune.raytune.tune_folds import retraining_grid

    configs = {"dilated_cnn_f8c5": {}, "cnn_lstm_8887": {}, "dilated_cnn_3bbb": {}}
    order = [config["member"] for _, config in generate_variants(retraining_grid(configs, 2))]
    assert order == [name for name in configs for _ in range(2)]


def test_a_budget_too_small_to_search_is_refused_in_one_line(fake_time):
    clock = pipeline.Clock(15.0)
    with pytest.raises(EcgtuneError, match="leaves no time to search"):
        pipeline.search_time(clock)


def test_stages_are_timed_and_saved(fake_time, tmp_path):
    clock = pipeline.Clock(480.0)
    with clock.stage("search"):
        fake_time.now += 300.0
    with clock.stage("export"):
        fake_time.now += 12.5
    with pytest.raises(RuntimeError), clock.stage("report"):
        fake_time.now += 1.0
        raise RuntimeError("a failing stage is timed too")
    pipeline.save_timings(tmp_path, clock)
    saved = json.loads((tmp_path / pipeline.TIMINGS_FILE).read_text())
    assert saved == {"budget_s": 480.0, "total_s": 313.5, "stages": {"search": 300.0, "export": 12.5, "report": 1.0}}


def test_a_nearly_full_disk_is_refused_before_anything_is_written(tmp_path):
    pipeline.check_free_space([tmp_path / "runs" / "new"], needed=1)  # a folder still to be made: its disk is asked
    with pytest.raises(EcgtuneError, match=r"runs: only \d+ MB free on its disk"):
        pipeline.check_free_space([tmp_path / "runs"], needed=2**62)
    assert not (tmp_path / "runs").exists()


def test_resuming_a_finished_experiment_says_so_and_starts_nothing(tmp_path, capsys):
    from dataclasses import asdict

    from ecgtune import experiment

    run_dir = tmp_path / "done"
    run_dir.mkdir()
    plan = experiment.Plan(families=["plain_cnn"], storage=str(tmp_path), data=None, rows=300, val_fraction=0.2,
                           seed=0, num_samples=2, time_budget_s=None, searcher="optuna", scheduler="asha",
                           grace_period_s=None, reduction_factor=3, min_epochs=1, max_epochs=2)
    (run_dir / "search.json").write_text(json.dumps({"plan": asdict(plan)}))
    (run_dir / pipeline.TIMINGS_FILE).write_text("{}")
    summary, bundle = pipeline.run_search(experiment.load_plan(run_dir), pipeline.Resources(), run_dir, resume=True)
    assert summary is None and bundle == run_dir / "bundle"
    assert f"{run_dir} has finished; nothing to resume" in capsys.readouterr().out
    assert sorted(path.name for path in run_dir.iterdir()) == ["search.json", "timings.json"]


def test_the_epoch_range_grows_with_what_the_budget_pays_for():
    from ecgtune.search_spaces import EpochBudget
    from ecgtune.search_spaces.shared import MAX_EPOCHS_FROM_TIME

    gpu = EpochBudget.fitting(search_seconds=350.0, epoch_seconds=1.7)  # 64,000 rows on one shared GPU
    assert gpu == EpochBudget(14, 41), "a fifth of the search for the longest trial, a third of that for the shortest"
    cpu = EpochBudget.fitting(search_seconds=570.0, epoch_seconds=25.0)  # the same rows on one CPU core
    assert cpu == EpochBudget(), "never below the default range: 1-3 epochs learn too little"
    assert EpochBudget.fitting(36_000.0, 0.5).max_epochs == MAX_EPOCHS_FROM_TIME


def test_a_search_needs_a_budget_that_buys_enough_epochs():
    def too_short(search_seconds, epoch_seconds, slots, rows=51_542):  # MIT-BIH's training rows by default
        return pipeline.too_short_to_search(search_seconds, epoch_seconds, slots, rows)

    # 2 CPU cores: 33 s an epoch per trial, two at once
    assert too_short(550.0, 33.0, 2), "about 33 epochs in all"
    assert too_short(1700.0, 33.0, 2), "30 minutes: about 103"
    assert too_short(1750.0, 12.6, 2), "30 minutes on a host three times as fast: 278"
    assert not too_short(7000.0, 28.0, 2), "2 hours: 500"
    assert not too_short(190.0, 1.5, 8), "one GPU, 4 minutes: about 1,000"
    assert not too_short(420.0, 6.5, 2, rows=8000), "a slow laptop's main job: 129"
    assert not too_short(420.0, 1.4, 2, rows=8000), "the laptop main job on a fast host"


def test_the_users_epochs_are_kept_and_no_budget_means_the_defaults(tmp_path):
    from ecgtune import experiment
    from ecgtune.search_spaces import EpochBudget

    plan = experiment.Plan(families=["plain_cnn"], storage=str(tmp_path), data=None, rows=300, val_fraction=0.2,
                           seed=0, num_samples=2, time_budget_s=None, searcher="optuna", scheduler="asha",
                           grace_period_s=None, reduction_factor=3, min_epochs=None, max_epochs=None)
    given = experiment.Plan(**{**plan.__dict__, "min_epochs": 3, "max_epochs": 7})
    # Neither case needs the pace, so neither needs Ray: settings=None would fail if it were asked
    assert pipeline.settle_epochs(given, None, pipeline.Clock(600.0), None, 1000) is given
    settled = pipeline.settle_epochs(plan, None, pipeline.Clock(None), None, 1000)
    assert (settled.min_epochs, settled.max_epochs) == (EpochBudget().min_epochs, EpochBudget().max_epochs)
    only_max = experiment.Plan(**{**plan.__dict__, "max_epochs": 2})
    assert pipeline.settle_epochs(only_max, None, pipeline.Clock(None), None, 1000).min_epochs == 2


def test_scarce_validation_classes_are_warned_of():
    import numpy as np

    from ecgtune.errors import DataWarning

    labels = np.array([0] * 200 + [1] * 40 + [2] * 5)
    with pytest.warns(DataWarning, match=r"train.csv: few validation rows \(class 2: 5; fewer than 30\)"):
        pipeline.warn_of_few_validation_rows(labels, "train.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipeline.warn_of_few_validation_rows(labels[:240], "train.csv")


def _earlier_experiment(folder, data, scores):
    """An experiment folder as a search leaves it: search.json and its Optuna journal, one finished
    plain_cnn trial per score (each with another learning rate) and one dilated_cnn trial."""
    import optuna

    from ecgtune import experiment
    from ecgtune.raytune.registry import study_storage
    from ecgtune.raytune.tune_search import SearchSettings
    from ecgtune.search_spaces import EpochBudget, default_point, define_search_space

    plan = experiment.Plan(families=["plain_cnn", "dilated_cnn"], storage=str(folder.parent))
    folder.mkdir()
    (folder / experiment.PLAN_FILE).write_text(json.dumps(
        {"plan": plan.__dict__, "data_fingerprint": experiment.fingerprint(data)}))
    settings = SearchSettings(families=plan.families, name=folder.name, storage=str(folder.parent),
                              journal=str(folder / experiment.OPTUNA_JOURNAL), budget=EpochBudget(4, 12))
    study = optuna.create_study(direction="minimize", **study_storage(settings))
    points = [{**default_point("plain_cnn"), "train/lr": 1e-3 * (index + 1)} for index in range(len(scores))]
    for point, score in [*zip(points, scores), (default_point("dilated_cnn"), 1.0)]:
        study.enqueue_trial(point)
        trial = study.ask()
        define_search_space(trial, plan.families, EpochBudget(4, 12))
        study.tell(trial, score)


def test_a_warm_start_tries_the_earlier_best_first_and_passes_its_scores_on_the_same_data(tmp_path):
    import optuna

    from ecgtune import experiment
    from ecgtune.data import make_synthetic
    from ecgtune.raytune.registry import study_storage
    from ecgtune.raytune.tune_search import SearchSettings, first_points
    from ecgtune.search_spaces import EpochBudget

    data = make_synthetic(200, seed=0)
    _earlier_experiment(tmp_path / "old", data, scores=[30.0, 10.0, 20.0])
    plan = experiment.Plan(families=["plain_cnn"], storage=str(tmp_path), warm_start=str(tmp_path / "old"))
    earlier = pipeline._earlier_trials(plan)
    assert [trial.value for trial in earlier] == [10.0, 20.0, 30.0], "best first, only the searched families"
    settings = SearchSettings(families=["plain_cnn"], name="new", storage=str(tmp_path), budget=EpochBudget(2, 3),
                              journal=str(tmp_path / "new" / "optuna.journal"),  # the run's folder: not made yet
                              warm_points=[t.params for t in earlier])
    first = first_points(settings)
    assert [point["train/lr"] for point in first[:3]] == [0.002, 0.003, 0.001]
    assert all(point["train/epochs"] == 3 for point in first[:3]), "epochs brought within this search's range"

    pipeline._warm_start(plan, settings, earlier, data)
    study = optuna.load_study(study_name="new", storage=study_storage(settings)["storage"])
    assert sorted(trial.value for trial in study.trials) == [10.0, 20.0, 30.0]

    other = replace(settings, name="other", journal=str(tmp_path / "other.journal"))
    pipeline._warm_start(plan, other, earlier, make_synthetic(200, seed=1))
    assert not Path(other.journal).exists(), "other data: the configurations start the search, their scores do not"


def test_a_warm_start_from_a_folder_without_a_study_is_refused_in_one_line(tmp_path):
    from ecgtune import experiment

    plan = experiment.Plan(families=["plain_cnn"], storage=str(tmp_path), warm_start=str(tmp_path / "gone"))
    with pytest.raises(EcgtuneError, match="gone: no experiment there"):
        pipeline._earlier_trials(plan)


def test_a_plan_round_trips_and_an_older_plan_takes_the_defaults(tmp_path):
    from dataclasses import asdict

    import numpy as np

    from ecgtune import experiment
    from ecgtune.data import make_synthetic

    data = make_synthetic(200, seed=0)
    plan = experiment.Plan(families=["dilated_cnn", "resnet1d"], storage=str(tmp_path), rows=200, time_budget_s=600.0,
                           min_epochs=5, max_epochs=9, scheduler="fifo", tracker="mlflow",
                           long_trial_points=[{"family": "dilated_cnn", "train/epochs": 9}])
    experiment.save_plan(tmp_path / "new", plan, data, np.arange(40), resume=False)
    assert experiment.load_plan(tmp_path / "new") == plan

    # an earlier version's plan: settings since removed are ignored, settings since added take their default
    added_since = ("long_trial_points", "tracker", "warm_start")
    older = {key: value for key, value in asdict(plan).items() if key not in added_since}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / experiment.PLAN_FILE).write_text(json.dumps({"plan": {**older, "sampler_seed": 3}}))
    loaded = experiment.load_plan(tmp_path / "old")
    assert loaded == replace(plan, long_trial_points=[], tracker=None, warm_start=None)


@pytest.mark.parametrize("cluster_gpus, expected", [(0.0, 0.0), (1.0, 0.125)])
def test_trials_share_a_gpu_by_default_and_take_none_without_one(tmp_path, monkeypatch, cluster_gpus, expected):
    from ecgtune import defaults, experiment
    from ecgtune.raytune import tune_search

    monkeypatch.setattr(tune_search, "cluster_gpus", lambda: cluster_gpus)
    plan = experiment.Plan(families=["plain_cnn"], storage=str(tmp_path))
    settings = pipeline.search_settings(plan, pipeline.Resources(), tmp_path / "exp")
    assert settings.gpus_per_trial == expected == (defaults.GPUS_PER_TRIAL if cluster_gpus else 0.0)
    chosen = pipeline.search_settings(plan, pipeline.Resources(gpus_per_trial=0.5), tmp_path / "exp")
    assert chosen.gpus_per_trial == 0.5, "the user's choice wins"


def test_resuming_with_changed_data_is_refused_naming_the_experiment(tmp_path):
    import numpy as np

    from ecgtune import experiment
    from ecgtune.data import make_synthetic

    plan = experiment.Plan(families=["plain_cnn"], storage=str(tmp_path), rows=200)
    experiment.save_plan(tmp_path / "exp", plan, make_synthetic(200, seed=0), np.arange(40), resume=False)
    experiment.save_plan(tmp_path / "exp", plan, make_synthetic(200, seed=0), np.arange(40), resume=True)
    changed = make_synthetic(200, seed=0)
    changed.signals[7, 3] += 0.5  # one sample of one beat
    with pytest.raises(EcgtuneError, match=rf"changed since experiment {tmp_path / 'exp'} started"):
        experiment.save_plan(tmp_path / "exp", plan, changed, np.arange(40), resume=True)
