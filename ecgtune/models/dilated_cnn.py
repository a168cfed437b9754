"""dilated_cnn (the write-up's Net1): a stem convolution, strided convolutions, one dilated convolution,
adaptive max-pooling and an MLP."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecgtune.models._layers import AdaptivePool, BeatInput, check_config, conv_bn_act, mlp_head, same_conv
from ecgtune.models._registry import register_model


@dataclass(frozen=True)
class DilatedCNNConfig:
    stem_width: int = 64                   # channels of the first, full-resolution convolution
    stem_kernel: int = 11
    widths: tuple[int, ...] = (128, 256)   # one strided convolution per entry (depth = len(widths))
    kernel_sizes: tuple[int, ...] = (11, 6)
    strides: tuple[int, ...] = (5, 3)
    dilated_kernel: int = 11               # the last convolution keeps the width and is dilated
    dilation: int = 2
    pool_size: int = 4                     # positions kept by the adaptive max-pool
    hidden: tuple[int, ...] = (256, 128)   # MLP widths
    dropout: float = 0.5
    position_channel: bool = False         # a second input channel, see BeatInput

    def __post_init__(self):
        check_config("dilated_cnn", self, same_length=("widths", "kernel_sizes", "strides"))


@register_model("dilated_cnn", DilatedCNNConfig, aliases=("net1",))
class DilatedCNN(nn.Module):
    def __init__(self, config: DilatedCNNConfig, n_classes: int = 4):
        super().__init__()
        self.input = BeatInput(config.position_channel)
        self.input_norm = nn.BatchNorm1d(self.input.channels)
        layers = [same_conv(self.input.channels, config.stem_width, config.stem_kernel), nn.LeakyReLU()]
        channels = config.stem_width
        for width, kernel, stride in zip(config.widths, config.kernel_sizes, config.strides):
            layers.append(conv_bn_act(channels, width, kernel, stride=stride))
            channels = width
        layers.append(conv_bn_act(channels, channels, config.dilated_kernel, dilation=config.dilation))
        self.features = nn.Sequential(*layers, AdaptivePool(config.pool_size))
        self.head = mlp_head(channels * config.pool_size, config.hidden, n_classes, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.input_norm(self.input(x))))
