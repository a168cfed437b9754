"""Search spaces: one define-by-run function per registered family plus the shared part.

`define_search_space(trial, families, budget)` is what Optuna samples: first the family, then the
shared settings, then that family's own. Conditional parameters live here; no computation does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from ecgtune.models import get_family, list_models
from ecgtune.search_spaces import families
from ecgtune.search_spaces.shared import MODEL_SETTINGS, EpochBudget, shared
from ecgtune.trainer import TrainConfig

SEARCH_SPACES = {name: getattr(families, name) for name in list_models()}
PORTFOLIO_FILE = Path(__file__).with_name("portfolio.json")
# parameters added to the space since earlier experiments, with the value their networks had then
ADDED_PARAMETERS = {"model/position_channel": False}


def define_search_space(trial, families_to_search: Sequence[str], budget: EpochBudget) -> None:
    """The whole space: the family (categorical), the shared part, then the family's own part."""
    family = trial.suggest_categorical("family", list(families_to_search))
    shared(trial, budget)
    SEARCH_SPACES[family](trial)


def search_space(families_to_search: Sequence[str], budget: EpochBudget = EpochBudget()):
    """`define_search_space` bound to the families and budget: the callable Ray's OptunaSearch takes."""
    return partial(define_search_space, families_to_search=list(families_to_search), budget=budget)


def default_point(family: str, budget: EpochBudget = EpochBudget()) -> dict:
    """Flat parameters of the family's compact starting point (`families.COMPACT`: its defaults at
    CPU-sized widths), with the default training configuration, no augmentation and the fewest epochs
    of the range."""
    config = get_family(family).config(**families.COMPACT[family])
    point = {"family": family, "data/imbalance": "none", "augment/enabled": False,
             **{f"model/{name}": getattr(config, name) for name in MODEL_SETTINGS}}
    train = TrainConfig()
    point.update({f"train/{key}": getattr(train, key)
                  for key in ("lr", "weight_decay", "batch_size", "label_smoothing", "loss", "schedule")})
    # the fewest epochs: every family's start is the first trial at each of ASHA's rungs, so it is never
    # stopped early, and at the middle of the range the six took a third of the laptop search (BENCHMARKS 11a);
    # the searcher learns whether longer pays
    point["train/epochs"] = budget.min_epochs
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, tuple):
            point[f"{family}/{field.name}.len"] = len(value)
            point.update({f"{family}/{field.name}.{index}": item for index, item in enumerate(value)})
        elif field.name not in MODEL_SETTINGS:
            point[f"{family}/{field.name}"] = value
    return point


def portfolio_points(families_to_search: Sequence[str], budget: EpochBudget = EpochBudget()) -> list[dict]:
    """The shipped portfolio's configurations of these families (`portfolio.json`: configurations that
    won on real ECG in this project's benchmark runs, each with where it came from), as flat
    parameters with their epochs brought within the budget."""
    return [within_budget(entry["params"], budget) for entry in json.loads(PORTFOLIO_FILE.read_text())["configurations"]
            if entry["params"]["family"] in families_to_search]


def as_current(point: dict) -> dict:
    """An earlier experiment's flat point in today's space: parameters added since take the value its
    network had (`ADDED_PARAMETERS`)."""
    return {**ADDED_PARAMETERS, **point}


def within_budget(point: dict, budget: EpochBudget) -> dict:
    """The flat point with its epochs brought within the budget's range (a point from another search,
    whose range differed)."""
    epochs = min(budget.max_epochs, max(budget.min_epochs, point.get("train/epochs", budget.max_epochs)))
    return {**point, "train/epochs": epochs}


def family_points(families_to_search: Sequence[str], per_family: int, budget: EpochBudget = EpochBudget(),
                  seed: int = 0) -> list[dict]:
    """`per_family` variations of each family's compact starting point: its architecture with random
    shared settings (learning rate, epochs, loss, augmentation...; Optuna's random sampler, seeded),
    round by round, so that every family has its second before any has its third. With the
    starting points they give every family a few cheap trials before TPE concentrates on the best
    (on the laptop run it gave 23 of 39 trials to one family, and two families only 2)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "a new study created in memory" per family
    by_family = []
    for index, family in enumerate(families_to_search):  # a study each: a categorical's choices stay fixed
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed + index))
        compact = {key: value for key, value in default_point(family, budget).items() if key.startswith(f"{family}/")}
        by_family.append([])
        for _ in range(per_family):
            trial = study.ask()
            define_search_space(trial, [family], budget)
            shared_part = {key: value for key, value in trial.params.items() if not key.startswith(f"{family}/")}
            point = optuna.trial.FixedTrial({**shared_part, **compact})
            define_search_space(point, [family], budget)  # keeps only what the space asks for
            by_family[-1].append(point.params)
    return [point for round_points in zip(*by_family) for point in round_points]


def point_network(point: dict) -> tuple[str, dict]:
    """The family and `create_model` keyword arguments of a flat point (such as `default_point`'s)."""
    family = point["family"]
    own = {key.partition("/")[2]: value for key, value in point.items() if key.startswith(f"{family}/")}
    settings = {key.partition("/")[2]: value for key, value in point.items() if key.startswith("model/")}
    return family, model_kwargs(own, settings)


def point_workload(point: dict) -> tuple[str, dict, int]:
    """What timing a flat point's training needs: its family, `create_model` keyword arguments and
    batch size (small batches train slower per row)."""
    return (*point_network(point), point.get("train/batch_size", TrainConfig.batch_size))


def training_configuration(point: dict) -> tuple:
    """What a flat point trains, whatever its epochs: its family, the family's full config and the shared
    settings. Points that differ only where the family's defaults fill in train the same network."""
    family, kwargs = point_network(point)
    shared = {key: value for key, value in point.items()
              if not key.startswith((f"{family}/", "model/")) and key != "train/epochs"}
    return family, get_family(family).config(**kwargs), shared


def model_kwargs(family_params: dict, model_settings: dict | None = None) -> dict:
    """A family's sampled parameters (nested under its name) and the settings every family shares
    (nested under `model`: MODEL_SETTINGS) as `create_model` keyword arguments: `widths.0`, `widths.1`
    become `widths=(..., ...)`; `.len` entries only sized them."""
    kwargs, per_layer = {}, {}
    for key, value in family_params.items():
        field, _, index = key.partition(".")
        if not index:
            kwargs[field] = value
        elif index != "len":
            per_layer.setdefault(field, {})[int(index)] = value
    kwargs.update({field: tuple(values[i] for i in sorted(values)) for field, values in per_layer.items()})
    kwargs.update(model_settings or {})
    return kwargs


__all__ = ["EpochBudget", "SEARCH_SPACES", "as_current", "default_point", "define_search_space", "family_points",
           "model_kwargs", "point_network", "point_workload", "portfolio_points", "search_space",
           "training_configuration", "within_budget"]
