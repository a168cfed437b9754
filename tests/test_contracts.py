"""Contracts every registered part keeps, in the spirit of Optuna's `parametrize_sampler`: each searcher
with each scheduler, and each family from its search space to the ONNX graph a bundle ships."""

import io
import itertools

import numpy as np
import onnxruntime
import optuna
import pytest
import torch
from conftest import nest_params

from ecgtune.export import WeightedSoftmaxAverage, to_onnx
from ecgtune.models import create_model, list_models
from ecgtune.search_spaces import EpochBudget, default_point, define_search_space, model_kwargs

ray = pytest.importorskip("ray")
from ecgtune.raytune.registry import SCHEDULERS, SEARCHERS, make_scheduler, make_searcher  # noqa: E402
from ecgtune.raytune.tune_layout import METRIC, MODE  # noqa: E402
from ecgtune.raytune.tune_search import SearchSettings  # noqa: E402


@pytest.mark.parametrize("searcher, scheduler", list(itertools.product(SEARCHERS, SCHEDULERS)))
def test_every_searcher_with_every_scheduler_suggests_points_of_the_space_and_takes_results(
        tmp_path, searcher, scheduler):
    families = ["plain_cnn", "resnet1d"]
    settings = SearchSettings(families=families, name="contract", storage=str(tmp_path), searcher=searcher,
                              scheduler=scheduler, budget=EpochBudget(2, 4), time_budget_s=60.0)
    search, stopping = make_searcher(settings), make_scheduler(settings)
    assert stopping.set_search_properties(METRIC, MODE), "the scheduler takes the search's metric"
    for number in range(3):
        config = search.suggest(f"trial{number}")
        assert config["family"] in families and 2 <= config["train"]["epochs"] <= 4
        search.on_trial_complete(f"trial{number}", {METRIC: 100.0 - number})


@pytest.mark.parametrize("family", list_models())
def test_every_familys_sampled_networks_export_to_onnx_with_the_same_probabilities(family):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    define_search_space(trial, [family], EpochBudget(1, 2))
    points = [default_point(family), trial.params]
    beats = torch.rand(3, 205)
    for point in points:
        config = nest_params(point)
        network = create_model(family, **model_kwargs(config[family], config["model"]))
        ensemble = WeightedSoftmaxAverage([network], torch.ones(1)).eval()
        graph = io.BytesIO()
        to_onnx(ensemble, beats, graph)
        session = onnxruntime.InferenceSession(graph.getvalue(), providers=["CPUExecutionProvider"])
        [probabilities] = session.run(None, {"signals": beats.numpy()})
        with torch.no_grad():
            expected = ensemble(beats).numpy()
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
