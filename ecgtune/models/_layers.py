"""Building blocks shared by the families."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ecgtune.errors import ConfigError


class BeatInput(nn.Module):
    """Beats, (batch, length) or (batch, 1, length), as the first layer's input channels: the signal and,
    with `position`, each sample's place in the beat's window (its index over the window's length
    before the zero padding; 0 in the padding). A window spans 1.2 times its record's median RR
    interval, so where the next beat falls on that scale says how early or late it came, which a
    network otherwise has to infer from the padding's edge through its strides and pooling
    (BENCHMARKS 11p)."""

    def __init__(self, position: bool = False):
        super().__init__()
        self.position = position
        self.channels = 2 if position else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1) if x.dim() == 2 else x
        if not self.position:
            return x
        signal = x[:, 0]
        index = torch.arange(signal.shape[-1], dtype=signal.dtype, device=signal.device)
        window = torch.where(signal != 0, index, torch.zeros_like(signal)).amax(1, keepdim=True) + 1
        place = torch.where(index < window, index / window, torch.zeros_like(signal))
        return torch.cat([x, place.unsqueeze(1)], dim=1)


def same_conv(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True) -> nn.Conv1d:
    """A stride-1 convolution that keeps the length, with explicit padding wherever it is symmetric
    (ONNX Runtime cannot run dilated convolutions with automatic 'same' padding)."""
    reach = dilation * (kernel_size - 1)
    padding = reach // 2 if reach % 2 == 0 else "same"
    return nn.Conv1d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=bias)


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
    if stride == 1:
        conv = same_conv(in_channels, out_channels, kernel_size, dilation)
    else:
        padding = (dilation * (kernel_size - 1) + 1) // 2
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation)
    return nn.Sequential(conv, nn.BatchNorm1d(out_channels), activation())


class MaxPoolDown(nn.Module):
    """Max-pooling by `factor` that leaves inputs shorter than `factor` to a single position."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool1d(x, min(self.factor, x.shape[-1]))


class AdaptivePool(nn.Module):
    """Adaptive max- or average-pooling to `size` positions, with the same windows as PyTorch's
    adaptive pooling; during ONNX export it is written as explicit slices, which ONNX can express for
    any input length (ONNX's own adaptive pooling needs the output size to divide the input length)."""

    def __init__(self, size: int, kind: str = "max"):
        super().__init__()
        self.size, self.kind = size, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.onnx.is_in_onnx_export():
            pool = F.adaptive_max_pool1d if self.kind == "max" else F.adaptive_avg_pool1d
            return pool(x, self.size)
        length = x.shape[-1]
        windows = [(i * length // self.size, ((i + 1) * length + self.size - 1) // self.size) for i in range(self.size)]
        reduce = torch.amax if self.kind == "max" else torch.mean
        return torch.stack([reduce(x[..., start:end], dim=-1) for start, end in windows], dim=-1)


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


def check_config(family: str, config, same_length: Sequence[str] = ()) -> None:
    """Refuses sizes that are not positive integers, a dropout outside [0, 1), and per-layer settings
    of different lengths (for example three widths but two kernel sizes)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "dropout":
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{family}: dropout must lie in [0, 1), got {value}")
        elif not isinstance(value, bool):
            items = value if isinstance(value, tuple) else (value,)
            if not items or any(not isinstance(item, int) or item <= 0 for item in items):
                raise ConfigError(f"{family}: {field.name} must be positive integers, got {value}")
    lengths = {name: len(getattr(config, name)) for name in same_length}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        raise ConfigError(f"{family}: per-layer settings must have one entry per layer ({described})")
