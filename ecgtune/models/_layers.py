"""Building blocks shared by the families."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ecgtune.errors import ConfigError


def as_channels(x: torch.Tensor) -> torch.Tensor:
    """(batch, length) or (batch, 1, length) -> (batch, 1, length)."""
    return x.unsqueeze(1) if x.dim() == 2 else x


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    dilation: int = 1,
    activation: type[nn.Module] = nn.LeakyReLU,
) -> nn.Sequential:
    """Convolution, batch norm, activation. Stride 1 keeps the length; a stride divides it (rounding up)."""
    padding = "same" if stride == 1 else (dilation * (kernel_size - 1) + 1) // 2
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation),
        nn.BatchNorm1d(out_channels),
        activation(),
    )


class MaxPoolDown(nn.Module):
    """Max-pooling by `factor` that leaves inputs shorter than `factor` to a single position."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool1d(x, min(self.factor, x.shape[-1]))


def mlp_head(in_features: int, hidden: Sequence[int], n_classes: int, dropout: float, batch_norm: bool = False):
    """Flatten, then dropout + linear + activation per hidden width, then the logits layer."""
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(in_features, width)]
        layers += [nn.BatchNorm1d(width)] if batch_norm else []
        layers.append(nn.LeakyReLU())
        in_features = width
    layers += [nn.Dropout(dropout), nn.Linear(in_features, n_classes)]
    return nn.Sequential(*layers)


def require_same_length(family: str, **sequences: Sequence) -> None:
    """Refuses per-layer settings of different lengths (for example three widths but two kernel sizes)."""
    lengths = {name: len(values) for name, values in sequences.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        raise ConfigError(f"{family}: per-layer settings must have one entry per layer ({described})")


def require_positive(family: str, **values: float) -> None:
    """Refuses zero or negative sizes."""
    for name, value in values.items():
        flat = value if isinstance(value, (tuple, list)) else (value,)
        if any(item <= 0 for item in flat):
            raise ConfigError(f"{family}: {name} must be positive, got {value}")


def require_dropout(family: str, dropout: float) -> None:
    """Refuses a dropout probability outside [0, 1)."""
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"{family}: dropout must lie in [0, 1), got {dropout}")
