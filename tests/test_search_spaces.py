import dataclasses
import json

import numpy as np
import optuna
import pytest
import torch
from conftest import nest_params

from ecgtune.data import holdout_split, make_synthetic, prepare_fold
from ecgtune.models import create_model, get_family, list_models
from ecgtune.models.cost import network_macs
from ecgtune.search_spaces import (
    PORTFOLIO_FILE,
    SEARCH_SPACES,
    EpochBudget,
    default_point,
    define_search_space,
    model_kwargs,
    portfolio_points,
)
from ecgtune.search_spaces.families import COMPACT
from ecgtune.trainer import TrainConfig, Trainer

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_family_has_a_space_of_its_name():
    assert sorted(SEARCH_SPACES) == list_models()
    for name, space in SEARCH_SPACES.items():
        assert space.__name__ == name


@pytest.mark.parametrize("family", list_models())
def test_default_point_is_the_compact_starting_point_and_lies_in_the_space(family):
    trial = optuna.trial.FixedTrial(default_point(family, EpochBudget(2, 6)))
    assert define_search_space(trial, [family], EpochBudget(2, 6)) is None
    config = nest_params(trial.params)
    assert config["family"] == family and config["train"]["epochs"] == 2, "the fewest epochs"
    kwargs = model_kwargs(config[family], config["model"])
    assert get_family(family).config(**kwargs) == get_family(family).config(**COMPACT[family])
    defaults = TrainConfig()
    assert config["train"]["lr"] == defaults.lr and config["train"]["loss"] == defaults.loss
    assert config["augment"] == {"enabled": False}


@pytest.mark.parametrize("family", list_models())
def test_compact_starting_points_are_several_times_cheaper_than_the_write_up_sizes(family):
    compact = network_macs(family, COMPACT[family])
    assert compact * 3 < network_macs(family, {})


def test_portfolio_points_lie_in_the_space_and_say_where_they_came_from():
    entries = json.loads(PORTFOLIO_FILE.read_text())["configurations"]
    assert entries, "the portfolio ships configurations"
    budget = EpochBudget(2, 6)
    points = portfolio_points(list_models(), budget)
    assert len(points) == len(entries)
    for entry, point in zip(entries, points):
        assert entry["source"]
        trial = optuna.trial.FixedTrial(point)
        define_search_space(trial, list_models(), budget)
        assert trial.params == point
        assert 2 <= point["train/epochs"] <= 6
    assert portfolio_points(["no_such_family"], budget) == []


@pytest.fixture(scope="module")
def tiny_fold():
    beats = make_synthetic(300, seed=0)
    return prepare_fold(beats, *holdout_split(beats.labels, 0.3, seed=0))


@pytest.mark.parametrize("family", list_models())
def test_sampled_configurations_build_models_that_train(family, tiny_fold):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    depths = set()
    for _ in range(3):
        trial = study.ask()
        define_search_space(trial, [family], EpochBudget(1, 3))
        config = nest_params(trial.params)
        kwargs = model_kwargs(config[family], config["model"])
        depths.add(len(kwargs.get("widths", kwargs.get("blocks", ()))))
        model = create_model(family, **kwargs)
        assert model(torch.rand(2, 205)).shape == (2, 4)
        train_settings = {**config["train"], "epochs": 1, "batch_size": 64}
        trainer = Trainer(model, tiny_fold, TrainConfig(**train_settings))
        report = trainer.run_epoch()
        assert report is not None and np.isfinite(report["train_loss"])
        study.tell(trial, report["abs_sum"])
    assert config["data"]["imbalance"] in ("none", "smote", "class_weights")


def test_spaces_are_conditional_on_the_family():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        define_search_space(trial, ["plain_cnn", "resnet1d"], EpochBudget())
        family = trial.params["family"]
        other = "resnet1d" if family == "plain_cnn" else "plain_cnn"
        assert any(key.startswith(f"{family}/") for key in trial.params)
        assert not any(key.startswith(f"{other}/") for key in trial.params)
        study.tell(trial, 1.0)


def test_model_kwargs_assembles_per_layer_entries():
    params = {"widths.len": 2, "widths.1": 64, "widths.0": 32, "kernel_sizes.0": 5, "kernel_sizes.1": 3,
              "dilation": 2}
    assert model_kwargs(params, {"dropout": 0.2, "position_channel": True}) == {
        "widths": (32, 64), "kernel_sizes": (5, 3), "dilation": 2, "dropout": 0.2, "position_channel": True}
    assert dataclasses.is_dataclass(get_family("plain_cnn").config(**model_kwargs(params)))


def test_family_points_cover_every_family_round_by_round_and_lie_in_the_space():
    from ecgtune.search_spaces import family_points

    families = ["plain_cnn", "resnet1d", "cnn_lstm"]
    points = family_points(families, 2, EpochBudget(2, 6), seed=3)
    assert [point["family"] for point in points] == families * 2
    for point in points:
        trial = optuna.trial.FixedTrial(point)
        define_search_space(trial, list_models(), EpochBudget(2, 6))
        assert trial.params == point
        family = point["family"]
        compact = default_point(family, EpochBudget(2, 6))
        assert all(compact[key] == value for key, value in point.items() if key.startswith(f"{family}/")), \
            "the compact architecture"
    assert len({point["train/lr"] for point in points}) == len(points), "random shared settings"
    assert points == family_points(families, 2, EpochBudget(2, 6), seed=3), "seeded"
    assert points != family_points(families, 2, EpochBudget(2, 6), seed=4)


def test_a_point_from_before_the_position_channel_reads_into_todays_space_as_the_network_it_was():
    from ecgtune.search_spaces import as_current, point_network

    earlier = {key: value for key, value in default_point("dilated_cnn").items() if key != "model/position_channel"}
    trial = optuna.trial.FixedTrial(as_current(earlier))
    define_search_space(trial, ["dilated_cnn"], EpochBudget())
    family, kwargs = point_network(trial.params)
    assert kwargs["position_channel"] is False
    assert create_model(family, **kwargs).input.channels == 1
    assert as_current(default_point("dilated_cnn")) == default_point("dilated_cnn")
