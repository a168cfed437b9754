"""The registry of architecture families: `create_model(name, **config)` and `list_models()`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import nn

from ecgtune.errors import ConfigError


@dataclass(frozen=True)
class Family:
    """A registered family: its network class, its config dataclass and its aliases."""

    name: str
    network: type[nn.Module]
    config: type
    aliases: tuple[str, ...]


_FAMILIES: dict[str, Family] = {}
_ALIASES: dict[str, str] = {}


def register_model(name: str, config: type, aliases: tuple[str, ...] = ()):
    """Class decorator registering a network under `name` (and `aliases`) with its config dataclass.

    The network is constructed as `network(config, n_classes=...)`; every family ends in a global pooling,
    so one network takes signals of any length.
    """

    def register(network: type[nn.Module]) -> type[nn.Module]:
        if name in _FAMILIES or name in _ALIASES:
            raise ValueError(f"model name {name!r} registered twice")
        _FAMILIES[name] = Family(name, network, config, tuple(aliases))
        _ALIASES.update({alias: name for alias in aliases})
        return network

    return register


def list_models() -> list[str]:
    """Names of the registered families, sorted."""
    return sorted(_FAMILIES)


def resolve_model_name(name: str) -> str:
    """The family's canonical name for a name or alias (`net1` -> `dilated_cnn`)."""
    canonical = _ALIASES.get(name, name)
    if canonical not in _FAMILIES:
        aliases = ", ".join(f"{alias}={target}" for alias, target in sorted(_ALIASES.items()))
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(list_models())} (aliases: {aliases})")
    return canonical


def get_family(name: str) -> Family:
    """The registered family for a name or alias."""
    return _FAMILIES[resolve_model_name(name)]


def model_config(name: str, **overrides: Any):
    """The family's config dataclass with `overrides` applied; unknown keys are refused with the valid ones."""
    family = get_family(name)
    valid = [field.name for field in dataclasses.fields(family.config)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ConfigError(f"{family.name} has no setting {', '.join(unknown)}; valid: {', '.join(valid)}")
    sequences = {key: tuple(value) if isinstance(value, list) else value for key, value in overrides.items()}
    return family.config(**sequences)


def create_model(name: str, *, n_classes: int = 4, **config: Any) -> nn.Module:
    """Builds the family `name` (or an alias such as `net1`) for the given class count.

    Keyword arguments other than `n_classes` set fields of the family's config. The network takes
    (batch, length) or (batch, 1, length) and returns logits.
    """
    family = get_family(name)
    return family.network(model_config(name, **config), n_classes=n_classes)
