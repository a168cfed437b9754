"""multiscale_cnn (the write-up's Net2): parallel first convolutions of different kernel sizes, summed,
then a convolution stack, adaptive max-pooling and an MLP."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecgtune.models._layers import AdaptivePool, BeatInput, check_config, conv_bn_act, mlp_head, same_conv
from ecgtune.models._registry import register_model


@dataclass(frozen=True)
class MultiscaleCNNConfig:
    branch_kernels: tuple[int, ...] = (7, 11, 17)  # one parallel first convolution per kernel size
    branch_width: int = 32
    widths: tuple[int, ...] = (64, 128)            # the stack after the branches (depth = len(widths))
    kernel_sizes: tuple[int, ...] = (11, 3)
    dilation: int = 1                              # dilation of the stack's convolutions
    pool_size: int = 4
    hidden: tuple[int, ...] = (256, 1024)
    dropout: float = 0.1
    position_channel: bool = False                 # a second input channel, see BeatInput

    def __post_init__(self):
        check_config("multiscale_cnn", self, same_length=("widths", "kernel_sizes"))


@register_model("multiscale_cnn", MultiscaleCNNConfig, aliases=("net2",))
class MultiscaleCNN(nn.Module):
    def __init__(self, config: MultiscaleCNNConfig, n_classes: int = 4):
        super().__init__()
        self.input = BeatInput(config.position_channel)
        self.branches = nn.ModuleList(
            same_conv(self.input.channels, config.branch_width, kernel) for kernel in config.branch_kernels
        )
        self.merge = nn.Sequential(nn.BatchNorm1d(config.branch_width), nn.LeakyReLU(0.2))
        layers, channels = [], config.branch_width
        for width, kernel in zip(config.widths, config.kernel_sizes):
            layers.append(conv_bn_act(channels, width, kernel, dilation=config.dilation, activation=nn.ReLU))
            channels = width
        self.features = nn.Sequential(*layers, AdaptivePool(config.pool_size))
        self.head = mlp_head(channels * config.pool_size, config.hidden, n_classes, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input(x)
        merged = self.merge(sum(branch(x) for branch in self.branches))
        return self.head(self.features(merged))
