"""plain_cnn (the write-up's Net3): a stack of convolutions with max-pooling after every pair, adaptive
max-pooling and an MLP. Fixed from the write-up: the undefined activation, and a first linear layer
sized for one input length only."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecgtune.models._layers import AdaptivePool, BeatInput, MaxPoolDown, check_config, conv_bn_act, mlp_head
from ecgtune.models._registry import register_model


@dataclass(frozen=True)
class PlainCNNConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)   # one convolution per entry (depth = len(widths))
    kernel_sizes: tuple[int, ...] = (11, 11, 3, 3)
    dilation: int = 1
    pool_every: int = 2                            # max-pool after every `pool_every` convolutions
    pool_factor: int = 4
    pool_size: int = 4                             # positions kept by the final adaptive max-pool
    hidden: tuple[int, ...] = (1024, 128)
    dropout: float = 0.1
    position_channel: bool = False                 # a second input channel, see BeatInput

    def __post_init__(self):
        check_config("plain_cnn", self, same_length=("widths", "kernel_sizes"))


def conv_stack(in_channels: int, widths, kernel_sizes, dilation: int, pool_every: int,
               pool_factor: int) -> tuple[nn.Sequential, int]:
    """Convolutions with max-pooling after every `pool_every`; also returns the output channels."""
    layers, channels = [], in_channels
    for index, (width, kernel) in enumerate(zip(widths, kernel_sizes), start=1):
        layers.append(conv_bn_act(channels, width, kernel, dilation=1 if index == 1 else dilation))
        if index % pool_every == 0:
            layers.append(MaxPoolDown(pool_factor))
        channels = width
    return nn.Sequential(*layers), channels


@register_model("plain_cnn", PlainCNNConfig, aliases=("net3",))
class PlainCNN(nn.Module):
    def __init__(self, config: PlainCNNConfig, n_classes: int = 4):
        super().__init__()
        self.input = BeatInput(config.position_channel)
        stack, channels = conv_stack(self.input.channels, config.widths, config.kernel_sizes, config.dilation,
                                     config.pool_every, config.pool_factor)
        self.input_norm = nn.BatchNorm1d(self.input.channels)
        self.features = nn.Sequential(stack, AdaptivePool(config.pool_size))
        self.head = mlp_head(channels * config.pool_size, config.hidden, n_classes, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.input_norm(self.input(x))))
