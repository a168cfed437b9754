"""The report, written from the files an experiment leaves (here made by hand, no Ray needed)."""

import base64
import json
import re
from dataclasses import asdict

import numpy as np
import pytest
from conftest import nest_params

from ecgtune.analysis import FEW_TRIALS_FOR_IMPORTANCE, Importances, confusion_matrix, study_importances
from ecgtune.ensemble.summary import REQUIRED_SCORES
from ecgtune.experiment import OPTUNA_JOURNAL, Plan, load_plan
from ecgtune.html_report import write_report
from ecgtune.search_spaces import EpochBudget, default_point, define_search_space

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _plan(storage, families=("plain_cnn", "dilated_cnn")) -> Plan:
    budget = EpochBudget()
    return Plan(families=list(families), storage=str(storage), data=None, rows=1000, val_fraction=0.2, seed=0,
                num_samples=20, time_budget_s=None, searcher="optuna", scheduler="asha", grace_period_s=None,
                reduction_factor=3, min_epochs=budget.min_epochs, max_epochs=budget.max_epochs)


def _histories(n_trials=12, seed=0):
    """Trials whose score is set by the learning rate alone (plus a little noise)."""
    rng = np.random.default_rng(seed)
    histories = {}
    for index in range(n_trials):
        family = ("plain_cnn", "dilated_cnn")[index % 2]
        point = default_point(family)
        point["train/lr"] = float(10 ** rng.uniform(-3.5, -2))
        point["train/weight_decay"] = float(10 ** rng.uniform(-5, -1))
        point["model/dropout"] = float(rng.uniform(0, 0.5))
        score = 40 + 400 * abs(np.log10(point["train/lr"]) + 2.75) + rng.normal(0, 2)
        histories[f"{family}_{index:04d}"] = [
            {"val_abs_sum": score + 30 / epoch, "family": family, "timestamp": 1_000 + 60 * index + 10 * epoch,
             "time_total_s": 10.0 * epoch, "config": nest_params(point)} for epoch in (1, 2, 3)]
    return histories


def _write_journal(run_dir, histories, families=("plain_cnn", "dilated_cnn")):
    """The search's Optuna study as OptunaSearch leaves it: each trial's sampled point and last score."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(run_dir / OPTUNA_JOURNAL)))
    study = optuna.create_study(study_name=run_dir.name, storage=storage, direction="minimize")
    for records in histories.values():
        flat = {}
        for group, values in records[-1]["config"].items():  # {"train": {"lr": ...}} -> {"train/lr": ...}
            flat.update({f"{group}/{key}": value for key, value in values.items()} if isinstance(values, dict)
                        else {group: values})
        study.enqueue_trial(flat)
        trial = study.ask()
        define_search_space(trial, list(families), EpochBudget())
        study.tell(trial, records[-1]["val_abs_sum"])


def test_importances_come_from_the_searchs_journal_and_find_the_parameter_that_matters(tmp_path):
    _write_journal(tmp_path, _histories())
    importances = study_importances(tmp_path / OPTUNA_JOURNAL, tmp_path.name, ["plain_cnn", "dilated_cnn"])
    every = importances.by_group["all families"]
    assert max(every, key=every.get) == "train/lr"
    assert importances.trials == {"all families": 12, "plain_cnn": 6, "dilated_cnn": 6}


def test_too_few_trials_or_no_journal_give_no_importances(tmp_path):
    assert study_importances(tmp_path / OPTUNA_JOURNAL, tmp_path.name, ["plain_cnn"]).by_group == {}
    _write_journal(tmp_path, dict(list(_histories().items())[:3]))
    assert study_importances(tmp_path / OPTUNA_JOURNAL, tmp_path.name, ["plain_cnn"]).by_group == {}


def test_a_confusion_matrix_counts_rows_without_a_decision_apart():
    labels = np.array([0, 0, 1, 2])
    decisions = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 0]])
    assert confusion_matrix(labels, decisions).tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]


@pytest.fixture
def experiment(tmp_path):
    """A run folder with what search and ensemble leave: plan, trials' results, leaderboard, ensemble."""
    run_dir = tmp_path / "exp"
    histories = _histories()
    for trial, records in histories.items():
        (run_dir / trial).mkdir(parents=True)
        lines = [json.dumps(record) for record in records]
        (run_dir / trial / "result.json").write_text("\n".join(lines) + "\n{\"val_abs_sum\": 1")  # cut short
    _write_journal(run_dir, histories)
    fingerprint = {"rows": 1000, "signal_length": 205, "class_counts": [640, 40, 140, 180], "hash": "x"}
    (run_dir / "search.json").write_text(json.dumps({"plan": asdict(_plan(tmp_path)), "data_fingerprint": fingerprint}))
    rows = sorted((min(r["val_abs_sum"] for r in records), trial) for trial, records in histories.items())
    header = ("rank,family,trial_id,val_abs_sum,val_abs_sum_proba,val_accuracy,val_log_loss,best_epoch,epochs_run,"
              "seconds,status")
    lines = [f"{rank},{trial.split('_')[0]}_cnn,{trial[-4:]},{score},{score},0.97,0.1,3,3,30,ok"
             for rank, (score, trial) in enumerate(rows, start=1)]
    (run_dir / "leaderboard.csv").write_text("\n".join([header, *lines]) + "\n")
    labels = np.repeat([0, 1, 2, 3], 50)
    probs = np.eye(4)[labels] * 0.7 + 0.075
    np.savez(run_dir / "ensemble_probs.npz", probs=probs, labels=labels)
    scores = {key: 10.0 for key in REQUIRED_SCORES}
    summary = {"members": [{"trial": "plain_cnn_0000", "family": "plain_cnn", "checkpoints": ["a"], "weight": 0.75,
                            "val_abs_sum": 12.0, "val_log_loss": 0.2},
                           {"trial": "dilated_cnn_0001", "family": "dilated_cnn", "checkpoints": ["b"], "weight": 0.25,
                            "val_abs_sum": 14.0, "val_log_loss": 0.3}],
               "decision_rule": {"thresholds": [0.5, 0.4, 0.5, 0.45], "fallback": "zeros"}, "scores": scores,
               "validation_rows": 200, "ensemble_log_loss": 0.1,
               "trajectory": [{"member": 0, "abs_sum": 12.0, "log_loss": 0.2},
                              {"member": 1, "abs_sum": 10.0, "log_loss": 0.1}],
               "kept_steps": 2, "fell_back_to_best_single": False, "library": ["plain_cnn_0000", "dilated_cnn_0001"]}
    (run_dir / "ensemble.json").write_text(json.dumps(summary))
    return run_dir


def test_report_is_one_self_contained_page_with_every_section(experiment):
    page = write_report(experiment).read_text()
    for heading in ("Leaderboard", "Search progress", "Parameter importances", "Scores", "Ensemble",
                    "Decision rule"):
        assert f"<h2>{heading}</h2>" in page
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 4  # progress, importances, members and trajectory, confusion matrices
    assert all(base64.b64decode(image).startswith(PNG_SIGNATURE) for image in images)
    assert not re.search(r"(src|href)=['\"](?!data:)", page), "nothing is fetched from elsewhere"
    assert "selection" in page and "honest for the rule" in page
    assert "plain_cnn_0000" in page and "0.750" in page
    assert f"fewer than {FEW_TRIALS_FOR_IMPORTANCE} trials" in page, "12 trials: the importances are called rough"


def test_the_report_flags_at_the_top_what_a_reader_must_not_miss(experiment, tmp_path):
    saved = json.loads((experiment / "search.json").read_text())
    saved["plan"]["families"].append("resnet1d")
    (experiment / "search.json").write_text(json.dumps(saved))
    summary = json.loads((experiment / "ensemble.json").read_text())
    summary["scores"]["ensemble_learned_rule"] = 14.0  # worse than the best trial's 10
    (experiment / "ensemble.json").write_text(json.dumps(summary))
    page = write_report(experiment).read_text()
    flags = page[page.index("<ul class='flags'>"):page.index("<h2>")]
    assert "worse than the best trial alone with its own rule (10.0)" in flags
    assert "Never reported a result: resnet1d" in flags
    assert "come from fewer than" in flags


def test_a_report_without_anything_to_flag_has_no_flags(experiment):
    from ecgtune import html_report

    (experiment / "optuna.journal").unlink()  # no importances, so none from too few trials
    assert "class='flags'" not in write_report(experiment).read_text()
    assert html_report._flags(load_plan(experiment), {}, None, Importances()) == ""


def test_report_of_an_experiment_without_an_ensemble_yet(experiment):
    (experiment / "ensemble.json").unlink()
    page = write_report(experiment).read_text()
    assert "<h2>Search progress</h2>" in page and "<h2>Decision rule</h2>" not in page


@pytest.mark.parametrize("damaged, content", [
    ("ensemble.json", "{\"members\": ["),
    ("ensemble.json", "{\"members\": []}"),
    ("ensemble.json", "[1, 2]"),
    ("ensemble_probs.npz", "not a zip file"),
    ("leaderboard.csv", "rank,family,val_abs_sum\n1,plain_cnn,many\n"),
])
def test_damaged_files_are_named_in_one_line(experiment, damaged, content):
    from ecgtune.errors import EcgtuneError

    (experiment / damaged).write_text(content)
    with pytest.raises(EcgtuneError, match=re.escape(str(experiment / damaged))):
        write_report(experiment)
    assert not (experiment / "report.html").exists()
