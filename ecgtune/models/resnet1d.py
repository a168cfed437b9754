"""resnet1d (the write-up's Net6): a wide stem convolution, max-pooling, stages of bottleneck residual
blocks, adaptive average pooling and an MLP with batch norm."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecgtune.models._layers import AdaptivePool, BeatInput, check_config, mlp_head, same_conv
from ecgtune.models._registry import register_model


@dataclass(frozen=True)
class ResNet1DConfig:
    stem_width: int = 64
    stem_kernel: int = 11
    blocks: tuple[int, ...] = (3,)     # bottleneck blocks per stage; each later stage halves the length
    width: int = 256                   # output channels of the first stage, doubled per later stage
    bottleneck_width: int = 64         # inner channels of the first stage's blocks, doubled likewise
    kernel_size: int = 3               # kernel of each block's middle convolution
    dilation: int = 1
    pool_size: int = 4
    hidden: tuple[int, ...] = (1024, 256)
    dropout: float = 0.1
    position_channel: bool = False     # a second input channel, see BeatInput

    def __post_init__(self):
        check_config("resnet1d", self)


class Bottleneck(nn.Module):
    """1x1 reduce, k-wide (dilated) convolution, 1x1 expand, plus a shortcut (projected when shapes differ)."""

    def __init__(self, in_channels: int, inner: int, out_channels: int, kernel_size: int, dilation: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(in_channels, inner, 1, stride=stride, bias=False), nn.BatchNorm1d(inner), nn.LeakyReLU(),
            same_conv(inner, inner, kernel_size, dilation, bias=False),
            nn.BatchNorm1d(inner), nn.LeakyReLU(),
            nn.Conv1d(inner, out_channels, 1, bias=False), nn.BatchNorm1d(out_channels),
        )
        self.shortcut = nn.Identity()
        if in_channels != out_channels or stride != 1:
            self.shortcut = nn.Sequential(nn.Conv1d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm1d(out_channels))
        self.activation = nn.LeakyReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))


@register_model("resnet1d", ResNet1DConfig, aliases=("net6",))
class ResNet1D(nn.Module):
    def __init__(self, config: ResNet1DConfig, n_classes: int = 4):
        super().__init__()
        self.input = BeatInput(config.position_channel)
        layers = [same_conv(self.input.channels, config.stem_width, config.stem_kernel),
                  nn.MaxPool1d(3, stride=2, padding=1)]
        channels = config.stem_width
        for stage, n_blocks in enumerate(config.blocks):
            width, inner = config.width * 2**stage, config.bottleneck_width * 2**stage
            for block in range(n_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(Bottleneck(channels, inner, width, config.kernel_size, config.dilation, stride))
                channels = width
        self.features = nn.Sequential(*layers, AdaptivePool(config.pool_size, "avg"))
        self.head = mlp_head(channels * config.pool_size, config.hidden, n_classes, config.dropout, batch_norm=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.input(x)))
